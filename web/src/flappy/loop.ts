// The Flappy frame loop runs in the module worker (src/flappy/worker.ts -> /flappy-worker.js, at a fixed frame rate);
// this side starts it, sends it flaps and restarts and shows what it posts: its start-up steps, each committed frame,
// the speed readouts, the model's done token as the game-over overlay. The first game's start context is chosen here,
// so the screen replays its real frames at once, while the graphs download and the sessions start. It keeps the
// per-game record that window.__flappy exposes to web/e2e/browser.mjs.
import type { FlappyManifest } from "../shell/manifest";
import type { GameHost, OpeningModel } from "../shell/types";
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
  shown(): string; // what the canvas shows: "start context frame i of n" or "model frame"
  view(): "sprites" | "schematic";
  // performance.now() of each start-up step: mounted, firstDraw, graphs (downloaded), ready (sessions), started
  timings(): Record<string, number>;
}

export interface FlappyLoop extends FlappyActions {
  probe: FlappyProbe;
  started: Promise<void>; // the first game started; rejects on an error before it
  mounted(): void; // from now on errors go to host.error
  dispose(): void;
}

/** Show a start context at once, start the worker on the model's graphs once they are downloaded and play from that
 * start context. */
export function startLoop(host: GameHost, model: OpeningModel<FlappyManifest>, view: FlappyView, screen: FlappyScreen,
  spec: TokenSpec): FlappyLoop {
  const manifest = model.manifest;
  const timings: Record<string, number> = { mounted: performance.now() };
  const first = Math.floor(Math.random() * manifest.start_contexts.length);
  let frames = 0, birdY = NaN, done = false, starts = 0, contextIndex = first, decoder = "";
  let passes = 0, passFrames = 0;
  let trace: number[] = [];
  let flapsAt: number[] = [];
  const setStatus = (text: string) => {
    view.status.textContent = text;
    host.status(`Flappy: ${text}`);
  };
  const starting = (text: string) => {
    setStatus(`starting the model: ${text}`);
    host.progress(`Starting the model: ${text}…`);
  };
  screen.start(manifest.start_contexts[first], true);
  birdY = spec.decodeFrame(manifest.start_contexts[first].slice(-spec.stateTokensPerFrame)).birdY;
  setStatus(`loading the model (start context ${first + 1} of ${manifest.start_contexts.length} shown)`);

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
      case "progress":
        if (starts === 0) starting(msg.text);
        return;
      case "ready":
        timings.ready = performance.now();
        decoder = msg.decoder;
        setStatus(`model loaded (${msg.backend}, ${msg.decoder}, ${msg.contexts} start context(s))`);
        send({ type: "reset", contextIndex: starts === 0 ? first : undefined });
        return;
      case "started":
        timings.started ??= performance.now();
        starts += 1;
        frames = 0;
        done = false;
        contextIndex = msg.contextIndex;
        view.overlay.hidden = true;
        screen.start(manifest.start_contexts[msg.contextIndex], false);
        birdY = spec.decodeFrame(msg.tokens).birdY;
        trace = [birdY];
        flapsAt = [];
        setStatus(`playing from start context ${msg.contextIndex + 1} of ${manifest.start_contexts.length}`);
        ready();
        return;
      case "frame":
        frames = msg.frameIndex;
        birdY = spec.decodeFrame(msg.tokens).birdY;
        screen.show(msg.tokens, `#${msg.frameIndex}`, msg.action);
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

  // The graphs' buffers move to the worker. Without a frame graph it decodes with the per-token graph.
  model.graphs.then(({ onnx, prefill, frame }) => {
    timings.graphs = performance.now();
    if (!prefill) throw new Error(`the prefill graph (${manifest.prefill_onnx}) was not loaded`);
    if (!frame && !onnx) throw new Error(`the decode graph (${manifest.onnx}) was not loaded`);
    send({ type: "init", runtime: host.runtime, manifest, onnx, prefill, frame },
      [prefill.buffer, ...(onnx ? [onnx.buffer] : []), ...(frame ? [frame.buffer] : [])]);
  }).catch((err) => fail(err instanceof Error ? err.message : String(err)));

  const probe: FlappyProbe = {
    frames: () => frames,
    birdY: () => birdY,
    done: () => done,
    restarts: () => Math.max(0, starts - 1),
    contextIndex: () => contextIndex,
    decoder: () => decoder,
    trace: () => trace.slice(),
    flaps: () => flapsAt.slice(),
    shown: () => screen.shown(),
    view: () => screen.view(),
    timings: () => ({ ...timings, ...(screen.firstDrawMs() === null ? {} : { firstDraw: screen.firstDrawMs()! }) }),
  };
  return { probe, started, flap, restart, mounted: () => (isMounted = true), dispose: () => worker.terminate() };
}
