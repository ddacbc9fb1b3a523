// The Flappy game page: starts the decoding worker (dist/flappy-worker.js), draws each committed frame on
// #flappy-canvas, shows the live token stream (#token-stream) and the speed readouts (#flappy-tps, #flappy-fps).
// Space or a click flaps, R restarts from another start context; the model's done token shows the game-over overlay.
// window.__flappy exposes the state to web/e2e/browser.mjs, which tests this file end to end.
import type { FlappyManifest } from "../shell/manifest";
import type { Game, GameHost, LoadedModel, MountFlappy } from "../shell/types";
import type { FromWorker, ToWorker } from "./protocol";
import { canvasSize, drawFrame } from "./render";
import { TokenSpec } from "./spec";

const WORKER_URL = "/flappy-worker.js";
const STREAM_FRAMES = 6; // frames listed in the token-stream panel
const GAME_OVER = "the model says: game over — R to restart";
const TRACE_FRAMES = 1000; // the probe's per-frame record of a game stops here (the tests need its first frames)

interface FlappyProbe {
  frames(): number; // frames generated since the current start
  birdY(): number; // the latest frame's decoded bird y, px
  done(): boolean;
  restarts(): number;
  contextIndex(): number;
  trace(): number[]; // the current game's bird y per frame, [0] = its start, while it is under TRACE_FRAMES frames
  flaps(): number[]; // frames() at each flap sent in the current game (its effect shows from the next frame on)
  decoder(): string; // "frame graph" or "per token"
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA"].includes(target.tagName));
}

export const mountFlappy: MountFlappy = async (host: GameHost, model: LoadedModel<FlappyManifest>): Promise<Game> => {
  const manifest = model.manifest;
  const spec = new TokenSpec(manifest.token_spec);
  if (!model.prefill) throw new Error(`${model.entry.label}: the prefill graph (${manifest.prefill_onnx}) was not loaded`);

  const { width, height } = canvasSize(spec);
  const canvas = el("canvas", { id: "flappy-canvas", width, height, tabIndex: 0, title: "Space or click: flap · R: restart" });
  const overlay = el("div", { id: "flappy-over", hidden: true, textContent: GAME_OVER });
  overlay.style.cssText = "position:absolute;left:0;right:0;top:40%;text-align:center;padding:.6rem;" +
    "background:rgba(0,0,0,.7);color:#fff;font-weight:600;";
  const tps = el("span", { id: "flappy-tps", className: "readout", textContent: "–" });
  const fpsOut = el("span", { id: "flappy-fps", className: "readout", textContent: "–" });
  const passesOut = el("span", { id: "flappy-passes", className: "readout", textContent: "–" });
  const status = el("div", { id: "flappy-status", textContent: "starting the model…" });
  const stream = el("div", { id: "token-stream", className: "tokens" });
  const stage = el("div", {}, canvas, overlay);
  stage.style.position = "relative";
  const panel = el("div", { className: "panel" },
    el("label", {}, "tokens/s", tps), el("label", {}, "frames/s", fpsOut),
    el("label", { title: "model calls a frame: the frame graph's fixed-point passes, or one per token" }, "calls/frame", passesOut),
    status,
    el("div", { textContent: "Space / click: flap · R: restart" }), stream);
  const root = el("div", { className: "game flappy" }, stage, panel);
  host.root.append(root);
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("this browser gives no 2D canvas context");

  let frames = 0, birdY = NaN, done = false, starts = 0, contextIndex = -1, decoder = "";
  let passes = 0, passFrames = 0;
  let latest: number[] | null = null;
  let trace: number[] = [];
  let flapsAt: number[] = [];
  let recent: string[] = [];
  let drawPending = 0;
  const setStatus = (text: string) => {
    status.textContent = text;
    host.status(`Flappy: ${text}`);
  };
  const draw = () => {
    drawPending = 0;
    if (latest) drawFrame(ctx, spec, latest);
    stream.textContent = recent.join("\n");
  };
  const show = (tokens: number[], label: string) => {
    latest = tokens;
    birdY = spec.decodeFrame(tokens).birdY;
    recent = [`${label}: ${spec.describe(tokens).join("  ")}`, ...recent].slice(0, STREAM_FRAMES);
    drawPending ||= requestAnimationFrame(draw);
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
  const onKey = (e: KeyboardEvent) => {
    if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.code === "Space") {
      e.preventDefault();
      flap();
    } else if (e.key === "r" || e.key === "R") {
      e.preventDefault();
      restart();
    }
  };
  const onClick = () => {
    canvas.focus({ preventScroll: true });
    flap();
  };
  const dispose = () => {
    worker.terminate();
    window.removeEventListener("keydown", onKey);
    canvas.removeEventListener("pointerdown", onClick);
    cancelAnimationFrame(drawPending);
    delete (window as any).__flappy;
    root.remove();
  };

  // mount resolves at the first start; an error before that rejects it (the shell shows it), later ones go to host.error
  let mounted = false;
  let ready = () => {};
  let failed = (_: Error) => {};
  const started = new Promise<void>((resolve, reject) => { ready = resolve; failed = reject; });
  const fail = (message: string) => {
    setStatus("stopped by an error");
    if (mounted) host.error(message);
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
        overlay.hidden = true;
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
        tps.textContent = msg.tokensPerSec.toFixed(0);
        fpsOut.textContent = msg.framesPerSec.toFixed(1);
        passes += msg.passes;
        passFrames += 1;
        passesOut.textContent = `${(passes / passFrames).toFixed(2)} (${decoder})`;
        return;
      case "done":
        done = true;
        overlay.hidden = false;
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
  (window as any).__flappy = probe;
  window.addEventListener("keydown", onKey);
  canvas.addEventListener("pointerdown", onClick);

  // Copies, so that the LoadedModel stays usable; the copies' buffers move to the worker.
  const onnx = model.onnx.slice();
  const prefill = model.prefill.slice();
  const frame = model.frame?.slice();
  send({ type: "init", runtime: host.runtime, manifest, onnx, prefill, frame },
    [onnx.buffer, prefill.buffer, ...(frame ? [frame.buffer] : [])]);
  try {
    await started;
  } catch (err) {
    dispose();
    throw err;
  }
  mounted = true;
  canvas.focus({ preventScroll: true });
  return { dispose };
};
