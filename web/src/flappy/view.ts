// The Flappy page's DOM: the game canvas (#flappy-canvas) with its game-over overlay (#flappy-over), the speed
// readouts (#flappy-tps, #flappy-fps, #flappy-passes), the status line (#flappy-status) and the live token stream
// (#token-stream); and the screen that draws the newest frame at the next animation frame. The ids are what
// web/e2e/browser.mjs reads.
import { el } from "../shell/dom";
import { canvasSize, drawFrame } from "./render";
import type { TokenSpec } from "./spec";

export const GAME_OVER = "the model says: game over — R to restart";
const STREAM_FRAMES = 6; // frames listed in the token-stream panel

export interface FlappyView {
  root: HTMLDivElement;
  canvas: HTMLCanvasElement;
  overlay: HTMLDivElement; // the game-over message
  tps: HTMLSpanElement;
  fps: HTMLSpanElement;
  passes: HTMLSpanElement;
  status: HTMLDivElement;
  stream: HTMLDivElement;
}

export function buildView(spec: TokenSpec): FlappyView {
  const { width, height } = canvasSize(spec);
  const canvas = el("canvas", { id: "flappy-canvas", width, height, tabIndex: 0, title: "Space or click: flap · R: restart" });
  const overlay = el("div", { id: "flappy-over", hidden: true, textContent: GAME_OVER });
  overlay.style.cssText = "position:absolute;left:0;right:0;top:40%;text-align:center;padding:.6rem;" +
    "background:rgba(0,0,0,.7);color:#fff;font-weight:600;";
  const tps = el("span", { id: "flappy-tps", className: "readout", textContent: "–" });
  const fps = el("span", { id: "flappy-fps", className: "readout", textContent: "–" });
  const passes = el("span", { id: "flappy-passes", className: "readout", textContent: "–" });
  const status = el("div", { id: "flappy-status", textContent: "starting the model…" });
  const stream = el("div", { id: "token-stream", className: "tokens" });
  const stage = el("div", {}, canvas, overlay);
  stage.style.position = "relative";
  const panel = el("div", { className: "panel" },
    el("label", {}, "tokens/s", tps), el("label", {}, "frames/s", fps),
    el("label", { title: "model calls a frame: the frame graph's fixed-point passes, or one per token" }, "calls/frame", passes),
    status,
    el("div", { textContent: "Space / click: flap · R: restart" }), stream);
  const root = el("div", { className: "game flappy" }, stage, panel);
  return { root, canvas, overlay, tps, fps, passes, status, stream };
}

export interface FlappyScreen {
  show(tokens: number[], label: string): void; // draw this frame next, listed in the token stream as `label`
  dispose(): void;
}

export function createScreen(view: FlappyView, spec: TokenSpec, ctx: CanvasRenderingContext2D): FlappyScreen {
  let latest: number[] | null = null;
  let recent: string[] = [];
  let drawPending = 0;
  const draw = () => {
    drawPending = 0;
    if (latest) drawFrame(ctx, spec, latest);
    view.stream.textContent = recent.join("\n");
  };
  return {
    show: (tokens, label) => {
      latest = tokens;
      recent = [`${label}: ${spec.describe(tokens).join("  ")}`, ...recent].slice(0, STREAM_FRAMES);
      drawPending ||= requestAnimationFrame(draw);
    },
    dispose: () => cancelAnimationFrame(drawPending),
  };
}
