// The Breakout dream worker (dist/breakout-worker.js): owns the onnxruntime-web session and runs the warm-start
// sampler (sampler.ts, shared with the parity tests) off the page's main thread, so the real simulator keeps its tick
// and the keys stay responsive however slow the model is. Protocol: protocol.ts. Predictions run one at a time.
// The dreamed pixel game (src/pixels/) runs its gym_pixels denoisers in this worker too: only the action count differs.
import type { DenoiserManifest } from "../shell/manifest";
import { configureOrt, createSession } from "../shell/ort";
import type { FromWorker, ToWorker } from "./protocol";
import {
  type Denoise,
  type FrameLayout,
  frameLayout,
  framesToTensor,
  gaussianNoise,
  sampleNextFrame,
  samplerSettings,
  sessionDenoiser,
  tensorToFrames,
} from "./sampler";
import { mulberry32, seedToState } from "./sim";

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (msg: FromWorker, transfer: Transferable[] = []) => scope.postMessage(msg, transfer);
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

interface Model {
  manifest: DenoiserManifest;
  layout: FrameLayout;
  denoise: Denoise;
}

let model: Promise<Model> | null = null;
let lock: Promise<unknown> = Promise.resolve(); // predictions never overlap on the session

function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = lock.then(fn);
  lock = run.catch(() => undefined);
  return run;
}

/** A uniform [0, 1) source from a uint32 seed (mulberry32, as the simulator's PRNG). */
function seededRandom(seed: number): () => number {
  let state = seedToState(seed);
  return () => {
    const [next, u] = mulberry32(state);
    state = next;
    return u;
  };
}

async function init(msg: Extract<ToWorker, { type: "init" }>): Promise<Model> {
  configureOrt(msg.runtime);
  const session = await createSession(msg.onnx, msg.runtime);
  return { manifest: msg.manifest, layout: frameLayout(msg.manifest), denoise: sessionDenoiser(session, msg.manifest) };
}

async function predict(msg: Extract<ToWorker, { type: "predict" }>): Promise<void> {
  if (!model) throw new Error("predict before init");
  const { manifest, layout, denoise } = await model;
  const started = performance.now();
  const frameValues = 3 * layout.height * layout.width;
  let context: Float32Array;
  if (msg.context instanceof Float32Array) {
    context = msg.context;
  } else {
    if (msg.context.length !== layout.contextFrames) {
      throw new RangeError(`context has ${msg.context.length} frames, the model takes ${layout.contextFrames}`);
    }
    context = framesToTensor(msg.context, layout);
  }
  const noise = msg.noise ?? gaussianNoise(frameValues, msg.seed === undefined ? Math.random : seededRandom(msg.seed));
  const settings = samplerSettings(manifest, { steps: msg.steps, sigmaMax: msg.sigmaMax });
  const pred = await sampleNextFrame(denoise, context, [msg.action], noise, settings, layout);
  const frame = tensorToFrames(pred, layout)[0];
  post({ type: "frame", id: msg.id, frame, ms: performance.now() - started }, [frame.buffer]);
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  switch (msg.type) {
    case "init": {
      if (model) {
        post({ type: "error", stage: "init", message: "the worker was already initialised" });
        return;
      }
      model = init(msg);
      model.then(
        () => post({ type: "ready", backend: msg.runtime.backend, threads: msg.runtime.threads }),
        (err) => post({ type: "error", stage: "init", message: messageOf(err) }),
      );
      return;
    }
    case "predict":
      exclusive(() => predict(msg)).catch((err) =>
        post({ type: "error", stage: "predict", id: msg.id, message: messageOf(err) }));
      return;
    default:
      post({ type: "error", stage: "predict",
        message: `unknown message ${JSON.stringify((msg as { type?: unknown }).type)}` });
  }
};
