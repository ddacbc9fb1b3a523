// The TypeScript frame decoders (src/flappy/decoder.ts + backend.ts) against Python's FrameDecoder and
// FrameGraphDecoder (worldmodels/flappy/decoding/rules.py): identical tokens for every frame, done flags, slide counts and
// frame-graph passes, on
//  * the exported ONNX graphs (Python: onnxruntime; here: onnxruntime-web WASM, 1 thread): a small model whose window
//    slides every two frames, the default shape, and a small sliding-window (ring) model; same start context,
//    actions and uniforms; one decode call per token and one frame-graph call per frame;
//  * a model-free hash backend (exact ties, many new pipes), ordered window and ring, pinning the rules without
//    onnxruntime;
// plus the choice rules (inverse-CDF sampling, new-pipe detection) and the frame graph's guess on Python's cases.
//   WM_FIXTURES=DIR npx vitest run tests/flappy_decoder.test.ts   (DIR from tests/web/web_fixtures.py; see flappy_fixtures.ts)
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { describe, expect, it } from "vitest";
import { OrtFlappyBackend, OrtFrameBackend } from "../src/flappy/backend";
import {
  type Backend, FrameDecoder, FrameGraphDecoder, frameGuess, greedy, pipeIsNew, sampleInverseCdf, uniformStream,
} from "../src/flappy/decoder";
import { TokenSpec } from "../src/flappy/spec";
import { type FlappyManifest, validateManifest } from "../src/shell/manifest";
import { flappyFixtures, readBytes, readJson } from "./flappy_fixtures";

ort.env.wasm.numThreads = 1;

/** tests/web/web_fixtures.py _HashBackend: logits = ((id*7919 + position*104729 + token*1299709) % 1009) / 64. */
class HashBackend implements Backend<null> {
  constructor(readonly context: number, private readonly vocab: number, readonly ring = false) {}

  private logits(token: number, position: number): Float32Array {
    return Float32Array.from({ length: this.vocab }, (_, id) => ((id * 7919 + position * 104729 + token * 1299709) % 1009) / 64);
  }

  async prefill(tokens: ArrayLike<number>, positions: ArrayLike<number>) {
    return { logits: this.logits(tokens[tokens.length - 1], positions[positions.length - 1]), state: null };
  }

  async step(token: number, position: number) {
    return { logits: this.logits(token, position), state: null };
  }
}

/** Replays a decoder.json / frame_decoder.json reference on `decoder`; returns the generated tokens compared. */
async function replay(ref: any, decoder: FrameDecoder<any> | FrameGraphDecoder<any>, spec: TokenSpec): Promise<number> {
  expect([decoder.slideFrames, decoder.temperature]).toEqual([ref.slide_frames, ref.temperature]);
  await decoder.reset(ref.context, ref.start_position);
  let compared = 0;
  for (let f = 0; f < ref.frames.length; f++) {
    const passes = decoder instanceof FrameGraphDecoder ? decoder.passes : 0;
    const frame = await decoder.step(ref.actions[f], ref.uniforms[f]);
    expect(frame, `frame ${f}`).toEqual(ref.frames[f]);
    expect(decoder.done, `done at frame ${f}`).toBe(ref.done[f]);
    expect(decoder.slides, `slides after frame ${f}`).toBe(ref.slides[f]);
    if (decoder instanceof FrameGraphDecoder) expect(decoder.passes - passes, `passes of frame ${f}`).toBe(ref.passes[f]);
    compared += frame.length;
  }
  expect(decoder.history).toEqual(ref.history);
  expect(decoder.position).toBe(ref.final_position);
  const window = decoder.windowTokens;
  expect([window.positions[0], window.tokens.length]).toEqual([ref.window_start_position, ref.window_length]);
  expect(decoder.tokensGenerated).toBe(ref.frames.length * spec.stateTokensPerFrame);
  return compared;
}

