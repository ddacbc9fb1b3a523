// One benchmark configuration (WASM with 1 or 2 threads, or WebGPU) in its own worker: onnxruntime-web's thread
// count is fixed when its WASM starts, so each configuration needs a fresh instance. Driven by src/bench.ts.
//   Breakout: ms per denoiser call (batch 1) and dream frames/s with the real sampler at 1-4 steps.
//   Flappy: tokens/s of the frame decoder with the KV cache at a full context window, against a full recompute
//   (the prefill graph over the whole window for every token).
import { BreakoutGame } from "./breakout/sim";
import { framesToTensor, frameLayout, gaussianNoise, sampleNextFrame, samplerSettings, sessionDenoiser } from "./breakout/sampler";
import { OrtFlappyBackend } from "./flappy/backend";
import { FrameDecoder } from "./flappy/decoder";
import { TokenSpec } from "./flappy/spec";
import { configureOrt, createSession } from "./shell/ort";
import type { BreakoutManifest, FlappyManifest } from "./shell/manifest";
import type { RuntimeChoice } from "./shell/types";

export interface BenchRequest {
  runtime: RuntimeChoice;
  task: "breakout" | "flappy";
  manifest: BreakoutManifest | FlappyManifest;
  onnx: Uint8Array;
  prefill?: Uint8Array;
  calls: number; // Breakout: timed denoiser calls; dream frames per step count
  tokens: number; // Flappy: timed tokens with the KV cache
  recomputeTokens: number; // Flappy: timed tokens of full recompute
}

export interface BenchRow {
  task: string;
  metric: string;
  value: number;
  unit: string;
}

const now = () => performance.now();
const post = (msg: unknown) => (self as unknown as Worker).postMessage(msg);

async function benchBreakout(req: BenchRequest): Promise<BenchRow[]> {
  const m = req.manifest as BreakoutManifest;
  const session = await createSession(req.onnx, req.runtime);
  const denoise = sessionDenoiser(session, m);
  const layout = frameLayout(m);
  const game = new BreakoutGame(7);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < layout.contextFrames; i++) {
    game.step(i % 3);
    frames.push(game.render());
  }
  const context = framesToTensor(frames, layout);
  const input = new Float32Array(layout.inputChannels * layout.height * layout.width);
  // Warm-up: the first calls initialise the graph and the WASM thread pool, and run far slower than the rest.
  for (let i = 0; i < 3; i++) await denoise(input, 1);
  let start = now();
  for (let i = 0; i < req.calls; i++) await denoise(input, 1);
  const rows: BenchRow[] = [{ task: "breakout", metric: "denoiser call (batch 1)", value: (now() - start) / req.calls, unit: "ms" }];
  for (let steps = 1; steps <= 4; steps++) {
    const settings = samplerSettings(m, { steps });
    const count = Math.max(2, Math.ceil(req.calls / steps));
    start = now();
    for (let i = 0; i < count; i++) {
      await sampleNextFrame(denoise, context, [1], gaussianNoise(3 * layout.height * layout.width), settings, layout);
    }
    rows.push({ task: "breakout", metric: `dream frames/s, ${steps} step${steps > 1 ? "s" : ""}`, value: count / ((now() - start) / 1000), unit: "frames/s" });
    post({ type: "progress", text: `breakout: ${steps} step(s) done` });
  }
  await session.release();
  return rows;
}

async function benchFlappy(req: BenchRequest): Promise<BenchRow[]> {
  const m = req.manifest as FlappyManifest;
  const spec = new TokenSpec(m.token_spec);
  const [decode, prefill] = [await createSession(req.onnx, req.runtime), await createSession(req.prefill!, req.runtime)];
  const backend = new OrtFlappyBackend(decode, prefill, m);
  const decoder = new FrameDecoder(backend, spec, { slideFrames: m.decoding.slide_frames, temperature: m.decoding.temperature, seed: 0 });
  await decoder.reset(m.start_contexts[0]);
  let action = 0;
  const flapEvery = 7; // a steady flap pattern keeps the model's bird in the air
  const nextAction = () => (++action % flapEvery === 0 ? 1 : 0);
  // Fill the window first, so every timed token attends to a full context.
  while (decoder.windowTokens.tokens.length + spec.tokensPerFrame < backend.context) await decoder.step(nextAction());
  const n = spec.tokensPerFrame;
  const frames = Math.ceil(req.tokens / n);
  const slides0 = decoder.slides;
  let start = now();
  for (let f = 0; f < frames; f++) {
    await decoder.step(nextAction());
    if (f % 20 === 0) post({ type: "progress", text: `flappy: ${f * n} / ${frames * n} tokens` });
  }
  const cached = (frames * n) / ((now() - start) / 1000);
  const slides = decoder.slides - slides0;
  const window = decoder.windowTokens;
  const full = window.tokens.concat(Array(backend.context).fill(window.tokens[0])).slice(0, backend.context);
  const positions = Array.from({ length: backend.context }, (_, i) => i);
  await backend.prefill(full, positions); // warm-up
  start = now();
  for (let i = 0; i < req.recomputeTokens; i++) await backend.prefill(full, positions);
  const recompute = req.recomputeTokens / ((now() - start) / 1000);
  await decode.release();
  await prefill.release();
  return [
    { task: "flappy", metric: `KV cache, ${frames * n} tokens at a ${backend.context}-token window (${slides} slides)`, value: cached, unit: "tokens/s" },
    { task: "flappy", metric: `full recompute (${backend.context}-token prefill per token)`, value: recompute, unit: "tokens/s" },
    { task: "flappy", metric: "KV cache vs recompute", value: cached / recompute, unit: "x" },
  ];
}

self.onmessage = async (event: MessageEvent<BenchRequest>) => {
  const req = event.data;
  try {
    configureOrt(req.runtime);
    const rows = req.task === "breakout" ? await benchBreakout(req) : await benchFlappy(req);
    post({ type: "done", rows });
  } catch (err) {
    post({ type: "error", message: err instanceof Error ? err.message : String(err) });
  }
};
