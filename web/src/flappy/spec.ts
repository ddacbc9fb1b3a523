// The Flappy token spec, read from a manifest's "token_spec" (worldmodels/flappy/tokens.py TokenSpec.to_json()):
// id ranges, slot order, labels, the hidden rule, bin decoding and the renderer's geometry. Nothing here hard-codes an
// id or a bin count; only the field names (bird_y, marker, pipe_x, gap_y, respawn, done, action) are the contract.
// Tested against Python's legal masks and decoded frames: web/tests/flappy_spec.test.ts (fixtures from
// tests/web/web_fixtures.py write_flappy).

export interface SpecField {
  name: string;
  kind: "ordinal" | "marker" | "action";
  start: number;
  stop: number;
  bins: number;
  hideable: boolean;
  labels: string[];
  pixelRange: [number, number] | null;
  hiddenId: number | null;
}

export interface SpecSlot {
  index: number;
  name: string;
  field: string;
  pipe: number | null;
}

/** What a renderer needs, in screen px (origin top-left, y down): worldmodels/flappy/game.py GEOMETRY. */
export interface Geometry {
  screen_width: number;
  screen_height: number;
  ground_y: number;
  pipe_width: number;
  pipe_gap: number;
  bird_x: number;
  bird_width: number;
  bird_height: number;
  pipe_speed: number; // px per frame, leftwards
  fps: number;
}

export interface PipeState {
  visible: boolean;
  x: number; // left edge, px (NaN when hidden)
  gapY: number; // gap centre, px (NaN when hidden)
}

/** One frame's tokens decoded to pixel values (bin centres), like Python's FlappyState. */
export interface FrameState {
  birdY: number;
  pipes: PipeState[];
  respawn: boolean;
  done: boolean;
  action: number | null; // null for a 9-token state frame
}

export class TokenSpecError extends Error {
  constructor(message: string) {
    super(`token spec: ${message}`);
    this.name = "TokenSpecError";
  }
}

const GEOMETRY_KEYS: (keyof Geometry)[] = [
  "screen_width", "screen_height", "ground_y", "pipe_width", "pipe_gap", "bird_x", "bird_width", "bird_height",
  "pipe_speed", "fps",
];

export class TokenSpec {
  readonly fields: SpecField[];
  readonly slots: SpecSlot[];
  readonly vocabSize: number;
  readonly tokensPerFrame: number;
  readonly stateTokensPerFrame: number;
  readonly geometry: Geometry;
  /** Pipe slot -> frame position of its marker / pipe_x / gap_y token. */
  readonly markerSlot: Map<number, number>;
  readonly pipeXSlot: Map<number, number>;
  readonly gapSlot: Map<number, number>;
  /** Frame position of a hideable token -> frame position of the marker governing it (the hidden rule). */
  private readonly governedBy: Map<number, number>;
  private readonly byName: Map<string, SpecField>;

  constructor(json: Record<string, any>) {
    const need = (ok: unknown, message: string): void => {
      if (!ok) throw new TokenSpecError(message);
    };
    need(json && json.format === "flappy-tokens" && json.version === 1,
      `unknown format ${JSON.stringify(json?.format)} v${JSON.stringify(json?.version)} (this player reads flappy-tokens v1)`);
    need(Array.isArray(json.fields) && Array.isArray(json.slots), "needs fields and slots");
    this.fields = json.fields.map((f: any) => ({
      name: f.name, kind: f.kind, start: f.start, stop: f.stop, bins: f.bins, hideable: f.hideable,
      labels: f.labels, pixelRange: f.pixel_range, hiddenId: f.hidden_id,
    }));
    this.byName = new Map(this.fields.map((f) => [f.name, f]));
    this.slots = json.slots.map((s: any) => ({ index: s.index, name: s.name, field: s.field, pipe: s.pipe }));
    this.vocabSize = json.vocab_size;
    this.tokensPerFrame = json.tokens_per_frame;
    this.stateTokensPerFrame = json.state_tokens_per_frame;
    need(this.slots.length === this.tokensPerFrame && this.stateTokensPerFrame === this.tokensPerFrame - 1,
      "slots disagree with tokens_per_frame");
    for (const name of ["bird_y", "marker", "pipe_x", "gap_y", "respawn", "done", "action"]) {
      need(this.byName.has(name), `no field "${name}"`);
    }
    for (const s of this.slots) need(this.byName.has(s.field), `slot ${s.name} names unknown field ${s.field}`);
    need(this.slots[this.tokensPerFrame - 1].field === "action", "the last slot of a frame must be the action");
    this.markerSlot = this.pipeSlots("marker");
    this.pipeXSlot = this.pipeSlots("pipe_x");
    this.gapSlot = this.pipeSlots("gap_y");
    this.governedBy = new Map();
    need(Array.isArray(json.hidden_rule?.groups), "needs hidden_rule.groups");
    for (const g of json.hidden_rule.groups) {
      for (const s of g.governed_slots) this.governedBy.set(s, g.marker_slot);
    }
    const geometry = json.geometry ?? {};
    const missing = GEOMETRY_KEYS.filter((k) => typeof geometry[k] !== "number");
    need(missing.length === 0, `geometry lacks ${missing.join(", ")}`);
    this.geometry = geometry as Geometry;
  }

  field(name: string): SpecField {
    const f = this.byName.get(name);
    if (!f) throw new TokenSpecError(`no field "${name}"`);
    return f;
  }

