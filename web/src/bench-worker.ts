// One benchmark configuration (WASM with 1 or 2 threads, or WebGPU) in its own worker: onnxruntime-web's thread
// count is fixed when its WASM starts, so each configuration needs a fresh instance. Driven by src/bench.ts.
//   Breakout: ms per denoiser call (batch 1) and dream frames/s with the real sampler at 1-4 steps.
//   Flappy: one game played by a scripted pilot at a full context window: tokens/s and frames/s of the decoder
//   with one decode call per token and, when the export has one, with one frame-graph call per frame (and its passes
//   per frame), each against a full recompute (the prefill graph over the whole window for every token); then a
//   long game (100,000 tokens by default) whose last 1,000 tokens cost what its first 1,000 did.
// Every timed run follows an untimed warm-up of `warmupSeconds`: the browser runs onnxruntime's WASM from a quick
// baseline compile first and swaps in optimised code only after it has run for a while (measured here: a small
// model decoded ~8,000 tokens/s for its first ~2 s, then ~23,000), so early calls say little about steady speed.
import { BreakoutGame } from "./breakout/sim";
import { framesToTensor, frameLayout, gaussianNoise, sampleNextFrame, samplerSettings, sessionDenoiser } from "./breakout/sampler";
import { OrtFlappyBackend, OrtFrameBackend } from "./flappy/backend";
import { FrameDecoder, FrameGraphDecoder } from "./flappy/decoder";
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
  frame?: Uint8Array; // Flappy: the frame graph, when the export has one
  calls: number; // Breakout: timed denoiser calls; dream frames per step count
  tokens: number; // Flappy: timed tokens with the KV cache, per decoder
  longTokens: number; // Flappy: tokens of the long game (the frame graph's, else the per-token decoder's)
  warmupSeconds: number; // untimed running before each timed measurement
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
  // Warm-up (see the top): the first calls also initialise the graph and the WASM thread pool.
  const until = now() + req.warmupSeconds * 1000;
  do await denoise(input, 1); while (now() < until);
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

/** The benchmarks' player (Python's bench.dream_pilot): flap when the dreamed bird's centre is more than 10 px below
 * the gap centre of the first visible pipe it has not passed. */
function dreamPilot(spec: TokenSpec, tokens: number[]): number {
  const g = spec.geometry;
  const state = spec.decodeFrame(tokens);
  const ahead = state.pipes.filter((p) => p.visible && p.x + g.pipe_width > g.bird_x).sort((a, b) => a.x - b.x);
  return ahead.length && state.birdY + g.bird_height / 2 > ahead[0].gapY + 10 ? 1 : 0;
}

type AnyDecoder = FrameDecoder<any> | FrameGraphDecoder<any>;

/** One game from `context` by the pilot: tokens/s of every 1,000 tokens (100 frames), after `warmupSeconds` of
 * untimed play. The pilot plays on after the model's done token: this times decoding, not the game. */
async function timedGame(decoder: AnyDecoder, context: number[], tokens: number, warmupSeconds: number,
  progress: (text: string) => void): Promise<{ rates: number[]; chunkPasses: number[]; passes: number; frames: number }> {
  const n = decoder.spec.tokensPerFrame;
  const chunk = Math.floor(1000 / n);
  let start = 0;
  const play = async (frames: number, each: (f: number) => boolean | void) => {
    await decoder.reset(context);
    start = now(); // the timed game's clock starts after its prefill
    let action = 0;
    for (let f = 0; f < frames; f++) {
      action = dreamPilot(decoder.spec, await decoder.step(action));
      if (each(f) === false) return;
    }
  };
  const until = now() + warmupSeconds * 1000;
  await play(Infinity, () => now() < until);
  const frames = Math.max(1, Math.round(tokens / 1000)) * chunk;
  const rates: number[] = [];
  const chunkPasses: number[] = []; // model calls per chunk: frame-graph passes, or one per token
  const calls = () => (decoder instanceof FrameGraphDecoder ? decoder.passes : decoder.tokensGenerated / (n - 1) * n);
  let callsBefore = 0;
  await play(frames, (f) => {
    if (f === 0) callsBefore = 0;
    if ((f + 1) % chunk) return;
    const t = now();
    rates.push((chunk * n) / ((t - start) / 1000));
    chunkPasses.push(calls() - callsBefore);
    callsBefore = calls();
    start = t;
    if (rates.length % 5 === 0) progress(`${rates.length * 1000} / ${frames * n} tokens`);
  });
  return { rates, chunkPasses, passes: decoder instanceof FrameGraphDecoder ? decoder.passes : frames * n, frames };
}

