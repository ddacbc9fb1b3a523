// The onnxruntime-web backends of the Flappy decoders. Names and semantics: worldmodels/nets/transformer.py and
// worldmodels/nets/frame_graph.py.
//  * OrtFlappyBackend, one call per token: the decode graph <name>.onnx (tokens (1,1), position (1,), k_cache,
//    v_cache (layers,1,heads,context,head_dim), cache_len (1,) -> logits, k_cache_out, v_cache_out) and the prefill
//    graph <name>.prefill.onnx (tokens, positions (1,T) -> logits (1,T,vocab), k_cache, v_cache, cache_len). A
//    step's cache outputs are the next step's inputs.
//  * OrtFrameBackend, one call per frame: the frame graph <name>.frame.onnx (the cache fed one layer per input) and
//    the prefill graph. It owns the cache as two Float32Arrays and writes each frame's 10 key/value rows into their
//    slots in place.
// The cache never changes size and the small int64 inputs are reused buffers. Tested through
// web/tests/flappy_decoder.test.ts (token-for-token parity with Python's OrtBackend and OrtFrameBackend).
import { createSession, ort } from "../shell/ort";
import { cacheShape, type FlappyManifest } from "../shell/manifest";
import type { RuntimeChoice } from "../shell/types";
import type { Backend, BackendResult, FrameBackend, FrameResult } from "./decoder";

/** The prefill graph over T <= context tokens: its outputs and the logits after the last token. */
async function runPrefill(session: ort.InferenceSession, tokens: ArrayLike<number>, positions: ArrayLike<number>,
  context: number, vocab: number): Promise<{ logits: Float32Array; out: ort.InferenceSession.OnnxValueMapType }> {
  const t = tokens.length;
  if (t < 1 || t > context || positions.length !== t) {
    throw new Error(`prefill: ${t} tokens at ${positions.length} positions (1..${context} needed)`);
  }
  const out = await session.run({
    tokens: new ort.Tensor("int64", BigInt64Array.from(Array.from(tokens), BigInt), [1, t]),
    positions: new ort.Tensor("int64", BigInt64Array.from(Array.from(positions), BigInt), [1, t]),
  });
  return { logits: (out.logits.data as Float32Array).slice((t - 1) * vocab, t * vocab), out };
}

export interface CacheState {
  k: ort.Tensor;
  v: ort.Tensor;
  length: number; // filled slots of the window
}

export class OrtFlappyBackend implements Backend<CacheState> {
  readonly context: number;
  readonly ring: boolean;
  private readonly vocab: number;
  private readonly token = new BigInt64Array(1);
  private readonly position = new BigInt64Array(1);
  private readonly cacheLen = new BigInt64Array(1);
  private readonly feeds: Record<string, ort.Tensor>;

  constructor(private readonly decode: ort.InferenceSession, private readonly prefillSession: ort.InferenceSession,
    manifest: FlappyManifest) {
    this.context = manifest.decoding.context;
    this.ring = manifest.decoding.sliding_window ?? false;
    this.vocab = manifest.token_spec.vocab_size;
    for (const [session, names] of [[decode, ["tokens", "position", "k_cache", "v_cache", "cache_len"]],
      [prefillSession, manifest.prefill.inputs]] as const) {
      const missing = names.filter((n) => !session.inputNames.includes(n));
      if (missing.length) throw new Error(`Flappy ONNX graph lacks input(s) ${missing.join(", ")} (has ${session.inputNames.join(", ")})`);
    }
    this.feeds = {
      tokens: new ort.Tensor("int64", this.token, [1, 1]),
      position: new ort.Tensor("int64", this.position, [1]),
      cache_len: new ort.Tensor("int64", this.cacheLen, [1]),
    };
  }

  /** Sessions for the manifest's two graphs on the chosen runtime (configureOrt must have run in browsers). */
  static async create(manifest: FlappyManifest, onnx: Uint8Array, prefill: Uint8Array,
    runtime: RuntimeChoice): Promise<OrtFlappyBackend> {
    const [decode, prefillSession] = await Promise.all([createSession(onnx, runtime), createSession(prefill, runtime)]);
    return new OrtFlappyBackend(decode, prefillSession, manifest);
  }

  async prefill(tokens: ArrayLike<number>, positions: ArrayLike<number>): Promise<BackendResult<CacheState>> {
    const { logits, out } = await runPrefill(this.prefillSession, tokens, positions, this.context, this.vocab);
    return { logits, state: { k: out.k_cache, v: out.v_cache, length: Number((out.cache_len.data as BigInt64Array)[0]) } };
  }

  async step(token: number, position: number, state: CacheState): Promise<BackendResult<CacheState>> {
    if (!this.ring && state.length >= this.context) throw new Error(`step: the window is full (${state.length} of ${this.context})`);
    this.token[0] = BigInt(token);
    this.position[0] = BigInt(position);
    this.cacheLen[0] = BigInt(state.length);
    this.feeds.k_cache = state.k;
    this.feeds.v_cache = state.v;
    const out = await this.decode.run(this.feeds);
    return {
      logits: out.logits.data as Float32Array,
      state: { k: out.k_cache_out, v: out.v_cache_out, length: Math.min(state.length + 1, this.ring ? this.context : Infinity) },
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.decode.release(), this.prefillSession.release()]);
  }
}

export interface FrameCache {
  k: Float32Array; // (layers, 1, heads, context, head_dim), written in place
  v: Float32Array;
  length: number; // filled slots
}

/** worldmodels/nets/frame_graph.py frame_inputs: the frame graph's input names for a model of `layers` layers. */
export function frameInputs(layers: number): string[] {
  const layer = (kv: string) => Array.from({ length: layers }, (_, i) => `${kv}_cache_${i}`);
  return ["action", "position", ...layer("k"), ...layer("v"), "cache_len", "previous", "guess", "uniforms", "temperature"];
}

