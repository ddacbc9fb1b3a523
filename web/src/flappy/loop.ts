// The Flappy frame loop runs in the module worker (src/flappy/worker.ts -> /flappy-worker.js, at a fixed frame rate);
// this side starts it, sends it flaps and restarts and shows what it posts: each committed frame, the speed readouts,
// the model's done token as the game-over overlay. It keeps the per-game record that window.__flappy exposes to
// web/e2e/browser.mjs.
import type { FlappyManifest } from "../shell/manifest";
import type { GameHost, LoadedModel } from "../shell/types";
import type { FlappyActions } from "./input";
import type { FromWorker, ToWorker } from "./protocol";
import type { TokenSpec } from "./spec";
import { type FlappyScreen, type FlappyView, GAME_OVER } from "./view";

const WORKER_URL = "/flappy-worker.js";
const TRACE_FRAMES = 1000; // the probe's per-frame record of a game stops here (the tests need its first frames)

export interface FlappyProbe {
  frames(): number; // frames generated since the current start
  birdY(): number; // the latest frame's decoded bird y, px
  done(): boolean;
  restarts(): number;
  contextIndex(): number;
  trace(): number[]; // the current game's bird y per frame, [0] = its start, while it is under TRACE_FRAMES frames
  flaps(): number[]; // frames() at each flap sent in the current game (its effect shows from the next frame on)
  decoder(): string; // "frame graph" or "per token"
}

export interface FlappyLoop extends FlappyActions {
  probe: FlappyProbe;
  started: Promise<void>; // the first game started; rejects on an error before it
  mounted(): void; // from now on errors go to host.error
  dispose(): void;
}

/** Start the worker on the model's graphs (`model.prefill` must be loaded) and play from the first start context. */
export function startLoop(host: GameHost, model: LoadedModel<FlappyManifest>, view: FlappyView, screen: FlappyScreen,
  spec: TokenSpec): FlappyLoop {
  const manifest = model.manifest;
  let frames = 0, birdY = NaN, done = false, starts = 0, contextIndex = -1, decoder = "";
  let passes = 0, passFrames = 0;
  let trace: number[] = [];
  let flapsAt: number[] = [];
  const setStatus = (text: string) => {
    view.status.textContent = text;
    host.status(`Flappy: ${text}`);
  };
  const show = (tokens: number[], label: string) => {
    birdY = spec.decodeFrame(tokens).birdY;
    screen.show(tokens, label);
  };

  const worker = new Worker(WORKER_URL, { type: "module" });
  const send = (msg: ToWorker, transfer: Transferable[] = []) => worker.postMessage(msg, transfer);
  const restart = () => {
    if (starts > 0) send({ type: "reset" }); // before the first start the worker is still loading
  };
  const flap = () => {
    if (done) return;
    send({ type: "input", flap: true });
    flapsAt.push(frames);
  };

  // `started` resolves at the first start and an error before it rejects it (the shell shows it); later ones go to
  // host.error.
  let isMounted = false;
  let ready = () => {};
  let failed = (_: Error) => {};
  const started = new Promise<void>((resolve, reject) => { ready = resolve; failed = reject; });
  const fail = (message: string) => {
    setStatus("stopped by an error");
    if (isMounted) host.error(message);
    else failed(new Error(message));
  };
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    const msg = event.data;
    switch (msg.type) {
      case "ready":
        decoder = msg.decoder;
        setStatus(`model loaded (${msg.backend}, ${msg.decoder}, ${msg.contexts} start context(s))`);
        send({ type: "reset" });
        return;
      case "started":
        starts += 1;
        frames = 0;
        done = false;
        contextIndex = msg.contextIndex;
        view.overlay.hidden = true;
        show(msg.tokens, "start");
        trace = [birdY];
        flapsAt = [];
        setStatus(`playing from start context ${msg.contextIndex + 1} of ${manifest.start_contexts.length}`);
        ready();
        return;
      case "frame":
        frames = msg.frameIndex;
        show(msg.tokens, `#${msg.frameIndex}`);
        if (msg.frameIndex === trace.length && trace.length < TRACE_FRAMES) trace.push(birdY);
        view.tps.textContent = msg.tokensPerSec.toFixed(0);
        view.fps.textContent = msg.framesPerSec.toFixed(1);
        passes += msg.passes;
        passFrames += 1;
        view.passes.textContent = `${(passes / passFrames).toFixed(2)} (${decoder})`;
        return;
      case "done":
        done = true;
        view.overlay.hidden = false;
        setStatus(`${GAME_OVER} (frame ${msg.frameIndex})`);
        return;
      case "error":
        fail(`Flappy: ${msg.message}`);
        return;
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    fail(`the Flappy worker (${WORKER_URL}) failed: ${event.message || "could not load it"}`);
  };

  // Copies, so that the LoadedModel stays usable; the copies' buffers move to the worker.
  const onnx = model.onnx.slice();
  const prefill = model.prefill!.slice();
  const frame = model.frame?.slice();
  send({ type: "init", runtime: host.runtime, manifest, onnx, prefill, frame },
    [onnx.buffer, prefill.buffer, ...(frame ? [frame.buffer] : [])]);

  const probe: FlappyProbe = {
    frames: () => frames,
    birdY: () => birdY,
    done: () => done,
    restarts: () => Math.max(0, starts - 1),
    contextIndex: () => contextIndex,
    decoder: () => decoder,
    trace: () => trace.slice(),
    flaps: () => flapsAt.slice(),
  };
  return { probe, started, flap, restart, mounted: () => (isMounted = true), dispose: () => worker.terminate() };
}
