// The Flappy module worker (dist/flappy-worker.js): owns the onnxruntime-web sessions and the FrameDecoder, and plays
// at a fixed frame rate. A queued flap is read only at a frame boundary (used for that frame, then cleared); only
// committed frames are posted. The model's done token stops the game until the next reset. Protocol: protocol.ts.
// With "Agent plays" on, the agent's policy (agent.ts) runs here beside the decoder: at each frame boundary it sees the
// current dreamed state (a DreamTracker follows every game, agent on or off) and its action is the one fed; queued
// flaps are dropped meanwhile.
// The decoding itself is tested in web/tests/flappy_decoder.test.ts; the worker end to end by web/e2e/browser.mjs.
import { configureOrt } from "../shell/ort";
import type { FlappyManifest } from "../shell/manifest";
import type { RuntimeChoice } from "../shell/types";
import { AgentPolicy, DreamTracker } from "./agent";
import { OrtFlappyBackend, OrtFrameBackend } from "./backend";
import { FrameDecoder, FrameGraphDecoder } from "./decoder";
import type { AgentFrame, FromWorker, ToWorker } from "./protocol";
import { TokenSpec } from "./spec";

const DEFAULT_FPS = 30;
const SMOOTHING = 0.1; // weight of the newest frame in the tokens/s and frames/s averages

const scope = self as unknown as DedicatedWorkerGlobalScope;
let manifest: FlappyManifest | null = null;
let decoder: FrameDecoder | FrameGraphDecoder | null = null;
let fps = DEFAULT_FPS;
let game = 0; // bumped by every reset and error: a loop whose game is no longer current stops
let lastContext = -1;
let flapQueued = false;
let runtime: RuntimeChoice | null = null;
let initialized: Promise<unknown> = Promise.resolve(); // the init in progress (the policy's session waits for it)
let tracker: DreamTracker | null = null; // the current game's state and bird motion, what the agent sees
let policy: AgentPolicy | null = null;
let agentOn = false;
let lock: Promise<unknown> = Promise.resolve(); // decoder calls never overlap

const post = (msg: FromWorker) => scope.postMessage(msg);

function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = lock.then(fn);
  lock = run.catch(() => undefined);
  return run;
}

function fail(err: unknown): void {
  game += 1;
  post({ type: "error", message: err instanceof Error ? err.message : String(err) });
}