describe("flappy frame decoder", () => {
  for (const [name, ring] of [["hash", false], ["hash_ring", true]] as const) {
    it(`matches Python on the hash backend (window, slides, ties, new pipes, sampling): ${name}`, async () => {
      const dir = flappyFixtures();
      const ref = readJson(join(dir, name, "decoder.json"));
      const spec = new TokenSpec(readJson(join(dir, "spec.json")).token_spec);
      expect(ref.ring).toBe(ring);
      const backend = new HashBackend(ref.context_size, spec.vocabSize, ring);
      const compared = await replay(ref, new FrameDecoder(backend, spec,
        { slideFrames: ref.slide_frames, temperature: ref.temperature }), spec);
      expect(ref.margins.sampled_gaps).toBeGreaterThan(10);
      if (ring) expect(ref.slides.at(-1)).toBe(0); // a ring never slides; its window is the newest tokens
      else expect(ref.slides.at(-1)).toBeGreaterThan(10);
      console.log(`${name}: ${compared} tokens identical, ${ref.slides.at(-1)} slides, ${ref.margins.sampled_gaps} sampled gaps`);
    });
  }

  const cases: string[] = process.env.WM_FIXTURES ? readJson(join(flappyFixtures(), "cases.json")).onnx_cases : ["(fixtures)"];
  const runtime = { backend: "wasm", threads: 1, wasmPaths: "" } as const;
  for (const name of cases) {
    it(`matches Python's FrameDecoder on the exported ONNX graphs, one call per token: ${name}`, async () => {
      const dir = join(flappyFixtures(), name);
      const ref = readJson(join(dir, "decoder.json"));
      const manifest = validateManifest(readJson(join(dir, ref.manifest)), name, "flappy") as FlappyManifest;
      expect([ref.slide_frames, ref.temperature]).toEqual([manifest.decoding.slide_frames, manifest.decoding.temperature]);
      const backend = await OrtFlappyBackend.create(manifest, readBytes(join(dir, manifest.onnx)),
        readBytes(join(dir, manifest.prefill_onnx)), runtime);
      const spec = new TokenSpec(manifest.token_spec);
      const compared = await replay(ref, new FrameDecoder(backend, spec,
        { slideFrames: manifest.decoding.slide_frames, temperature: manifest.decoding.temperature }), spec);
      if (manifest.decoding.sliding_window) expect(ref.slides.at(-1)).toBe(0);
      else expect(ref.slides.at(-1)).toBeGreaterThanOrEqual(3); // the window slid several times
      console.log(`${name}: ${compared} tokens identical over ${ref.frames.length} frames, ${ref.slides.at(-1)} slides`);
      await backend.release();
    });

    it(`matches Python's FrameGraphDecoder on the exported frame graph, one call per frame: ${name}`, async () => {
      const dir = join(flappyFixtures(), name);
      const ref = readJson(join(dir, "frame_decoder.json"));
      const manifest = validateManifest(readJson(join(dir, ref.manifest)), name, "flappy") as FlappyManifest;
      const backend = await OrtFrameBackend.create(manifest, readBytes(join(dir, manifest.frame_onnx!)),
        readBytes(join(dir, manifest.prefill_onnx)), runtime);
      const spec = new TokenSpec(manifest.token_spec);
      const decoder = new FrameGraphDecoder(backend, spec,
        { slideFrames: manifest.decoding.slide_frames, temperature: manifest.decoding.temperature });
      const compared = await replay(ref, decoder, spec);
      const passes = ref.passes.reduce((a: number, b: number) => a + b, 0);
      expect(passes).toBeGreaterThanOrEqual(ref.frames.length); // at least one pass a frame, at most one per token
      expect(passes).toBeLessThanOrEqual(ref.frames.length * spec.tokensPerFrame);
      console.log(`${name} frame graph: ${compared} tokens identical over ${ref.frames.length} frames, ` +
        `${ref.slides.at(-1)} slides, ${(passes / ref.frames.length).toFixed(2)} passes a frame`);
      await backend.release();
    });
  }

  it("guesses the next frame as Python's frame_guess does", () => {
    const fx = readJson(join(flappyFixtures(), "spec.json"));
    const spec = new TokenSpec(fx.token_spec);
    for (const c of fx.guesses) expect(frameGuess(spec, c.history), JSON.stringify(c.history)).toEqual(c.guess);
    expect(fx.guesses.some((c: any) => JSON.stringify(c.guess) !== JSON.stringify(c.history.slice(-9)))).toBe(true);
  });

  it("samples with Python's inverse CDF and detects new pipes as Python does", () => {
    const fx = readJson(join(flappyFixtures(), "spec.json"));
    const spec = new TokenSpec(fx.token_spec);
    const legal = spec.legalRange(fx.sampling_slot, fx.sampling_prefix);
    for (const c of fx.sampling) {
      expect(sampleInverseCdf(Float32Array.from(c.logits), legal, c.u, c.temperature)).toBe(c.id);
    }
    for (const c of fx.pipe_is_new) expect(pipeIsNew(spec, c.pipe, c.prefix, c.previous), JSON.stringify(c)).toBe(c.new);
    expect(fx.pipe_is_new.some((c: any) => c.new)).toBe(true);
  });

  it("chooses the lowest id on a tie and draws uniforms in [0, 1)", () => {
    expect(greedy([0, 5, 1, 5, 5], [0, 5])).toBe(1);
    expect(greedy([9, 5, 1, 5, 5], [2, 5])).toBe(3);
    expect(sampleInverseCdf([0, 0, 0, 0], [0, 4], 0.26)).toBe(1);
    const draw = uniformStream(3);
    const u = Array.from({ length: 1000 }, draw);
    expect(u.every((x) => x >= 0 && x < 1) && new Set(u).size === 1000).toBe(true);
    expect(Array.from({ length: 5 }, uniformStream(3))).toEqual(u.slice(0, 5));
  });

  it("refuses a malformed context, a bad action or bad uniforms with clear errors", async () => {
    const dir = flappyFixtures();
    const ref = readJson(join(dir, "hash", "decoder.json"));
    const spec = new TokenSpec(readJson(join(dir, "spec.json")).token_spec);
    const decoder = new FrameDecoder(new HashBackend(ref.context_size, spec.vocabSize), spec, { slideFrames: 2 });
    await expect(decoder.step(0)).rejects.toThrow(/before reset/);
    await expect(decoder.reset(ref.context.slice(0, -1))).rejects.toThrow(/state frame/);
    await expect(decoder.reset(ref.context, 5)).rejects.toThrow(/multiple of 10/);
    const broken = ref.context.slice();
    broken[2] = spec.field("pipe_x").hiddenId; // a visible pipe with a hidden x
    await expect(decoder.reset(broken)).rejects.toThrow(/malformed frame at index 0/);
    await decoder.reset(ref.context);
    await expect(decoder.step(2)).rejects.toThrow(/action must be/);
    await expect(decoder.step(0, [0.5, 1])).rejects.toThrow(/uniforms/);
    expect(spec.isWellFormed(await decoder.step(1))).toBe(true); // seeded uniforms when none are given
    expect(() => new FrameDecoder(new HashBackend(20, spec.vocabSize), spec, { slideFrames: 2 })).toThrow(/slide_frames/);
  });
});
