// The dreamed pixel game's DOM: the "DREAM" title naming the game (its gymnasium env id or Minari dataset id), the
// scaled, pixelated screen, the frame counter, frame rate and the action being sent, the key legend, the restart
// button and the sampler sliders. The element ids are what the browser tests (web/e2e/browser.mjs) read.
import { el, readout, slider } from "../shell/dom";
import type { PixelsManifest } from "../shell/manifest";
import type { SamplerSettings } from "../breakout/sampler";

const SCREEN_PIXELS = 384; // the screen's side on the page: 64 x 64 frames scaled by 6
const MAX_STEPS = 8;

const CSS = `
.wm-pixels { display: flex; flex-direction: column; gap: 10px; font: 14px system-ui, sans-serif; }
.wm-pixels .title { display: flex; gap: 10px; align-items: center; font-size: 18px; }
.wm-pixels .badge { padding: 2px 8px; border-radius: 4px; background: rgb(160, 40, 200); color: #fff; font-weight: bold;
  letter-spacing: 0.08em; }
.wm-pixels .play { display: flex; gap: 16px; align-items: flex-start; }
.wm-pixels canvas { image-rendering: pixelated; background: #000; display: block; }
.wm-pixels .caption { font-size: 12px; color: #888; }
.wm-pixels .keys { margin: 0; padding-left: 18px; }
.wm-pixels .controls { display: grid; grid-template-columns: max-content 200px 4em; gap: 6px 10px; align-items: center; }
.wm-pixels .readouts { display: flex; gap: 18px; }
`;

export interface PixelsView {
  root: HTMLDivElement;
  canvas: HTMLCanvasElement;
  frames: HTMLSpanElement; // dreamed frames since the start strip
  fps: HTMLSpanElement;
  action: HTMLSpanElement; // the action sent with the latest request
  start: HTMLSpanElement; // which start strip the dream began from
  restart: HTMLButtonElement;
  steps: HTMLInputElement;
  noise: HTMLInputElement;
}

/** What the dream is of: the gymnasium env id or the Minari dataset id. */
export function gameName(m: PixelsManifest): string {
  const game = m.game as Record<string, unknown>;
  const id = game.source === "minari" ? game.dataset_id : game.env_id;
  return typeof id === "string" && id ? id : m.name;
}

export function buildView(m: PixelsManifest, defaults: SamplerSettings, keyLines: string[]): PixelsView {
  const scale = Math.max(1, Math.floor(SCREEN_PIXELS / Math.max(m.frame.height, m.frame.width)));
  const canvas = el("canvas", { id: "pixels-canvas", width: m.frame.width * scale, height: m.frame.height * scale,
    tabIndex: 0 });
  const frames = el("span", { id: "pixels-frames", textContent: "0" });
  const fps = el("span", { id: "pixels-fps", textContent: "-" });
  const action = el("span", { id: "pixels-action", textContent: "-" });
  const start = el("span", { id: "pixels-start", textContent: "-" });
  const restart = el("button", { id: "pixels-restart", type: "button", textContent: "Restart (R)" });
  const steps = slider("pixels-steps", 1, Math.max(MAX_STEPS, defaults.steps), 1, defaults.steps);
  const noise = slider("pixels-noise", defaults.sigmaMin, Math.max(1, 2 * defaults.sigmaMax), 0.01, defaults.sigmaMax);
  const name = gameName(m);
  const source = m.game.source === "minari" ? "Minari dataset" : "gymnasium";
  const root = el("div", { className: "wm-pixels" },
    el("style", { textContent: CSS }),
    el("div", { className: "title" },
      el("span", { id: "pixels-badge", className: "badge", textContent: "DREAM" }),
      el("span", { id: "pixels-title", textContent: `${name}, dreamed` })),
    el("div", { className: "caption", textContent: `Every frame is the model's (${source} ${name}, ` +
      `${m.num_actions} actions): it starts from ${m.frame.context_frames} real frames and then feeds on its own. ` +
      "There is no simulator behind it." }),
    el("div", { className: "play" },
      el("div", {}, canvas),
      el("div", {},
        el("div", {}, "Keys"),
        el("ul", { id: "pixels-keys", className: "keys" }, ...keyLines.map((line) => el("li", { textContent: line }))),
        el("div", {}, "R or ", restart, ": start again from another real start"))),
    el("div", { className: "readouts" },
      el("span", {}, "Dreamed frames ", frames),
      el("span", {}, "Model ", fps, " frames/s"),
      el("span", {}, "Sending ", action),
      el("span", {}, "Start ", start)),
    el("div", { className: "controls" },
      el("label", { htmlFor: steps.id, textContent: "Denoising steps" }), steps, readout(steps, 0),
      el("label", { htmlFor: noise.id, textContent: "Warm-start noise (sigma max)" }), noise, readout(noise, 2)));
  return { root, canvas, frames, fps, action, start, restart, steps, noise };
}
