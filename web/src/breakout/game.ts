// The Breakout page: the real simulator (src/breakout/sim.ts) is played with the keyboard at a fixed tick and stays
// authoritative over the paddle, score and lives; the neural "dream" (the exported denoiser, sampled by
// src/breakout/sampler.ts) runs in a module worker (src/breakout/worker.ts -> /breakout-worker.js) at its own pace,
// one prediction in flight at a time, and its latest frame is blended over the real one. In "autonomous dream" the
// model's own frames feed its context. Plain DOM, no framework.
// Tested in a browser by the player's end-to-end tests through the element ids below and window.__breakout.
import type { BreakoutManifest } from "../shell/manifest";
import type { Game, GameHost, LoadedModel, MountBreakout } from "../shell/types";
import type { FromWorker, ToWorker } from "./protocol";
import { frameLayout, samplerSettings } from "./sampler";
import { BreakoutGame, FRAME_SIZE, LEFT, NOOP, RIGHT } from "./sim";

const WORKER_URL = "/breakout-worker.js";
const TICK_MS = 1000 / 30; // simulator ticks at 30 per second
const MAX_CATCH_UP_TICKS = 5; // after a stall the game slows down instead of jumping ahead
const SCALE = 6; // 64 x 64 -> 384 x 384
const MAX_STEPS = 8;
const FPS_WINDOW_MS = 2000;
const ACTION_ORDER = ["noop", "left", "right"]; // the simulator's action ids 0, 1, 2

/** Read-only hook for browser tests. */
export interface BreakoutDebug {
  paddleX(): number; // the simulator's paddle left edge (pixels)
  dreamFrames(): number; // model predictions completed so far
  tick(): number; // simulator steps so far
}

declare global {
  interface Window {
    __breakout?: BreakoutDebug;
  }
}

const CSS = `
.wm-breakout { display: flex; flex-direction: column; gap: 10px; font: 14px system-ui, sans-serif; }
.wm-breakout .hud { display: flex; gap: 24px; font-size: 18px; }
.wm-breakout .screens { display: flex; gap: 12px; align-items: flex-start; }
.wm-breakout .screen { position: relative; }
.wm-breakout canvas { image-rendering: pixelated; background: #000; display: block; }
.wm-breakout .caption { font-size: 12px; color: #888; }
.wm-breakout .autonomous-label { position: absolute; top: 6px; left: 6px; right: 6px; padding: 4px 8px;
  background: rgba(160, 40, 200, 0.85); color: #fff; font-weight: bold; text-align: center; border-radius: 4px; }
.wm-breakout .controls { display: grid; grid-template-columns: max-content 200px 4em; gap: 6px 10px; align-items: center; }
.wm-breakout .toggles { display: flex; gap: 20px; }
`;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function slider(id: string, min: number, max: number, step: number, value: number): HTMLInputElement {
  return el("input", { id, type: "range", min: String(min), max: String(max), step: String(step), value: String(value) });
}

/** Why this model cannot dream in this player, or null when it can. */
function incompatibility(m: BreakoutManifest): string | null {
  if (m.frame.height !== FRAME_SIZE || m.frame.width !== FRAME_SIZE) {
    return `the model works on ${m.frame.height}x${m.frame.width} frames; the simulator renders ${FRAME_SIZE}x${FRAME_SIZE}`;
  }
  if (m.frame.actions.join() !== ACTION_ORDER.join()) {
    return `the model's actions are [${m.frame.actions.join(", ")}]; the simulator's are [${ACTION_ORDER.join(", ")}]`;
  }
  return null;
}