export class OrtFrameBackend implements FrameBackend<FrameCache> {
  readonly context: number;
  readonly ring: boolean;
  readonly tokensPerCall: number;
  private readonly vocab: number;
  private readonly dims: number[];
  private readonly action = new BigInt64Array(1);
  private readonly position = new BigInt64Array(1);
  private readonly cacheLen = new BigInt64Array(1);
  private readonly previous: BigInt64Array;
  private readonly guess: BigInt64Array;
  private readonly uniforms: Float64Array;
  private readonly temperature = new Float64Array(1);

  constructor(private readonly frameSession: ort.InferenceSession, private readonly prefillSession: ort.InferenceSession,
    manifest: FlappyManifest) {
    this.context = manifest.decoding.context;
    this.ring = manifest.decoding.sliding_window ?? false;
    this.vocab = manifest.token_spec.vocab_size;
    this.tokensPerCall = manifest.token_spec.tokens_per_frame;
    this.dims = cacheShape(manifest) as number[];
    const missing = frameInputs(this.dims[0]).filter((n) => !frameSession.inputNames.includes(n));
    if (missing.length) throw new Error(`Flappy frame graph lacks input(s) ${missing.join(", ")} (has ${frameSession.inputNames.join(", ")}): re-export the model`);
    this.previous = new BigInt64Array(this.tokensPerCall - 1);
    this.guess = new BigInt64Array(this.tokensPerCall - 1);
    this.uniforms = new Float64Array(manifest.token_spec.slots.filter((s: any) => s.field === "gap_y").length);
  }

  /** Sessions for the manifest's frame and prefill graphs on the chosen runtime. */
  static async create(manifest: FlappyManifest, frame: Uint8Array, prefill: Uint8Array,
    runtime: RuntimeChoice): Promise<OrtFrameBackend> {
    const [frameSession, prefillSession] = await Promise.all([createSession(frame, runtime), createSession(prefill, runtime)]);
    return new OrtFrameBackend(frameSession, prefillSession, manifest);
  }

  async prefill(tokens: ArrayLike<number>, positions: ArrayLike<number>): Promise<BackendResult<FrameCache>> {
    const { logits, out } = await runPrefill(this.prefillSession, tokens, positions, this.context, this.vocab);
    return { logits, state: { k: out.k_cache.data as Float32Array, v: out.v_cache.data as Float32Array, length: tokens.length } };
  }

  async frame(actionId: number, position: number, state: FrameCache, previous: ArrayLike<number>,
    guess: ArrayLike<number>, uniforms: ArrayLike<number>, temperature: number): Promise<FrameResult<FrameCache>> {
    if (!this.ring && state.length + this.tokensPerCall > this.context) {
      throw new Error(`frame graph: the window holds ${state.length} of ${this.context} tokens, no room for a ` +
        `${this.tokensPerCall}-token frame (slide first)`);
    }
    this.action[0] = BigInt(actionId);
    this.position[0] = BigInt(position);
    this.cacheLen[0] = BigInt(state.length);
    for (let i = 0; i < this.previous.length; i++) {
      this.previous[i] = BigInt(previous[i]);
      this.guess[i] = BigInt(guess[i]);
    }
    this.uniforms.set(Array.from(uniforms));
    this.temperature[0] = temperature;
    const [layers, ...layerDims] = this.dims;
    const perLayer = layerDims.reduce((a, b) => a * b, 1);
    const layerFeeds: Record<string, ort.Tensor> = {};
    for (let l = 0; l < layers; l++) {
      for (const [kv, cache] of [["k", state.k], ["v", state.v]] as const) {
        layerFeeds[`${kv}_cache_${l}`] = new ort.Tensor("float32", cache.subarray(l * perLayer, (l + 1) * perLayer), layerDims);
      }
    }
    const out = await this.frameSession.run({
      action: new ort.Tensor("int64", this.action, [1]),
      position: new ort.Tensor("int64", this.position, [1]),
      ...layerFeeds,
      cache_len: new ort.Tensor("int64", this.cacheLen, [1]),
      previous: new ort.Tensor("int64", this.previous, [this.previous.length]),
      guess: new ort.Tensor("int64", this.guess, [this.guess.length]),
      uniforms: new ort.Tensor("float64", this.uniforms, [this.uniforms.length]),
      temperature: new ort.Tensor("float64", this.temperature, [1]),
    });
    const slots = Array.from(out.slots.data as BigInt64Array, Number);
    this.writeRows(state.k, out.k_frame.data as Float32Array, slots);
    this.writeRows(state.v, out.v_frame.data as Float32Array, slots);
    state.length = Math.min(state.length + slots.length, this.ring ? this.context : Infinity);
    return {
      tokens: Array.from(out.state.data as BigInt64Array, Number),
      logits: out.logits.data as Float32Array,
      state,
      passes: Number((out.passes.data as BigInt64Array)[0]),
      nextFirst: Number((out.next_first.data as BigInt64Array)[0]),
    };
  }

  /** cache[l, 0, h, slots[i], :] = rows[l, 0, h, i, :] for every layer and head. */
  private writeRows(cache: Float32Array, rows: Float32Array, slots: number[]): void {
    const [layers, , heads, context, headDim] = this.dims;
    const n = slots.length;
    for (let lh = 0; lh < layers * heads; lh++) {
      for (let i = 0; i < n; i++) {
        const from = (lh * n + i) * headDim;
        cache.set(rows.subarray(from, from + headDim), (lh * context + slots[i]) * headDim);
      }
    }
  }

  async release(): Promise<void> {
    await Promise.all([this.frameSession.release(), this.prefillSession.release()]);
  }
}
