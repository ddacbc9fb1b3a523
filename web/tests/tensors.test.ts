// ONNX tensor names come from the manifest, by position (src/shell/tensors.ts): a shipped manifest whose every tensor
// is renamed still validates and still drives the Flappy backends' and the Breakout denoiser's feeds and outputs,
// run here on fake sessions that accept exactly the renamed inputs and answer with the renamed outputs.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-web";
import { describe, expect, it } from "vitest";
import { frameLayout, sessionDenoiser } from "../src/breakout/sampler";
import { OrtFlappyBackend, OrtFrameBackend } from "../src/flappy/backend";
import { type BreakoutManifest, type FlappyManifest, validateManifest } from "../src/shell/manifest";
import { decodeTensors, denoiserTensors, frameTensors, prefillNames } from "../src/shell/tensors";

const load = (path: string) => JSON.parse(readFileSync(fileURLToPath(new URL(`../../models/${path}`, import.meta.url)), "utf8"));

/** Every tensor name of a manifest prefixed with "my_" (the export's graphs would be renamed the same way). */
function renamed<M extends Record<string, any>>(m: M): M {
  const tensors = (list: { name: string }[]) => list.map((t) => ({ ...t, name: `my_${t.name}` }));
  const names = (list: string[]) => list.map((n) => `my_${n}`);
  const out: Record<string, any> = { ...m, inputs: tensors(m.inputs), outputs: tensors(m.outputs) };
  if (m.prefill) out.prefill = { inputs: names(m.prefill.inputs), outputs: names(m.prefill.outputs) };
  if (m.frame_graph) out.frame_graph = { ...m.frame_graph, inputs: tensors(m.frame_graph.inputs), outputs: tensors(m.frame_graph.outputs) };
  return out as M;
}

const flappy = () => validateManifest(renamed(load("flappy/flappy.json")), "renamed", "flappy") as FlappyManifest;
const size = (shape: (number | string)[]) => shape.reduce<number>((a, d) => a * (typeof d === "number" ? d : 1), 1);

/** An InferenceSession stand-in: checks that each run feeds exactly `inputNames`, keeps the feeds, answers `reply`. */
class FakeSession {
  readonly feeds: Record<string, ort.Tensor>[] = [];
  constructor(readonly inputNames: string[], private readonly reply: (feeds: Record<string, ort.Tensor>) => Record<string, ort.Tensor>) {}

  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    expect(Object.keys(feeds).sort()).toEqual([...this.inputNames].sort());
    this.feeds.push({ ...feeds });
    return this.reply(feeds);
  }

  async release(): Promise<void> {}

  get session(): ort.InferenceSession {
    return this as unknown as ort.InferenceSession;
  }
}

const f32 = (shape: number[], fill = 0) => new ort.Tensor("float32", new Float32Array(size(shape)).fill(fill), shape);
const i64 = (values: number[]) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), [values.length]);

/** The prefill graph: logits (1, T, vocab) = 7 everywhere, caches filled with 0.5, T filled slots. */
function fakePrefill(m: FlappyManifest): FakeSession {
  const cache = m.inputs[2].shape as number[];
  const vocab = m.token_spec.vocab_size;
  return new FakeSession(m.prefill.inputs, (feeds) => {
    const t = feeds[m.prefill.inputs[0]].dims[1];
    const [logits, k, v, length] = m.prefill.outputs;
    return { [logits]: f32([1, t, vocab], 7), [k]: f32(cache, 0.5), [v]: f32(cache, 0.5), [length]: i64([t]) };
  });
}

