// The onnxruntime-web backends of the Flappy decoders. Graphs and semantics: worldmodels/flappy/transformer.py and
// worldmodels/flappy/frame_graph.py; every tensor name comes from the manifest, by position (src/shell/tensors.ts).
//  * OrtFlappyBackend, one call per token: the decode graph <name>.onnx (token (1,1), position (1,), key and value
//    caches (layers,1,heads,context,head_dim), filled slots (1,) -> logits, next key and value caches) and the prefill
//    graph <name>.prefill.onnx (tokens, positions (1,T) -> logits (1,T,vocab), key cache, value cache, filled slots).
//    A step's cache outputs are the next step's inputs.
//  * OrtFrameBackend, one call per frame: the frame graph <name>.frame.onnx (the cache fed one layer per input) and
//    the prefill graph. It owns the cache as two Float32Arrays and writes each frame's 10 key/value rows into their
//    slots in place.
// The cache never changes size and the small int64 inputs are reused buffers. Tested through
// web/tests/flappy_decoder.test.ts (token-for-token parity with Python's OrtBackend and OrtFrameBackend) and
// web/tests/tensors.test.ts (renamed tensors, fake sessions).
import { createSession, ort } from "../shell/ort";
import { cacheShape, type FlappyManifest } from "../shell/manifest";
import { decodeTensors, frameTensors, prefillNames } from "../shell/tensors";
import type { RuntimeChoice } from "../shell/types";
import type { Backend, BackendResult, FrameBackend, FrameResult } from "./decoder";

type Prefill = ReturnType<typeof prefillNames>;

interface Prefilled {
  logits: Float32Array; // after the last token
  k: ort.Tensor;
  v: ort.Tensor;
  length: number; // the cache's filled slots
}

/** The prefill graph over T <= context tokens: the logits after the last token and the new cache. */
async function runPrefill(session: ort.InferenceSession, names: Prefill, tokens: ArrayLike<number>,
  positions: ArrayLike<number>, context: number, vocab: number): Promise<Prefilled> {
  const t = tokens.length;
  if (t < 1 || t > context || positions.length !== t) {
    throw new Error(`prefill: ${t} tokens at ${positions.length} positions (1..${context} needed)`);
  }
  const out = await session.run({
    [names.inputs.tokens]: new ort.Tensor("int64", BigInt64Array.from(Array.from(tokens), BigInt), [1, t]),
    [names.inputs.positions]: new ort.Tensor("int64", BigInt64Array.from(Array.from(positions), BigInt), [1, t]),
  });
  const o = names.outputs;
  return { logits: (out[o.logits].data as Float32Array).slice((t - 1) * vocab, t * vocab), k: out[o.kCache],
    v: out[o.vCache], length: Number((out[o.cacheLen].data as BigInt64Array)[0]) };
}

