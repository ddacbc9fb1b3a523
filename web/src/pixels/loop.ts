// The dreamed pixel game's loop. The context starts as a real start strip of the manifest (src/pixels/strip.ts) and
// then holds the model's own frames: each dreamed frame, already rounded to bytes by the worker, replaces the oldest
// one. The denoiser runs in the diffusion worker Breakout uses (src/breakout/worker.ts -> /breakout-worker.js), one
// prediction in flight at a time, asked for at most TICK_HZ times a second with the action the keys hold then. A
// restart (R, the button) takes the next start strip; a prediction made for the previous one is dropped.
import type { FromWorker, ToWorker } from "../breakout/protocol";
import { frameLayout } from "../breakout/sampler";
import type { Paint } from "../breakout/view";
import type { PixelsManifest } from "../shell/manifest";
import type { GameHost, ModelEntry } from "../shell/types";
import type { PixelsKeys } from "./input";
import { decodeStrip } from "./strip";
import type { PixelsView } from "./view";

const WORKER_URL = "/breakout-worker.js";
export const TICK_HZ = 15;
const FPS_WINDOW_MS = 2000;

/** Read-only state for the browser tests (window.__pixels). */
export interface PixelsProbe {
  frames(): number; // dreamed frames since the current start strip
  total(): number; // dreamed frames since the page opened
  restarts(): number;
  startIndex(): number; // the start strip the dream began from
  action(): number; // the action sent with the latest request (-1 before the first)
  fps(): number;
  frame(): number[]; // the frame on screen, uint8 HWC RGB
  startFrames(index: number): Promise<number[][]>; // a start strip's frames as decoded here
}

export interface PixelsDream {
  probe: PixelsProbe;
  /** Show the first start strip, start the worker on the denoiser's bytes; rejects with a clear message. */
  start(onnx: Promise<Uint8Array>): Promise<void>;
  restart(): void;
  dispose(): void;
}

