// The Breakout loops. The real game: the simulator ticks at 30 per second on requestAnimationFrame (after a stall it
// catches up at most 5 ticks, slowing down instead of jumping ahead) once the player has served, and waits for a key
// again after each lost ball (src/breakout/serve.ts); every animation frame paints the newest real frame with the
// model's latest one blended over it. The dream: the module worker (src/breakout/worker.ts -> /breakout-worker.js)
// has one "predict" in flight at a time; each answer is shown and immediately followed by the next request with the
// newest context (real frames, or the model's own in autonomous mode) and the action held now. It pauses while the
// game waits for a serve, in either mode, and resumes at the serve.
import type { BreakoutManifest } from "../shell/manifest";
import type { GameHost, ModelEntry } from "../shell/types";
import type { BreakoutKeys } from "./input";
import type { FromWorker, ToWorker } from "./protocol";
import type { ServeGate } from "./serve";
import type { BreakoutGame } from "./sim";
import { type BreakoutView, framePainter } from "./view";

const WORKER_URL = "/breakout-worker.js";
const TICK_MS = 1000 / 30; // simulator ticks at 30 per second
const MAX_CATCH_UP_TICKS = 5;
const FPS_WINDOW_MS = 2000;

/** What the two loops share. */
export interface BreakoutPlay {
  sim: BreakoutGame;
  gate: ServeGate; // whether the game waits for a key to serve
  real: Uint8Array[]; // the newest context frames of the real game, oldest first
  ticks: number; // simulator steps so far
  dream: Uint8Array | null; // the model's latest frame
  dreamFrames: number; // model predictions completed so far
}

/** Starts the real game's loop; returns what stops it. */
export function runGame(play: BreakoutPlay, view: BreakoutView, keys: BreakoutKeys, host: GameHost): () => void {
  const { sim } = play;
  const showScore = () => {
    view.score.textContent = String(sim.score);
    view.lives.textContent = String(sim.lives);
  };
  showScore();
  const tick = () => {
    const before = sim.score;
    const result = play.gate.tick(sim, keys.action());
    keys.ticked();
    if (!result) return;
    play.real = [...play.real.slice(1), sim.render()];
    play.ticks++;
    if (result.gameOver) host.status(`Game over with ${before + result.reward} points. Press a key to serve a new game.`);
    else if (result.lifeLost) host.status(`Ball lost: ${result.lives} left. Press a key to serve.`);
    if (result.lifeLost) play.dream = null; // its last frame shows the lost ball; the next serve dreams afresh
    showScore();
  };
  const paint = framePainter();
  const draw = () => {
    view.servePrompt.hidden = !play.gate.waiting;
    const frame = play.real[play.real.length - 1];
    const b = play.dream ? Number(view.blend.value) : 0;
    const d = play.dream ?? frame;
    paint(view.canvas, (i) => frame[i] * (1 - b) + d[i] * b);
    if (view.sideBySide.checked && play.dream) paint(view.dreamCanvas, (i) => d[i]);
  };
  let raf = 0;
  let last = performance.now();
  let pending = 0;
  const loop = (now: number) => {
    pending += Math.max(0, now - last);
    last = now;
    let n = 0;
    for (; pending >= TICK_MS && n < MAX_CATCH_UP_TICKS; n++) {
      tick();
      pending -= TICK_MS;
    }
    if (n === MAX_CATCH_UP_TICKS) pending = 0;
    draw();
    raf = requestAnimationFrame(loop);
  };
  raf = requestAnimationFrame(loop);
  return () => cancelAnimationFrame(raf);
}

export interface Dream {
  /** Start the worker and create the session on the denoiser's bytes; rejects with a clear message when the model
   * cannot load. */
  start(onnx: Uint8Array): Promise<void>;
  /** The game served: predict again (requests pause while it waits for a serve). */
  resume(): void;
  dispose(): void;
}

export function createDream(play: BreakoutPlay, view: BreakoutView, keys: BreakoutKeys, host: GameHost,
  entry: ModelEntry, manifest: BreakoutManifest): Dream {
  let dreamContext: Uint8Array[] | null = null; // the model's own frames, in autonomous mode
  let contextEpoch = 0; // bumps when autonomous mode is switched, so a late prediction does not leak across
  const completions: number[] = [];
  view.autonomous.addEventListener("change", () => {
    dreamContext = view.autonomous.checked ? play.real.slice() : null;
    contextEpoch++;
  });

  let disposed = false;
  let worker: Worker | null = null;
  let ready = false;
  let stopped = false; // a prediction failed: no more requests
  let nextId = 0;
  let inFlight: { id: number; epoch: number } | null = null;
  const send = (msg: ToWorker, transfer: Transferable[] = []) => worker?.postMessage(msg, transfer);

  const requestNext = () => {
    if (disposed || !ready || stopped || inFlight || play.gate.waiting) return;
    const context = (dreamContext ?? play.real).map((frame) => frame.slice()); // copies: the buffers are transferred
    inFlight = { id: ++nextId, epoch: contextEpoch };
    send({ type: "predict", id: inFlight.id, context, action: keys.action(), steps: Number(view.steps.value),
      sigmaMax: Number(view.noise.value), seed: Math.floor(Math.random() * 2 ** 32) }, context.map((f) => f.buffer));
  };

  const showPrediction = (frame: Uint8Array, ms: number, epoch: number) => {
    const done = performance.now();
    play.dream = frame;
    play.dreamFrames++;
    if (dreamContext && epoch === contextEpoch) dreamContext = [...dreamContext.slice(1), frame];
    completions.push(done);
    while (completions[0] < done - FPS_WINDOW_MS) completions.shift();
    if (completions.length > 1) view.fps.textContent = ((completions.length - 1) * 1000 / (done - completions[0])).toFixed(1);
    else view.fps.textContent = (1000 / Math.max(ms, 1e-3)).toFixed(1);
    view.latency.textContent = ms.toFixed(0);
  };

  const start = (onnx: Uint8Array): Promise<void> => new Promise<void>((resolve, reject) => {
    let initialised = false;
    const fail = (message: string) => {
      if (disposed) return;
      if (!initialised) {
        initialised = true; // settle once
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
          requestNext();
          return;
        case "frame": {
          if (!inFlight || msg.id !== inFlight.id) return;
          const { epoch } = inFlight;
          inFlight = null;
          showPrediction(msg.frame, msg.ms, epoch);
          requestNext();
          return;
        }
        case "error":
          if (msg.stage === "init") fail(`could not load the model: ${msg.message}`);
          else fail(`The model stopped: ${msg.message}. The real game still runs.`);
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
    send({ type: "init", runtime: host.runtime, manifest, onnx }, [onnx.buffer]);
  });

  return {
    start,
    resume: requestNext,
    dispose: () => {
      disposed = true;
      worker?.terminate();
      worker = null;
    },
  };
}