  labelId(field: string, label: string): number {
    const f = this.field(field);
    const i = f.labels.indexOf(label);
    if (i < 0) throw new TokenSpecError(`field ${field} has no label "${label}"`);
    return f.start + i;
  }

  /** Frame position of the first slot of `field` (e.g. "done"). */
  positionOf(field: string): number {
    const s = this.slots.find((slot) => slot.field === field);
    if (!s) throw new TokenSpecError(`no slot takes field "${field}"`);
    return s.index;
  }

  /** The legal ids at frame position `slot` given the frame's tokens so far, as [start, stop): always one range. */
  legalRange(slot: number, prefix: ArrayLike<number>): [number, number] {
    const f = this.field(this.slots[slot].field);
    const markerAt = this.governedBy.get(slot);
    if (markerAt === undefined || markerAt >= prefix.length) return [f.start, f.stop];
    const marker = prefix[markerAt];
    if (marker === this.labelId("marker", "hidden")) return [f.hiddenId!, f.hiddenId! + 1];
    if (marker === this.labelId("marker", "visible")) return [f.start, f.start + f.bins];
    throw new TokenSpecError(`token ${marker} at position ${markerAt} is not a marker`);
  }

  /** bool[vocab] as 0/1 bytes, like Python's legal_mask. */
  legalMask(slot: number, prefix: ArrayLike<number>): Uint8Array {
    const [start, stop] = this.legalRange(slot, prefix);
    return new Uint8Array(this.vocabSize).fill(1, start, stop);
  }

  /** A frame (10 tokens, or its 9 state tokens): every token in its slot's range and the hidden rule. */
  isWellFormed(frame: ArrayLike<number>): boolean {
    if (frame.length !== this.tokensPerFrame && frame.length !== this.stateTokensPerFrame) return false;
    for (let s = 0; s < frame.length; s++) {
      const f = this.field(this.slots[s].field);
      if (!(frame[s] >= f.start && frame[s] < f.stop)) return false;
    }
    for (let s = 0; s < frame.length; s++) {
      if (!this.governedBy.has(s)) continue;
      const [start, stop] = this.legalRange(s, frame);
      if (!(frame[s] >= start && frame[s] < stop)) return false;
    }
    return true;
  }

  /** Pixel value of an ordinal field's token (the bin centre); NaN for its hidden id. */
  pixels(field: string, id: number): number {
    const f = this.field(field);
    if (f.kind !== "ordinal" || !f.pixelRange || !(id >= f.start && id < f.stop)) {
      throw new TokenSpecError(`token ${id} is not a ${field} value`);
    }
    const bin = id - f.start;
    if (bin === f.bins) return NaN; // the hidden id
    const [lo, hi] = f.pixelRange;
    return lo + ((bin + 0.5) / f.bins) * (hi - lo);
  }

  /** Label index of a marker/action token (label i means the value i: 0 = hidden/no/noop). */
  labelIndex(field: string, id: number): number {
    const f = this.field(field);
    if (f.kind === "ordinal" || id < f.start || id >= f.stop) throw new TokenSpecError(`token ${id} is not a ${field} label`);
    return id - f.start;
  }

  /** A well-formed frame's tokens -> pixel values; throws on a malformed frame. */
  decodeFrame(frame: ArrayLike<number>): FrameState {
    if (!this.isWellFormed(frame)) throw new TokenSpecError(`malformed frame [${Array.from(frame).join(", ")}]`);
    const at = (field: string) => frame[this.positionOf(field)];
    const pipes = [...this.markerSlot.keys()].sort((a, b) => a - b).map((pipe) => {
      const visible = this.labelIndex("marker", frame[this.markerSlot.get(pipe)!]) !== 0;
      return { visible, x: this.pixels("pipe_x", frame[this.pipeXSlot.get(pipe)!]),
        gapY: this.pixels("gap_y", frame[this.gapSlot.get(pipe)!]) };
    });
    return {
      birdY: this.pixels("bird_y", at("bird_y")),
      pipes,
      respawn: this.labelIndex("respawn", at("respawn")) !== 0,
      done: this.labelIndex("done", at("done")) !== 0,
      action: frame.length === this.tokensPerFrame ? this.labelIndex("action", at("action")) : null,
    };
  }

  /** Whether a frame's done token says the bird died (a 9- or 10-token frame). */
  isDone(frame: ArrayLike<number>): boolean {
    return frame[this.positionOf("done")] === this.labelId("done", "yes");
  }

  /** "slot=value" per token, for the token-stream panel: pixels for ordinals, labels for markers/actions. */
  describe(frame: ArrayLike<number>): string[] {
    return Array.from(frame, (id, s) => {
      const slot = this.slots[s];
      const f = this.field(slot.field);
      let value: string;
      if (id < f.start || id >= f.stop) value = "?";
      else if (f.kind !== "ordinal") value = f.labels[id - f.start];
      else value = id - f.start === f.bins ? "hidden" : `${Math.round(this.pixels(f.name, id))}px`;
      return `${slot.name}=${value} (${id})`;
    });
  }

  private pipeSlots(field: string): Map<number, number> {
    const map = new Map<number, number>();
    for (const s of this.slots) if (s.field === field && s.pipe !== null) map.set(s.pipe, s.index);
    return map;
  }
}
