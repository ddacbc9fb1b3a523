// The Flappy frame decoder: the TypeScript port of worldmodels/token_sampling.py (FrameDecoder and the choice rules
// 1-6 of its module docstring), over any Backend holding a fixed-size KV-cache window (backend.ts: onnxruntime-web).
// Tested token for token against the Python reference on the same ONNX graphs and uniforms, and on a model-free hash
// backend: web/tests/flappy_decoder.test.ts (fixtures from tests/web_fixtures.py write_flappy).
import type { TokenSpec } from "./spec";

export interface BackendResult<S> {
  logits: Float32Array; // (vocab,) after the newest token
  state: S;
}

/** One model behind a fixed-size KV cache of `context` tokens, batch 1 (Python's token_sampling.Backend). */
export interface Backend<S = unknown> {
  readonly context: number;
  /** A fresh cache holding `tokens` (T <= context) at `positions`; the logits after the last of them. */
  prefill(tokens: ArrayLike<number>, positions: ArrayLike<number>): Promise<BackendResult<S>>;
  /** Append one token (the window must have room); the logits after it. */
  step(token: number, position: number, state: S): Promise<BackendResult<S>>;
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

/** Plays the world model frame by frame (rules 1-6). `history` is append-only, context first; positions are never
 * renumbered; the window slides by `slideFrames` whole frames when full. */
export class FrameDecoder<S = unknown> {
  readonly slideFrames: number;
  readonly temperature: number;
  logits: Float32Array | null = null;
  tokensGenerated = 0;
  slides = 0;
  private history_: number[] = [];
  private start = 0;
  private window = 0; // history index of the oldest token in the cache
  private state: S | null = null;
  private readonly random: () => number;
  private readonly gapPipe: Map<number, number>; // frame position of a gap_y -> its pipe slot

  constructor(readonly backend: Backend<S>, readonly spec: TokenSpec, opts: DecoderOptions) {
    const n = spec.tokensPerFrame;
    if (!(Number.isInteger(opts.slideFrames) && opts.slideFrames * n > 0 && opts.slideFrames * n < backend.context)) {
      throw new Error(`slide_frames=${opts.slideFrames}: must drop at least one frame and fewer tokens than the ` +
        `model's context (${backend.context})`);
    }
    this.temperature = opts.temperature ?? 1;
    if (!(this.temperature > 0)) throw new Error(`temperature must be > 0 (got ${this.temperature})`);
    this.slideFrames = opts.slideFrames;
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
  async step(action: number, uniforms?: ArrayLike<number>): Promise<number[]> {
    if (this.history_.length === 0) throw new Error("FrameDecoder.step before reset(context)");
    const actions = this.spec.field("action").labels.length;
    if (!(Number.isInteger(action) && action >= 0 && action < actions)) {
      throw new Error(`action must be an int in 0..${actions - 1}, got ${action}`);
    }
    const u = this.uniforms(uniforms);
    const previous = this.history_.slice(-this.spec.stateTokensPerFrame);
    let logits = await this.feed(this.spec.field("action").start + action);
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

  /** The latest frame's done token says the bird died (the model's own verdict). */
  get done(): boolean {
    if (this.history_.length === 0) return false;
    return this.spec.isDone(this.history_.slice(-this.spec.stateTokensPerFrame));
  }

  private uniforms(given?: ArrayLike<number>): number[] {
    const count = this.gapPipe.size;
    if (given === undefined) return Array.from({ length: count }, () => this.random());
    const u = Array.from(given);
    if (u.length !== count || !u.every((x) => x >= 0 && x < 1)) {
      throw new Error(`uniforms: need ${count} numbers in [0, 1) (one per pipe slot), got [${u.join(", ")}]`);
    }
    return u;
  }

  private async feed(token: number): Promise<Float32Array> {
    if (this.history_.length - this.window === this.backend.context) {
      this.window += this.slideFrames * this.spec.tokensPerFrame;
      this.state = (await this.backend.prefill(this.history_.slice(this.window), this.positions(this.window))).state;
      this.slides += 1;
    }
    const { logits, state } = await this.backend.step(token, this.position, this.state as S);
    this.logits = logits;
    this.state = state;
    this.history_.push(token);
    return logits;
  }

  private positions(first: number): number[] {
    return Array.from({ length: this.history_.length - first }, (_, i) => this.start + first + i);
  }
}