describe("tensor names from the manifest", () => {
  it("reads each graph's tensors by position, whatever their names", () => {
    const m = flappy();
    const decode = decodeTensors(m);
    expect([decode.inputs.token.name, decode.inputs.kCache.name, decode.inputs.cacheLen.name]).toEqual(
      ["my_tokens", "my_k_cache", "my_cache_len"]);
    expect(decode.outputs.vCache.name).toBe("my_v_cache_out");
    expect(prefillNames(m).outputs.cacheLen).toBe("my_cache_len");
    const frame = frameTensors(m);
    expect(frame.inputs.kCache.map((t) => t.name)).toEqual(["my_k_cache_0", "my_k_cache_1", "my_k_cache_2"]);
    expect(frame.inputs.vCache.map((t) => t.name)).toEqual(["my_v_cache_0", "my_v_cache_1", "my_v_cache_2"]);
    expect([frame.inputs.cacheLen.name, frame.inputs.temperature.name]).toEqual(["my_cache_len", "my_temperature"]);
    expect([frame.outputs.kRows.name, frame.outputs.nextFirst.name]).toEqual(["my_k_frame", "my_next_first"]);
    const b = renamed(load("breakout/breakout.json")) as BreakoutManifest;
    expect([denoiserTensors(b).input.name, denoiserTensors(b).output.name]).toEqual(["my_input", "my_pred"]);
    expect(() => frameTensors({ ...m, model: { ...m.model, layers: 2 } })).toThrow(/lists 13 tensors, a 2-layer model's frame graph has 11/);
  });

  it("feeds the per-token decode graph and reads its outputs by the manifest's names", async () => {
    const m = flappy();
    const [logits, kOut, vOut] = m.outputs.map((t) => t.name);
    const decode = new FakeSession(m.inputs.map((t) => t.name), () => ({
      [logits]: f32([1, m.token_spec.vocab_size], 3), [kOut]: f32(m.outputs[1].shape as number[], 1),
      [vOut]: f32(m.outputs[2].shape as number[], 2),
    }));
    const prefill = fakePrefill(m);
    const backend = new OrtFlappyBackend(decode.session, prefill.session, m);
    const first = await backend.prefill([1, 2, 3], [0, 1, 2]);
    expect(first.logits).toEqual(new Float32Array(m.token_spec.vocab_size).fill(7));
    expect(first.state.length).toBe(3);
    expect(Array.from(prefill.feeds[0].my_positions.data as BigInt64Array, Number)).toEqual([0, 1, 2]);
    const next = await backend.step(42, 3, first.state);
    const fed = decode.feeds[0];
    expect([fed.my_tokens.data[0], fed.my_position.data[0], fed.my_cache_len.data[0]]).toEqual([42n, 3n, 3n]);
    expect(fed.my_k_cache).toBe(first.state.k);
    expect(next.logits[0]).toBe(3);
    expect([(next.state.k.data as Float32Array)[0], (next.state.v.data as Float32Array)[0], next.state.length]).toEqual([1, 2, 4]);
  });

  it("feeds the frame graph one cache layer per input and writes its rows back, by the manifest's names", async () => {
    const m = flappy();
    const g = m.frame_graph!;
    const tokens = m.token_spec.tokens_per_frame;
    const slots = Array.from({ length: tokens }, (_, i) => 100 + i);
    const [state, logits, kRows, vRows, slotOut, passes, nextFirst] = g.outputs.map((t) => t.name);
    const frame = new FakeSession(g.inputs.map((t) => t.name), () => ({
      [state]: i64(Array.from({ length: tokens - 1 }, (_, i) => i)), [logits]: f32([tokens, m.token_spec.vocab_size], 5),
      [kRows]: f32(g.outputs[2].shape as number[], 9), [vRows]: f32(g.outputs[3].shape as number[], -9),
      [slotOut]: i64(slots), [passes]: i64([2]), [nextFirst]: i64([17]),
    }));
    const backend = new OrtFrameBackend(frame.session, fakePrefill(m).session, m);
    const { state: cache } = await backend.prefill([1, 2, 3], [0, 1, 2]);
    const guess = Array(tokens - 1).fill(0);
    const result = await backend.frame(360, 3, cache, guess, guess, [0.25, 0.75], 1);
    const fed = frame.feeds[0];
    expect([fed.my_action.data[0], fed.my_position.data[0], fed.my_cache_len.data[0]]).toEqual([360n, 3n, 3n]);
    expect(Array.from(fed.my_uniforms.data as Float64Array)).toEqual([0.25, 0.75]);
    expect(fed.my_k_cache_2.dims).toEqual(g.inputs[4].shape);
    expect([result.tokens, result.passes, result.nextFirst, result.state.length]).toEqual(
      [[0, 1, 2, 3, 4, 5, 6, 7, 8], 2, 17, 3 + tokens]);
    const [, , , context, headDim] = m.inputs[2].shape as number[];
    expect([cache.k[100 * headDim], cache.v[(context + 109) * headDim], cache.k[99 * headDim]]).toEqual([9, -9, 0.5]);
  });

  it("names a graph's missing input, as the manifest calls it", () => {
    const m = flappy();
    const decode = new FakeSession(["tokens", "position", "k_cache", "v_cache", "cache_len"], () => ({}));
    expect(() => new OrtFlappyBackend(decode.session, fakePrefill(m).session, m)).toThrow(
      /decode graph lacks input\(s\) my_tokens, my_position, my_k_cache, my_v_cache, my_cache_len/);
  });

  it("runs the Breakout denoiser under the manifest's names", async () => {
    const m = validateManifest(renamed(load("breakout/breakout.json")), "renamed", "breakout") as BreakoutManifest;
    const session = new FakeSession(["my_input"], (feeds) => ({ my_pred: f32([feeds.my_input.dims[0], 3, 64, 64], 0.5) }));
    const denoise = sessionDenoiser(session.session, m);
    const channels = frameLayout(m).inputChannels; // 31: the shipped model sees 8 frames
    expect(channels).toBe(m.inputs[0].shape[1]);
    const out = await denoise(new Float32Array(channels * 64 * 64), 1);
    expect([out.length, out[0], session.feeds[0].my_input.dims]).toEqual([3 * 64 * 64, 0.5, [1, channels, 64, 64]]);
  });
});