export function createDream(host: GameHost, entry: ModelEntry, manifest: PixelsManifest, view: PixelsView,
  keys: PixelsKeys, paint: Paint): PixelsDream {
  const layout = frameLayout(manifest);
  const strips = new Map<number, Promise<Uint8Array[]>>();
  const strip = (index: number) => {
    if (!strips.has(index)) {
      strips.set(index, decodeStrip(manifest.start_frames[index], layout).catch((err) => {
        throw new Error(`start strip ${index + 1} of ${manifest.start_frames.length}: ${(err as Error).message}`);
      }));
    }
    return strips.get(index)!;
  };

  let context: Uint8Array[] = []; // oldest first
  let epoch = 0; // bumps at each restart: a prediction of the previous context is dropped
  let startIndex = 0;
  let frames = 0;
  let total = 0;
  let restarts = 0;
  let lastAction = -1;
  let fps = 0;
  const completions: number[] = [];

  let disposed = false;
  let worker: Worker | null = null;
  let ready = false;
  let stopped = false; // a prediction failed: no more requests
  let loading = true; // a start strip is being decoded
  let nextId = 0;
  let inFlight: { id: number; epoch: number } | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastSent = -Infinity;
  const send = (msg: ToWorker, transfer: Transferable[] = []) => worker?.postMessage(msg, transfer);

  const show = (frame: Uint8Array) => paint(view.canvas, (i) => frame[i]);

  const request = () => {
    timer = null;
    if (disposed || !ready || stopped || loading || inFlight) return;
    const copies = context.map((f) => f.slice()); // the buffers are transferred
    const action = keys.action();
    keys.ticked();
    lastAction = action;
    view.action.textContent = manifest.frame.actions[action];
    inFlight = { id: ++nextId, epoch };
    lastSent = performance.now();
    send({ type: "predict", id: inFlight.id, context: copies, action, steps: Number(view.steps.value),
      sigmaMax: Number(view.noise.value), seed: Math.floor(Math.random() * 2 ** 32) }, copies.map((f) => f.buffer));
  };
  const schedule = () => {
    if (disposed || !ready || stopped || loading || inFlight || timer !== null) return;
    timer = setTimeout(request, Math.max(0, lastSent + 1000 / TICK_HZ - performance.now()));
  };

  const dreamed = (frame: Uint8Array, ms: number) => {
    context = [...context.slice(1), frame];
    show(frame);
    frames++;
    total++;
    view.frames.textContent = String(frames);
    const done = performance.now();
    completions.push(done);
    while (completions[0] < done - FPS_WINDOW_MS) completions.shift();
    fps = completions.length > 1 ? (completions.length - 1) * 1000 / (done - completions[0]) : 1000 / Math.max(ms, 1e-3);
    view.fps.textContent = fps.toFixed(1);
  };

  const begin = async (index: number) => {
    const mine = ++epoch;
    loading = true;
    const real = await strip(index);
    if (mine !== epoch || disposed) return;
    startIndex = index;
    context = real.map((f) => f.slice());
    frames = 0;
    view.frames.textContent = "0";
    view.start.textContent = `real strip ${index + 1} of ${manifest.start_frames.length}`;
    show(context[context.length - 1]);
    loading = false;
    schedule();
  };

  const restart = () => {
    if (disposed) return;
    restarts++;
    begin((startIndex + 1) % manifest.start_frames.length).catch((err) => {
      stopped = true;
      host.error((err as Error).message);
    });
  };

  const start = async (onnx: Promise<Uint8Array>): Promise<void> => {
    await begin(0);
    const bytes = await onnx;
    if (disposed) return;
    await new Promise<void>((resolve, reject) => {
      let initialised = false;
      const fail = (message: string) => {
        if (disposed) return;
        if (!initialised) {
          initialised = true;
          reject(new Error(message));
        } else {
          stopped = true;
          host.error(message);
        }
      };
      try {
        worker = new Worker(WORKER_URL, { type: "module" });
      } catch (err) {
        fail(`could not start the model's worker (${WORKER_URL}): ${(err as Error).message ?? err}`);
        return;
      }
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        if (disposed) return;
        const msg = event.data;
        switch (msg.type) {
          case "ready":
            initialised = true;
            ready = true;
            host.status(`${entry.label} dreaming on ${msg.backend}` +
              (msg.backend === "wasm" ? ` (${msg.threads} thread${msg.threads > 1 ? "s" : ""})` : "") + " in a worker");
            resolve();
            schedule();
            return;
          case "frame": {
            if (!inFlight || msg.id !== inFlight.id) return;
            const current = inFlight.epoch === epoch && !loading;
            inFlight = null;
            if (current) dreamed(msg.frame, msg.ms);
            schedule();
            return;
          }
          case "error":
            if (msg.stage === "init") fail(`could not load the model: ${msg.message}`);
            else fail(`The dream stopped: ${msg.message}`);
            return;
        }
      };
      worker.onerror = (event) => {
        event.preventDefault();
        fail(`the model's worker (${WORKER_URL}) failed: ${event.message || "could not load it"}`);
      };
      worker.onmessageerror = () => fail("the model's worker sent a message that could not be read");
      host.status(`Starting ${entry.label} on ${host.runtime.backend}...`);
      host.progress(`Starting the model: creating the onnxruntime-web session (${manifest.onnx}, ${host.runtime.backend})…`);
      send({ type: "init", runtime: host.runtime, manifest, onnx: bytes }, [bytes.buffer]);
    });
  };

  const probe: PixelsProbe = {
    frames: () => frames,
    total: () => total,
    restarts: () => restarts,
    startIndex: () => startIndex,
    action: () => lastAction,
    fps: () => fps,
    frame: () => Array.from(context[context.length - 1] ?? []),
    startFrames: async (index) => (await strip(index)).map((f) => Array.from(f)),
  };

  return {
    probe,
    start,
    restart,
    dispose: () => {
      disposed = true;
      if (timer !== null) clearTimeout(timer);
      worker?.terminate();
      worker = null;
    },
  };
}
