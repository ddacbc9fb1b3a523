// The Breakout page's DOM: the score and lives, the real screen (with the model's frame blended over it and the
// "press a key to serve" prompt) and the side-by-side dream screen, the sampler sliders and the two toggles, and the
// painting of 64 x 64 frames onto the scaled canvases. The element ids are what the browser tests
// (web/e2e/browser.mjs) read.
import { checkbox, el, readout, slider } from "../shell/dom";
import type { SamplerSettings } from "./sampler";
import { FRAME_SIZE } from "./sim";

const SCALE = 6; // 64 x 64 -> 384 x 384
const MAX_STEPS = 8;
export const SERVE_PROMPT = "Press a key to serve";

const CSS = `
.wm-breakout { display: flex; flex-direction: column; gap: 10px; font: 14px system-ui, sans-serif; }
.wm-breakout .hud { display: flex; gap: 24px; font-size: 18px; }
.wm-breakout .screens { display: flex; gap: 12px; align-items: flex-start; }
.wm-breakout .screen { position: relative; }
.wm-breakout canvas { image-rendering: pixelated; background: #000; display: block; }
.wm-breakout .caption { font-size: 12px; color: #888; }
.wm-breakout .autonomous-label { position: absolute; top: 6px; left: 6px; right: 6px; padding: 4px 8px;
  background: rgba(160, 40, 200, 0.85); color: #fff; font-weight: bold; text-align: center; border-radius: 4px; }
.wm-breakout .serve-prompt { position: absolute; top: 55%; left: 0; right: 0; padding: 6px; text-align: center;
  background: rgba(0, 0, 0, 0.6); color: #fff; font-size: 18px; font-weight: bold; }
.wm-breakout .controls { display: grid; grid-template-columns: max-content 200px 4em; gap: 6px 10px; align-items: center; }
.wm-breakout .toggles { display: flex; gap: 20px; }
`;

export interface BreakoutView {
  root: HTMLDivElement;
  score: HTMLSpanElement;
  lives: HTMLSpanElement;
  canvas: HTMLCanvasElement; // the real game, the dream blended over it
  servePrompt: HTMLDivElement; // shown while the game waits for a key to serve
  dreamCanvas: HTMLCanvasElement; // the model's latest frame alone (side by side)
  steps: HTMLInputElement;
  noise: HTMLInputElement;
  blend: HTMLInputElement;
  autonomous: HTMLInputElement;
  sideBySide: HTMLInputElement;
  fps: HTMLSpanElement;
  latency: HTMLSpanElement;
}

/** The page's elements, with the sliders starting at the manifest's sampler defaults. The toggles show or hide
 * their own parts of the page (the autonomous label, the dream screen). */
export function buildView(defaults: SamplerSettings): BreakoutView {
  const score = el("span", { id: "breakout-score", textContent: "0" });
  const lives = el("span", { id: "breakout-lives", textContent: "0" });
  const canvas = el("canvas", { id: "breakout-canvas", width: FRAME_SIZE * SCALE, height: FRAME_SIZE * SCALE });
  const dreamCanvas = el("canvas", { id: "dream-canvas", width: FRAME_SIZE * SCALE, height: FRAME_SIZE * SCALE });
  const autonomousLabel = el("div", { id: "dream-autonomous-label", className: "autonomous-label", hidden: true,
    textContent: "AUTONOMOUS DREAM: the model feeds on its own frames" });
  const servePrompt = el("div", { id: "breakout-serve", className: "serve-prompt", textContent: SERVE_PROMPT });
  const steps = slider("dream-steps", 1, Math.max(MAX_STEPS, defaults.steps), 1, defaults.steps);
  const noise = slider("dream-noise", defaults.sigmaMin, Math.max(1, 2 * defaults.sigmaMax), 0.01, defaults.sigmaMax);
  const blend = slider("dream-blend", 0, 1, 0.05, 0.5);
  const autonomous = checkbox("dream-autonomous", "Autonomous dream");
  const sideBySide = checkbox("dream-side-by-side", "Side by side");
  const fps = el("span", { id: "dream-fps", textContent: "-" });
  const latency = el("span", { id: "dream-latency", textContent: "-" });
  const dreamScreen = el("div", { className: "screen", hidden: true }, dreamCanvas,
    el("div", { className: "caption", textContent: "the model's latest frame" }));
  const root = el("div", { className: "wm-breakout" },
    el("style", { textContent: CSS }),
    el("div", { className: "hud" }, el("span", {}, "Score ", score), el("span", {}, "Lives ", lives)),
    el("div", { className: "screens" },
      el("div", { className: "screen" }, canvas, autonomousLabel, servePrompt,
        el("div", { className: "caption", textContent: "real game with the model's frame blended over it" })),
      dreamScreen),
    el("div", { className: "controls" },
      el("label", { htmlFor: steps.id, textContent: "Denoising steps" }), steps, readout(steps, 0),
      el("label", { htmlFor: noise.id, textContent: "Warm-start noise (sigma max)" }), noise, readout(noise, 2),
      el("label", { htmlFor: blend.id, textContent: "Blend (real to dream)" }), blend, readout(blend, 2)),
    el("div", { className: "toggles" }, autonomous.label, sideBySide.label),
    el("div", {}, "Model: ", fps, " frames/s, ", latency, " ms per frame"),
    el("div", { className: "caption", textContent: "Press a key to serve; move with the arrow keys or A / D." }));
  autonomous.input.addEventListener("change", () => {
    autonomousLabel.hidden = !autonomous.input.checked;
    root.dataset.autonomous = String(autonomous.input.checked);
  });
  sideBySide.input.addEventListener("change", () => (dreamScreen.hidden = !sideBySide.input.checked));
  return { root, score, lives, canvas, servePrompt, dreamCanvas, steps, noise, blend, autonomous: autonomous.input,
    sideBySide: sideBySide.input, fps, latency };
}

/** Paints a frame given per byte (HWC RGB, i = pixel * 3 + channel) onto a canvas, scaled without smoothing. */
export type Paint = (target: HTMLCanvasElement, pixel: (i: number) => number) => void;

/** A Paint for width x height frames (the simulator's 64 x 64 unless told; src/pixels/ paints any model's size). */
export function framePainter(width = FRAME_SIZE, height = width): Paint {
  const small = el("canvas", { width, height });
  const smallCtx = small.getContext("2d")!;
  const image = smallCtx.createImageData(width, height);
  return (target, pixel) => {
    for (let p = 0; p < width * height; p++) {
      for (let c = 0; c < 3; c++) image.data[p * 4 + c] = pixel(p * 3 + c);
      image.data[p * 4 + 3] = 255;
    }
    smallCtx.putImageData(image, 0, 0);
    const ctx = target.getContext("2d")!;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, target.width, target.height);
  };
}
