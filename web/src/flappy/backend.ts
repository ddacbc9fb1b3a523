// The onnxruntime-web Backend for the Flappy decoder: the decode graph <name>.onnx (tokens (1,1), position (1,),
// k_cache, v_cache (layers,1,heads,context,head_dim), cache_len (1,) -> logits, k_cache_out, v_cache_out) and the
// prefill graph <name>.prefill.onnx (tokens, positions (1,T) -> logits (1,T,vocab), k_cache, v_cache, cache_len).
// Names and semantics: worldmodels/nets/transformer.py. The cache tensors keep their fixed size from call to call: a
// step's outputs are the next step's inputs, and the small int64 inputs are reused buffers.
// Tested through web/tests/flappy_decoder.test.ts (token-for-token parity with Python's OrtBackend).
import { createSession, ort } from "../shell/ort";
import type { FlappyManifest } from "../shell/manifest";
import type { RuntimeChoice } from "../shell/types";
import type { Backend, BackendResult } from "./decoder";

export interface CacheState {
  k: ort.Tensor;
  v: ort.Tensor;
  length: number; // filled slots of the window
}

export class OrtFlappyBackend implements Backend<CacheState> {
  readonly context: number;
  private readonly vocab: number;
  private readonly token = new BigInt64Array(1);
  private readonly position = new BigInt64Array(1);
  private readonly cacheLen = new BigInt64Array(1);
  private readonly feeds: Record<string, ort.Tensor>;

  constructor(private readonly decode: ort.InferenceSession, private readonly prefillSession: ort.InferenceSession,
    manifest: FlappyManifest) {
    this.context = manifest.decoding.context;
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
    const t = tokens.length;
    if (t < 1 || t > this.context || positions.length !== t) {
      throw new Error(`prefill: ${t} tokens at ${positions.length} positions (1..${this.context} needed)`);
    }
    const out = await this.prefillSession.run({
      tokens: new ort.Tensor("int64", BigInt64Array.from(Array.from(tokens), BigInt), [1, t]),
      positions: new ort.Tensor("int64", BigInt64Array.from(Array.from(positions), BigInt), [1, t]),
    });
    const logits = out.logits.data as Float32Array;
    return {
      logits: logits.slice((t - 1) * this.vocab, t * this.vocab),
      state: { k: out.k_cache, v: out.v_cache, length: Number((out.cache_len.data as BigInt64Array)[0]) },
    };
  }

  async step(token: number, position: number, state: CacheState): Promise<BackendResult<CacheState>> {
    if (state.length >= this.context) throw new Error(`step: the window is full (${state.length} of ${this.context})`);
    this.token[0] = BigInt(token);
    this.position[0] = BigInt(position);
    this.cacheLen[0] = BigInt(state.length);
    this.feeds.k_cache = state.k;
    this.feeds.v_cache = state.v;
    const out = await this.decode.run(this.feeds);
    return {
      logits: out.logits.data as Float32Array,
      state: { k: out.k_cache_out, v: out.v_cache_out, length: state.length + 1 },
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.decode.release(), this.prefillSession.release()]);
  }
}