const harmonic = (rates: number[]) => rates.length / rates.reduce((a, r) => a + 1 / r, 0);

async function benchFlappy(req: BenchRequest): Promise<BenchRow[]> {
  const m = req.manifest as FlappyManifest;
  const spec = new TokenSpec(m.token_spec);
  const opts = { slideFrames: m.decoding.slide_frames, temperature: m.decoding.temperature, seed: 0 };
  const context = m.start_contexts[0];
  const warmup = req.warmupSeconds;
  const [decode, prefill] = [await createSession(req.onnx, req.runtime), await createSession(req.prefill!, req.runtime)];
  const backend = new OrtFlappyBackend(decode, prefill, m);
  const rows: BenchRow[] = [];
  const row = (metric: string, value: number, unit: string) => rows.push({ task: "flappy", metric, value, unit });
  const progress = (what: string) => (text: string) => post({ type: "progress", text: `flappy ${what}: ${text}` });
  // Both decoders slide an ordered window before a frame that does not fit, so that they make the same frames.
  const perToken = new FrameDecoder(backend, spec, opts, true);
  const token = await timedGame(perToken, context, req.tokens, warmup, progress("1 call per token"));
  const tokenRate = harmonic(token.rates);
  row(`1 call per token, ${backend.context}-token ${backend.ring ? "ring" : "window"}`, tokenRate, "tokens/s");
  let frameRate = 0;
  let longDecoder: AnyDecoder = perToken;
  let longLabel = "1 call per token";
  let frameBackend: OrtFrameBackend | null = null;
  if (req.frame) {
    frameBackend = await OrtFrameBackend.create(m, req.frame, req.prefill!, req.runtime);
    const perFrame = new FrameGraphDecoder(frameBackend, spec, opts);
    const frame = await timedGame(perFrame, context, req.tokens, warmup, progress("frame graph"));
    frameRate = harmonic(frame.rates);
    row("frame graph, 1 call per frame", frameRate, "tokens/s");
    row("frame graph: frames/s", frameRate / spec.tokensPerFrame, "frames/s");
    row("frame graph: passes per frame", frame.passes / frame.frames, "x");
    row("frame graph vs 1 call per token", frameRate / tokenRate, "x");
    longDecoder = perFrame;
    longLabel = "frame graph";
  }
  // Cost does not grow: the cost per token (and per model call: how many passes a frame needs depends on what the
  // game shows) of one long game against the median of five 1,000-token games.
  const cost = (g: { rates: number[]; chunkPasses: number[] }) => {
    const seconds = g.rates.reduce((a, r) => a + 1000 / r, 0);
    const calls = g.chunkPasses.reduce((a, c) => a + c, 0);
    return { perToken: seconds / (g.rates.length * 1000), perCall: seconds / calls };
  };
  const short = [];
  for (let i = 0; i < 5; i++) short.push(cost(await timedGame(longDecoder, context, 1000, i ? 0 : warmup, progress("1,000-token games"))));
  const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const long = cost(await timedGame(longDecoder, context, req.longTokens, 0, progress("long game")));
  const n = Math.max(1, Math.round(req.longTokens / 1000)) * 1000;
  row(`${longLabel}: cost per token, a ${n}-token game / 1,000-token games`, long.perToken / median(short.map((c) => c.perToken)), "x");
  row(`${longLabel}: cost per model call, the same`, long.perCall / median(short.map((c) => c.perCall)), "x");
  await frameBackend?.release();
  const window = perToken.windowTokens;
  const full = window.tokens.concat(Array(backend.context).fill(window.tokens[0])).slice(0, backend.context);
  const positions = Array.from({ length: backend.context }, (_, i) => i);
  for (let i = 0; i < 3; i++) await backend.prefill(full, positions); // warm-up
  const start = now();
  for (let i = 0; i < req.recomputeTokens; i++) await backend.prefill(full, positions);
  const recompute = req.recomputeTokens / ((now() - start) / 1000);
  row(`full recompute (${backend.context}-token prefill per token)`, recompute, "tokens/s");
  row("1 call per token vs recompute", tokenRate / recompute, "x");
  if (frameRate) row("frame graph vs recompute", frameRate / recompute, "x");
  await backend.release();
  return rows;
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