/** Throws when `session` lacks any of `names` (a graph from another export than the manifest's). */
function checkInputs(session: ort.InferenceSession, names: string[], what: string): void {
  const missing = names.filter((n) => !session.inputNames.includes(n));
  if (missing.length) throw new Error(`Flappy ${what} lacks input(s) ${missing.join(", ")} (has ${session.inputNames.join(", ")}): re-export the model`);
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
  private readonly names: ReturnType<typeof decodeTensors>;
  private readonly prefillNames: Prefill;

  constructor(private readonly decode: ort.InferenceSession, private readonly prefillSession: ort.InferenceSession,
    manifest: FlappyManifest) {
    this.context = manifest.decoding.context;
    this.ring = manifest.decoding.sliding_window ?? false;
    this.vocab = manifest.token_spec.vocab_size;
    this.names = decodeTensors(manifest);
    this.prefillNames = prefillNames(manifest);
    checkInputs(decode, manifest.inputs.map((t) => t.name), "decode graph");
    checkInputs(prefillSession, manifest.prefill.inputs, "prefill graph");
    const inputs = this.names.inputs;
    this.feeds = {
      [inputs.token.name]: new ort.Tensor("int64", this.token, [1, 1]),
      [inputs.position.name]: new ort.Tensor("int64", this.position, [1]),
      [inputs.cacheLen.name]: new ort.Tensor("int64", this.cacheLen, [1]),
    };
  }

  /** Sessions for the manifest's two graphs on the chosen runtime (configureOrt must have run in browsers). */
  static async create(manifest: FlappyManifest, onnx: Uint8Array, prefill: Uint8Array,
    runtime: RuntimeChoice): Promise<OrtFlappyBackend> {
    const [decode, prefillSession] = await Promise.all([createSession(onnx, runtime), createSession(prefill, runtime)]);
    return new OrtFlappyBackend(decode, prefillSession, manifest);
  }

  async prefill(tokens: ArrayLike<number>, positions: ArrayLike<number>): Promise<BackendResult<CacheState>> {
    const { logits, k, v, length } = await runPrefill(this.prefillSession, this.prefillNames, tokens, positions,
      this.context, this.vocab);
    return { logits, state: { k, v, length } };
  }

  async step(token: number, position: number, state: CacheState): Promise<BackendResult<CacheState>> {
    if (!this.ring && state.length >= this.context) throw new Error(`step: the window is full (${state.length} of ${this.context})`);
    this.token[0] = BigInt(token);
    this.position[0] = BigInt(position);
    this.cacheLen[0] = BigInt(state.length);
    const { inputs, outputs } = this.names;
    this.feeds[inputs.kCache.name] = state.k;
    this.feeds[inputs.vCache.name] = state.v;
    const out = await this.decode.run(this.feeds);
    return {
      logits: out[outputs.logits.name].data as Float32Array,
      state: { k: out[outputs.kCache.name], v: out[outputs.vCache.name],
        length: Math.min(state.length + 1, this.ring ? this.context : Infinity) },
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
  private readonly names: ReturnType<typeof frameTensors>;
  private readonly prefillNames: Prefill;

  constructor(private readonly frameSession: ort.InferenceSession, private readonly prefillSession: ort.InferenceSession,
    manifest: FlappyManifest) {
    this.context = manifest.decoding.context;
    this.ring = manifest.decoding.sliding_window ?? false;
    this.vocab = manifest.token_spec.vocab_size;
    this.tokensPerCall = manifest.token_spec.tokens_per_frame;
    this.dims = cacheShape(manifest) as number[];
    this.names = frameTensors(manifest);
    this.prefillNames = prefillNames(manifest);
    checkInputs(frameSession, manifest.frame_graph!.inputs.map((t) => t.name), "frame graph");
    checkInputs(prefillSession, manifest.prefill.inputs, "prefill graph");
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
    const { logits, k, v } = await runPrefill(this.prefillSession, this.prefillNames, tokens, positions, this.context,
      this.vocab);
    return { logits, state: { k: k.data as Float32Array, v: v.data as Float32Array, length: tokens.length } };
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
    const [, ...layerDims] = this.dims;
    const perLayer = layerDims.reduce((a, b) => a * b, 1);
    const { inputs, outputs } = this.names;
    const feeds: Record<string, ort.Tensor> = {
      [inputs.action.name]: new ort.Tensor("int64", this.action, [1]),
      [inputs.position.name]: new ort.Tensor("int64", this.position, [1]),
      [inputs.cacheLen.name]: new ort.Tensor("int64", this.cacheLen, [1]),
      [inputs.previous.name]: new ort.Tensor("int64", this.previous, [this.previous.length]),
      [inputs.guess.name]: new ort.Tensor("int64", this.guess, [this.guess.length]),
      [inputs.uniforms.name]: new ort.Tensor("float64", this.uniforms, [this.uniforms.length]),
      [inputs.temperature.name]: new ort.Tensor("float64", this.temperature, [1]),
    };
    for (const [layerInputs, cache] of [[inputs.kCache, state.k], [inputs.vCache, state.v]] as const) {
      layerInputs.forEach((t, l) => {
        feeds[t.name] = new ort.Tensor("float32", cache.subarray(l * perLayer, (l + 1) * perLayer), layerDims);
      });
    }
    const out = await this.frameSession.run(feeds);
    const int = (t: { name: string }) => Array.from(out[t.name].data as BigInt64Array, Number);
    const slots = int(outputs.slots);
    this.writeRows(state.k, out[outputs.kRows.name].data as Float32Array, slots);
    this.writeRows(state.v, out[outputs.vRows.name].data as Float32Array, slots);
    state.length = Math.min(state.length + slots.length, this.ring ? this.context : Infinity);
    return {
      tokens: int(outputs.state),
      logits: out[outputs.logits.name].data as Float32Array,
      state,
      passes: int(outputs.passes)[0],
      nextFirst: int(outputs.nextFirst)[0],
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
