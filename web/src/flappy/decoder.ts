// The Flappy frame decoders: the TypeScript port of worldmodels/flappy/decoding/rules.py (FrameDecoder, FrameGraphDecoder,
// frame_guess and the choice rules 1-6 of its module docstring), over a backend holding a fixed-size KV cache
// (backend.ts: onnxruntime-web, one decode call per token or one frame-graph call per frame). Tested token for
// token against the Python reference on the same ONNX graphs and uniforms, and on a model-free hash backend:
// web/tests/flappy_decoder.test.ts (fixtures from tests/web/web_fixtures.py write_flappy).
import type { TokenSpec } from "./spec";

export interface BackendResult<S> {
  logits: Float32Array; // (vocab,) after the newest token
  state: S;
}

/** A model behind a fixed-size KV cache of `context` tokens, batch 1. `ring`: the model's sliding-window attention
 * keeps the cache as a ring that never slides; otherwise the decoder slides a frame-aligned window. */
export interface CacheBackend<S = unknown> {
  readonly context: number;
  readonly ring?: boolean;
  /** A fresh cache holding `tokens` (T <= context) at `positions`; the logits after the last of them. */
  prefill(tokens: ArrayLike<number>, positions: ArrayLike<number>): Promise<BackendResult<S>>;
}

/** One decode call per token (Python's worldmodels.flappy.decoding.backends.Backend). */
export interface Backend<S = unknown> extends CacheBackend<S> {
  /** Append one token (an ordered window must have room); the logits after it. */
  step(token: number, position: number, state: S): Promise<BackendResult<S>>;
}

export interface FrameResult<S> {
  tokens: number[]; // the frame's state tokens
  logits: Float32Array; // (tokens per frame, vocab): after each fed token
  state: S;
  passes: number; // the frame graph's fixed-point passes
  nextFirst: number; // the next frame's first slot if the next action is the first label (the graph speculated)
}

/** One frame-graph call per frame (Python's worldmodels.flappy.decoding.backends.FrameBackend). */
export interface FrameBackend<S = unknown> extends CacheBackend<S> {
  frame(actionId: number, position: number, state: S, previous: ArrayLike<number>, guess: ArrayLike<number>,
    uniforms: ArrayLike<number>, temperature: number): Promise<FrameResult<S>>;
}

/** Rule 4: the id in [start, stop) with the largest logit, the lowest such id on a tie. */
export function greedy(logits: ArrayLike<number>, [start, stop]: [number, number]): number {
  let best = start;
  for (let id = start + 1; id < stop; id++) if (logits[id] > logits[best]) best = id;
  return best;
}

/** Rule 6: the first id in [start, stop) whose cumulative softmax(logits / temperature) exceeds u * total (float64). */
export function sampleInverseCdf(logits: ArrayLike<number>, [start, stop]: [number, number], u: number,
  temperature = 1): number {
  let max = -Infinity;
  for (let id = start; id < stop; id++) max = Math.max(max, logits[id] / temperature);
  const cdf = new Float64Array(stop - start);
  let total = 0;
  for (let id = start; id < stop; id++) {
    total += Math.exp(logits[id] / temperature - max);
    cdf[id - start] = total;
  }
  const threshold = u * total;
  for (let i = 0; i < cdf.length; i++) if (cdf[i] > threshold) return start + i;
  return stop - 1;
}

/** Rule 5: whether pipe slot `pipe` of the frame being generated holds a pipe that `previous` (9 tokens) did not
 * show. `prefix` must already hold pipe slot 0's marker and x and this pipe's marker. */
export function pipeIsNew(spec: TokenSpec, pipe: number, prefix: ArrayLike<number>, previous: ArrayLike<number>): boolean {
  const visible = spec.labelId("marker", "visible");
  const marker = spec.markerSlot;
  if (prefix[marker.get(pipe)!] !== visible) return false;
  const m0 = marker.get(0)!;
  const x0 = spec.pipeXSlot.get(0)!;
  const respawn = prefix[m0] === visible && previous[m0] === visible &&
    prefix[x0] - previous[x0] >= Math.floor(spec.field("pipe_x").bins / 4);
  const source = respawn ? pipe + 1 : pipe;
  return !marker.has(source) || previous[marker.get(source)!] !== visible;
}