/** Resolves after pending messages (input, reset) were handled: a MessageChannel round trip, not clamped like timers. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : yieldToEvents());

function perToken(msg: Extract<ToWorker, { type: "init" }>): Uint8Array {
  if (!msg.onnx) throw new Error(`Flappy worker: no frame graph and no per-token graph (${msg.manifest.onnx}) to decode with`);
  return msg.onnx;
}

async function init(msg: Extract<ToWorker, { type: "init" }>): Promise<void> {
  configureOrt(msg.runtime);
  runtime = msg.runtime;
  const graphs = msg.frame ? [msg.manifest.frame_onnx, msg.manifest.prefill_onnx] : [msg.manifest.onnx, msg.manifest.prefill_onnx];
  post({ type: "progress", text: `creating the onnxruntime-web sessions (${graphs.join(", ")}; ${msg.runtime.backend}` +
    `${msg.runtime.backend === "wasm" ? `, ${msg.runtime.threads} thread(s)` : ""})` });
  const seed = crypto.getRandomValues(new Uint32Array(1))[0];
  const spec = new TokenSpec(msg.manifest.token_spec);
  const opts = { slideFrames: msg.manifest.decoding.slide_frames, temperature: msg.manifest.decoding.temperature, seed };
  // The frame graph when the export has one (one call per frame), else one decode call per token.
  decoder = msg.frame
    ? new FrameGraphDecoder(await OrtFrameBackend.create(msg.manifest, msg.frame, msg.prefill, msg.runtime), spec, opts)
    : new FrameDecoder(await OrtFlappyBackend.create(msg.manifest, perToken(msg), msg.prefill, msg.runtime), spec, opts);
  manifest = msg.manifest;
  tracker = new DreamTracker(spec);
  fps = msg.fps ?? DEFAULT_FPS;
  lastContext = Math.floor(Math.random() * manifest.start_contexts.length) - 1;
  post({ type: "ready", contexts: manifest.start_contexts.length, backend: msg.runtime.backend,
    decoder: msg.frame ? "frame graph" : "per token" });
}

async function reset(contextIndex?: number): Promise<void> {
  if (!decoder || !manifest) throw new Error("Flappy worker: reset before init");
  const count = manifest.start_contexts.length;
  if (contextIndex !== undefined && !(Number.isInteger(contextIndex) && contextIndex >= 0 && contextIndex < count)) {
    throw new Error(`Flappy worker: no start context ${contextIndex} (the model has ${count})`);
  }
  const id = ++game;
  const index = contextIndex ?? (lastContext + 1) % count;
  await exclusive(async () => {
    if (id !== game) return;
    const context = manifest!.start_contexts[index];
    post({ type: "progress", text: `prefilling start context ${index + 1} (${context.length} tokens)` });
    await decoder!.reset(context);
    tracker!.start(context);
    lastContext = index;
    flapQueued = false;
    post({ type: "started", contextIndex: index, tokens: context.slice(-decoder!.spec.stateTokensPerFrame) });
  });
  if (id === game) play(id).catch(fail);
}

async function play(id: number): Promise<void> {
  const d = decoder!;
  const tokensPerFrame = d.spec.tokensPerFrame; // the action and the state tokens
  let frameIndex = 0;
  let due = performance.now();
  let last = due;
  let tokensPerSec = 0;
  let framesPerSec = 0;
  while (id === game) {
    await sleep(due - performance.now());
    if (id !== game) return;
    const done = await exclusive(async () => {
      if (id !== game) return true;
      let agent: AgentFrame | null = null;
      if (agentOn && policy) {
        const obs = tracker!.observation();
        agent = { ...(await policy.act(obs)), obs };
      }
      const action = agent ? agent.action : flapQueued ? 1 : 0;
      flapQueued = false;
      const start = performance.now();
      const passesBefore = d instanceof FrameGraphDecoder ? d.passes : 0;
      const tokens = await d.step(action);
      tracker!.advance(action, tokens);
      const passes = d instanceof FrameGraphDecoder ? d.passes - passesBefore : tokensPerFrame;
      const now = performance.now();
      const speed = (tokensPerFrame * 1000) / Math.max(now - start, 1e-3);
      const rate = 1000 / Math.max(now - last, 1e-3);
      tokensPerSec = frameIndex ? tokensPerSec + SMOOTHING * (speed - tokensPerSec) : speed;
      framesPerSec = frameIndex ? framesPerSec + SMOOTHING * (rate - framesPerSec) : rate;
      last = now;
      frameIndex += 1;
      const over = d.done;
      post({ type: "frame", tokens, action, frameIndex, done: over, tokensPerSec, framesPerSec, passes, agent,
        fed: d.lastAction });
      if (over) post({ type: "done", frameIndex });
      return over;
    });
    if (done) return;
    const interval = fps > 0 ? 1000 / fps : 0;
    due = Math.max(due + interval, performance.now() - interval); // catch up at most one frame after a stall
  }
}

/** The agent's policy session, made once the init has configured onnxruntime-web; a failure is answered, not
 * fatal (the keys keep playing). */
async function loadPolicy(msg: Extract<ToWorker, { type: "policy" }>): Promise<void> {
  await initialized.catch(() => undefined);
  try {
    if (!runtime) throw new Error("the model's sessions were not created");
    policy = await AgentPolicy.create(msg.manifest, msg.onnx, runtime);
    post({ type: "agent-ready" });
  } catch (err) {
    post({ type: "agent-ready", error: err instanceof Error ? err.message : String(err) });
  }
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  const handle = async () => {
    switch (msg.type) {
      case "init": return (initialized = init(msg));
      case "reset": return reset(msg.contextIndex);
      case "input": flapQueued = !agentOn && (flapQueued || msg.flap); return;
      case "policy": return loadPolicy(msg);
      case "agent": agentOn = msg.on; flapQueued = false; return;
      case "fps": fps = msg.fps; return;
      default: throw new Error(`Flappy worker: unknown message ${JSON.stringify((msg as { type?: unknown }).type)}`);
    }
  };
  handle().catch(fail);
};