export const mountBreakout: MountBreakout = async (host: GameHost, model: LoadedModel<BreakoutManifest>): Promise<Game> => {
  const manifest = model.manifest;
  const layout = frameLayout(manifest);
  const defaults = samplerSettings(manifest);

  // --- DOM ---
  const score = el("span", { id: "breakout-score", textContent: "0" });
  const lives = el("span", { id: "breakout-lives", textContent: "0" });
  const canvas = el("canvas", { id: "breakout-canvas", width: FRAME_SIZE * SCALE, height: FRAME_SIZE * SCALE });
  const dreamCanvas = el("canvas", { id: "dream-canvas", width: FRAME_SIZE * SCALE, height: FRAME_SIZE * SCALE });
  const autonomousLabel = el("div", { id: "dream-autonomous-label", className: "autonomous-label", hidden: true,
    textContent: "AUTONOMOUS DREAM: the model feeds on its own frames" });
  const steps = slider("dream-steps", 1, Math.max(MAX_STEPS, defaults.steps), 1, defaults.steps);
  const noise = slider("dream-noise", defaults.sigmaMin, Math.max(1, 2 * defaults.sigmaMax), 0.01, defaults.sigmaMax);
  const blend = slider("dream-blend", 0, 1, 0.05, 0.5);
  const autonomous = el("input", { id: "dream-autonomous", type: "checkbox" });
  const sideBySide = el("input", { id: "dream-side-by-side", type: "checkbox" });
  const fps = el("span", { id: "dream-fps", textContent: "-" });
  const latency = el("span", { id: "dream-latency", textContent: "-" });
  const shown = (input: HTMLInputElement, digits: number) => {
    const out = el("output", { textContent: Number(input.value).toFixed(digits) });
    input.addEventListener("input", () => (out.textContent = Number(input.value).toFixed(digits)));
    return out;
  };
  const dreamScreen = el("div", { className: "screen", hidden: true }, dreamCanvas,
    el("div", { className: "caption", textContent: "the model's latest frame" }));
  const root = el("div", { className: "wm-breakout" },
    el("style", { textContent: CSS }),
    el("div", { className: "hud" }, el("span", {}, "Score ", score), el("span", {}, "Lives ", lives)),
    el("div", { className: "screens" },
      el("div", { className: "screen" }, canvas, autonomousLabel,
        el("div", { className: "caption", textContent: "real game with the model's frame blended over it" })),
      dreamScreen),
    el("div", { className: "controls" },
      el("label", { htmlFor: steps.id, textContent: "Denoising steps" }), steps, shown(steps, 0),
      el("label", { htmlFor: noise.id, textContent: "Warm-start noise (sigma max)" }), noise, shown(noise, 2),
      el("label", { htmlFor: blend.id, textContent: "Blend (real to dream)" }), blend, shown(blend, 2)),
    el("div", { className: "toggles" },
      el("label", {}, autonomous, " Autonomous dream"),
      el("label", {}, sideBySide, " Side by side")),
    el("div", {}, "Model: ", fps, " frames/s, ", latency, " ms per frame"),
    el("div", { className: "caption", textContent: "Move with the arrow keys or A / D." }));
  host.root.append(root);

  // --- the real game ---
  const sim = new BreakoutGame(Math.floor(Math.random() * 2 ** 32));
  let real: Uint8Array[] = Array.from({ length: layout.contextFrames }, () => sim.render()); // oldest first
  let ticks = 0;
  const held = new Set<string>();
  const tapped = new Set<string>(); // pressed since the last tick: a tap shorter than a tick (or a stall) still counts
  const action = (): number => {
    const down = (key: string) => held.has(key) || tapped.has(key);
    const left = down("ArrowLeft") || down("a");
    const right = down("ArrowRight") || down("d");
    return left === right ? NOOP : left ? LEFT : RIGHT;
  };
  const showScore = () => {
    score.textContent = String(sim.score);
    lives.textContent = String(sim.lives);
  };
  showScore();

  const tick = () => {
    const before = sim.score;
    const result = sim.step(action());
    tapped.clear();
    real = [...real.slice(1), sim.render()];
    ticks++;
    if (result.gameOver) host.status(`Game over with ${before + result.reward} points; a new game has started.`);
    showScore();
  };

  const gameKey = (e: KeyboardEvent): string | null => {
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    return ["ArrowLeft", "ArrowRight", "a", "d"].includes(key) ? key : null;
  };
  const onKeyDown = (e: KeyboardEvent) => {
    const key = gameKey(e);
    if (!key || (e.target instanceof HTMLElement && e.target.matches("input, select, textarea"))) return;
    held.add(key);
    tapped.add(key);
    e.preventDefault();
  };
  const onKeyUp = (e: KeyboardEvent) => {
    const key = gameKey(e);
    if (key) held.delete(key);
  };
  const onBlur = () => {
    held.clear();
    tapped.clear();
  };
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  window.addEventListener("blur", onBlur);
  // A slider keeps the keyboard only while it is dragged; then the arrows move the paddle again.
  for (const input of [steps, noise, blend, autonomous, sideBySide]) input.addEventListener("change", () => input.blur());

  // --- the dream ---
  let dream: Uint8Array | null = null;
  let dreamCount = 0;
  let dreamContext: Uint8Array[] | null = null; // the model's own frames, in autonomous mode
  let contextEpoch = 0; // bumps when autonomous mode is switched, so a late prediction does not leak across
  const completions: number[] = [];
  autonomous.addEventListener("change", () => {
    dreamContext = autonomous.checked ? real.slice() : null;
    contextEpoch++;
    autonomousLabel.hidden = !autonomous.checked;
    root.dataset.autonomous = String(autonomous.checked);
  });
  sideBySide.addEventListener("change", () => (dreamScreen.hidden = !sideBySide.checked));

  // The worker: one "predict" in flight at a time; each answer is shown and immediately followed by the next request
  // with the newest context (real frames, or the model's own in autonomous mode) and the action held right now.
  let disposed = false;
  let worker: Worker | null = null;
  let ready = false;
  let stopped = false; // a prediction failed: no more requests
  let nextId = 0;
  let inFlight: { id: number; epoch: number } | null = null;
  const send = (msg: ToWorker, transfer: Transferable[] = []) => worker?.postMessage(msg, transfer);

  const requestNext = () => {
    if (disposed || !ready || stopped || inFlight) return;
    const context = (dreamContext ?? real).map((frame) => frame.slice()); // copies: the buffers are transferred
    inFlight = { id: ++nextId, epoch: contextEpoch };
    send({ type: "predict", id: inFlight.id, context, action: action(), steps: Number(steps.value),
      sigmaMax: Number(noise.value), seed: Math.floor(Math.random() * 2 ** 32) }, context.map((f) => f.buffer));
  };

  const showPrediction = (frame: Uint8Array, ms: number, epoch: number) => {
    const done = performance.now();
    dream = frame;
    dreamCount++;
    if (dreamContext && epoch === contextEpoch) dreamContext = [...dreamContext.slice(1), frame];
    completions.push(done);
    while (completions[0] < done - FPS_WINDOW_MS) completions.shift();
    if (completions.length > 1) fps.textContent = ((completions.length - 1) * 1000 / (done - completions[0])).toFixed(1);
    else fps.textContent = (1000 / Math.max(ms, 1e-3)).toFixed(1);
    latency.textContent = ms.toFixed(0);
  };

  /** Start the worker and create the session there; rejects with a clear message when the model cannot load. */
  const startDream = (): Promise<void> => new Promise<void>((resolve, reject) => {
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
          host.status(`${model.entry.label} dreaming on ${msg.backend}` +
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
    host.status(`Starting ${model.entry.label} on ${host.runtime.backend}...`);
    const onnx = model.onnx.slice(); // a copy: the shell keeps its bytes
    send({ type: "init", runtime: host.runtime, manifest, onnx }, [onnx.buffer]);
  });

  // --- drawing ---
  const small = el("canvas", { width: FRAME_SIZE, height: FRAME_SIZE });
  const smallCtx = small.getContext("2d")!;
  const image = smallCtx.createImageData(FRAME_SIZE, FRAME_SIZE);
  const paint = (target: HTMLCanvasElement, pixel: (i: number) => number) => {
    for (let p = 0; p < FRAME_SIZE * FRAME_SIZE; p++) {
      for (let c = 0; c < 3; c++) image.data[p * 4 + c] = pixel(p * 3 + c);
      image.data[p * 4 + 3] = 255;
    }
    smallCtx.putImageData(image, 0, 0);
    const ctx = target.getContext("2d")!;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, target.width, target.height);
  };
  const draw = () => {
    const frame = real[real.length - 1];
    const b = dream ? Number(blend.value) : 0;
    const d = dream ?? frame;
    paint(canvas, (i) => frame[i] * (1 - b) + d[i] * b);
    if (sideBySide.checked && dream) paint(dreamCanvas, (i) => d[i]);
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

  window.__breakout = { paddleX: () => sim.paddleX, dreamFrames: () => dreamCount, tick: () => ticks };

  const dispose = () => {
    if (disposed) return;
    disposed = true;
    cancelAnimationFrame(raf);
    window.removeEventListener("keydown", onKeyDown);
    window.removeEventListener("keyup", onKeyUp);
    window.removeEventListener("blur", onBlur);
    delete window.__breakout;
    worker?.terminate();
    worker = null;
    root.remove();
  };

  const problem = incompatibility(manifest);
  if (problem) {
    host.error(`This model cannot dream here: ${problem}. The real game still runs.`);
  } else {
    try {
      await startDream();
    } catch (err) {
      dispose(); // the shell shows the error in place of the game
      throw err;
    }
  }
  return { dispose };
};