/** Uniforms in [0, 1) from a 32-bit seed (a Weyl sequence through a 32-bit mixing function): the decoder's draws when
 * the caller passes none. Not Python's numpy stream: parity tests pass the uniforms explicitly. */
export function uniformStream(seed: number): () => number {
  let counter = seed >>> 0;
  return () => {
    counter = (counter + 0x9e3779b9) >>> 0;
    let z = Math.imul(counter ^ (counter >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

export interface DecoderOptions {
  slideFrames: number; // manifest.decoding.slide_frames
  temperature?: number; // manifest.decoding.temperature (default 1)
  seed?: number; // for uniformStream when step() gets no uniforms
}

/** The bookkeeping both decoders share (rules 1-2): `history` is append-only, context first; positions are never
 * renumbered; an ordered window slides by `slideFrames` whole frames, a ring's is the newest `context` tokens. */
abstract class WindowedDecoder<S, B extends CacheBackend<S>> {
  readonly slideFrames: number;
  readonly temperature: number;
  logits: Float32Array | null = null;
  tokensGenerated = 0;
  slides = 0;
  readonly ring: boolean;
  protected history_: number[] = [];
  protected start = 0;
  protected window = 0; // history index of the oldest token in the cache
  protected state: S | null = null;
  protected readonly random: () => number;
  protected readonly gapPipe: Map<number, number>; // frame position of a gap_y -> its pipe slot

  constructor(readonly backend: B, readonly spec: TokenSpec, opts: DecoderOptions, readonly slideBeforeFrame = false) {
    const n = spec.tokensPerFrame;
    if (!(Number.isInteger(opts.slideFrames) && opts.slideFrames * n > 0 && opts.slideFrames * n < backend.context)) {
      throw new Error(`slide_frames=${opts.slideFrames}: must drop at least one frame and fewer tokens than the ` +
        `model's context (${backend.context})`);
    }
    this.temperature = opts.temperature ?? 1;
    if (!(this.temperature > 0)) throw new Error(`temperature must be > 0 (got ${this.temperature})`);
    this.slideFrames = opts.slideFrames;
    this.ring = backend.ring ?? false;
    this.random = uniformStream(opts.seed ?? 0);
    this.gapPipe = new Map([...spec.gapSlot].map(([pipe, slot]) => [slot, pipe]));
  }

  /** Start from real frames: whole frames ending with a state frame (no trailing action); token 0 at startPosition. */
  async reset(context: ArrayLike<number>, startPosition = 0): Promise<void> {
    const n = this.spec.tokensPerFrame;
    const per = this.spec.stateTokensPerFrame;
    const tokens = Array.from(context);
    if (tokens.length % n !== per) {
      throw new Error(`decoder context: ${tokens.length} tokens is not whole frames ending with a ${per}-token ` +
        "state frame (no trailing action)");
    }
    if (!Number.isInteger(startPosition) || startPosition % n !== 0) {
      throw new Error(`decoder context: start_position ${startPosition} must be a multiple of ${n}`);
    }
    for (let f = 0; f * n < tokens.length; f++) {
      if (!this.spec.isWellFormed(tokens.slice(f * n, f * n + per))) throw new Error(`decoder context: malformed frame at index ${f}`);
    }
    this.history_ = tokens;
    this.start = startPosition;
    this.window = Math.ceil(Math.max(0, tokens.length - this.backend.context) / n) * n;
    const { logits, state } = await this.backend.prefill(tokens.slice(this.window), this.positions(this.window));
    this.logits = logits;
    this.state = state;
    this.tokensGenerated = 0;
    this.slides = 0;
  }

  /** Feed `action`, generate and commit the next frame's state tokens (one uniform per pipe slot, used or not). */
  abstract step(action: number, uniforms?: ArrayLike<number>): Promise<number[]>;

  /** Check the action, take this frame's uniforms, slide first under `slideBeforeFrame`: the action's id and u. */
  protected async beginFrame(action: number, uniforms?: ArrayLike<number>): Promise<[number, number[]]> {
    if (this.history_.length === 0) throw new Error(`${this.constructor.name}.step before reset(context)`);
    const actions = this.spec.field("action").labels.length;
    if (!(Number.isInteger(action) && action >= 0 && action < actions)) {
      throw new Error(`action must be an int in 0..${actions - 1}, got ${action}`);
    }
    const u = this.uniforms(uniforms);
    if (this.slideBeforeFrame && !this.ring &&
      this.history_.length - this.window + this.spec.tokensPerFrame > this.backend.context) await this.slide();
    return [this.spec.field("action").start + action, u];
  }

  protected async slide(): Promise<void> {
    this.window += this.slideFrames * this.spec.tokensPerFrame;
    this.state = (await this.backend.prefill(this.history_.slice(this.window), this.positions(this.window))).state;
    this.slides += 1;
  }

  /** The ring's window is the newest `context` tokens. */
  protected followRing(): void {
    if (this.ring) this.window = Math.max(this.window, this.history_.length - this.backend.context);
  }

  /** Every committed token, context first (a copy). */
  get history(): number[] {
    return this.history_.slice();
  }

  /** Absolute position of the next token (the next action). */
  get position(): number {
    return this.start + this.history_.length;
  }

  /** The tokens in the KV cache and their absolute positions, oldest first. */
  get windowTokens(): { tokens: number[]; positions: number[] } {
    return { tokens: this.history_.slice(this.window), positions: this.positions(this.window) };
  }

  /** The action (its label index: 0 noop, 1 flap) of the action token the last step fed, read back from the
   * history; null before the first step since reset. */
  get lastAction(): number | null {
    if (this.tokensGenerated === 0) return null;
    return this.spec.labelIndex("action", this.history_[this.history_.length - this.spec.stateTokensPerFrame - 1]);
  }

  /** The latest frame's done token says the bird died (the model's own verdict). */
  get done(): boolean {
    if (this.history_.length === 0) return false;
    return this.spec.isDone(this.history_.slice(-this.spec.stateTokensPerFrame));
  }

  protected uniforms(given?: ArrayLike<number>): number[] {
    const count = this.gapPipe.size;
    if (given === undefined) return Array.from({ length: count }, () => this.random());
    const u = Array.from(given);
    if (u.length !== count || !u.every((x) => x >= 0 && x < 1)) {
      throw new Error(`uniforms: need ${count} numbers in [0, 1) (one per pipe slot), got [${u.join(", ")}]`);
    }
    return u;
  }

  protected positions(first: number): number[] {
    return Array.from({ length: this.history_.length - first }, (_, i) => this.start + first + i);
  }
}

/** One decode call per token (Python's FrameDecoder); `slideBeforeFrame` as there. */
export class FrameDecoder<S = unknown> extends WindowedDecoder<S, Backend<S>> {
  async step(action: number, uniforms?: ArrayLike<number>): Promise<number[]> {
    const [actionId, u] = await this.beginFrame(action, uniforms);
    const previous = this.history_.slice(-this.spec.stateTokensPerFrame);
    let logits = await this.feed(actionId);
    const frame: number[] = [];
    for (let s = 0; s < this.spec.stateTokensPerFrame; s++) {
      const legal = this.spec.legalRange(s, frame);
      const pipe = this.gapPipe.get(s);
      const token = pipe !== undefined && pipeIsNew(this.spec, pipe, frame, previous)
        ? sampleInverseCdf(logits, legal, u[pipe], this.temperature)
        : greedy(logits, legal);
      frame.push(token);
      logits = await this.feed(token);
    }
    this.tokensGenerated += frame.length;
    return frame;
  }

  private async feed(token: number): Promise<Float32Array> {
    if (!this.ring && this.history_.length - this.window === this.backend.context) await this.slide();
    const { logits, state } = await this.backend.step(token, this.position, this.state as S);
    this.logits = logits;
    this.state = state;
    this.history_.push(token);
    this.followRing();
    return logits;
  }
}

/** Python's frame_guess: the next state frame guessed from the three newest in `history` (whole frames ending with
 * a state frame): every token repeats except a pipe shown in all three, which moves by the step it took two frames
 * ago, and the bird, which moves by the mean of its last two steps rounded half up (within their bins). Only the
 * frame graph's pass count depends on it. */
export function frameGuess(spec: TokenSpec, history: ArrayLike<number>): number[] {
  const n = spec.tokensPerFrame;
  const per = spec.stateTokensPerFrame;
  const from = Math.max(0, history.length - per - 2 * n); // the tail only: a game's history keeps growing
  const h = Array.from({ length: history.length - from }, (_, i) => history[from + i]);
  const frames: number[][] = []; // the newest first
  for (let k = 0; k < 3 && h.length >= per + k * n; k++) frames.push(h.slice(h.length - per - k * n, h.length - k * n));
  const guess = frames[0].slice();
  if (frames.length < 3) return guess;
  const [x, x1, x2] = frames;
  const visible = spec.labelId("marker", "visible");
  const bird = spec.positionOf("bird_y");
  const steps = new Map<number, number>([[bird, Math.floor((x[bird] - x2[bird]) / 2 + 0.5)]]);
  for (const [pipe, slot] of spec.pipeXSlot) {
    const m = spec.markerSlot.get(pipe)!;
    if (x[m] === visible && x1[m] === visible && x2[m] === visible) steps.set(slot, x1[slot] - x2[slot]);
  }
  for (const [slot, step] of steps) {
    const f = spec.field(spec.slots[slot].field);
    guess[slot] = Math.min(Math.max(x[slot] + step, f.start), f.start + f.bins - 1);
  }
  return guess;
}

/** One frame-graph call per frame (Python's FrameGraphDecoder): the same frames as FrameDecoder with
 * slideBeforeFrame. `frameLogits` (tokens per frame x vocab) are the last call's; `passes` counts since reset. The
 * first guess is frameGuess, its first slot replaced by the last call's nextFirst when the action is the first
 * label. */
export class FrameGraphDecoder<S = unknown> extends WindowedDecoder<S, FrameBackend<S>> {
  frameLogits: Float32Array | null = null;
  passes = 0;
  nextFirst: number | null = null;

  constructor(backend: FrameBackend<S>, spec: TokenSpec, opts: DecoderOptions) {
    super(backend, spec, opts, true);
  }

  async reset(context: ArrayLike<number>, startPosition = 0): Promise<void> {
    await super.reset(context, startPosition);
    this.passes = 0;
    this.nextFirst = null;
  }

  async step(action: number, uniforms?: ArrayLike<number>): Promise<number[]> {
    const [actionId, u] = await this.beginFrame(action, uniforms);
    const previous = this.history_.slice(-this.spec.stateTokensPerFrame);
    const guess = frameGuess(this.spec, this.history_);
    if (this.nextFirst !== null && actionId === this.spec.field("action").start) guess[0] = this.nextFirst;
    const result = await this.backend.frame(actionId, this.position, this.state as S, previous, guess, u,
      this.temperature);
    this.nextFirst = result.nextFirst;
    this.state = result.state;
    this.frameLogits = result.logits;
    this.logits = result.logits.subarray(result.logits.length - this.spec.vocabSize);
    this.history_.push(actionId, ...result.tokens);
    this.followRing();
    this.tokensGenerated += result.tokens.length;
    this.passes += result.passes;
    return result.tokens;
  }
}
