// The Flappy page's DOM: the game canvas (#flappy-canvas) with its game-over overlay (#flappy-over), the speed
// readouts (#flappy-tps, #flappy-fps, #flappy-passes), the status line (#flappy-status), the "Schematic view" toggle
// (#flappy-schematic) with the note shown when the sprites cannot be had (#flappy-sprites-note), the "Agent plays"
// toggle (#flappy-agent, enabled once a policy for Flappy is loaded) with the agent's last action
// (#flappy-agent-action) and a line about its policy (#flappy-agent-note), and the live token stream (#token-stream);
// and the screen that draws the newest frame at the next animation frame, with the game's
// sprites (sprites.ts) or schematically (render.ts). Before the model runs, the screen replays the chosen start
// context's real frames and holds its last one, where the game will go on. The ids are what web/e2e/browser.mjs
// reads.
import { checkbox, el } from "../shell/dom";
import { canvasSize, drawFrame } from "./render";
import type { FrameState, TokenSpec } from "./spec";
import { drawSprites, PoseTracker, type Sprites } from "./sprites";

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
  schematic: HTMLInputElement; // checked: draw schematically, not with the sprites
  spritesNote: HTMLDivElement;
  agent: HTMLInputElement; // checked: the agent's policy plays, the keys are ignored
  agentAction: HTMLSpanElement; // "agent: flap" / "agent: noop"
  agentNote: HTMLDivElement; // which policy, or why there is none
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
  const status = el("div", { id: "flappy-status", textContent: "loading the model…" });
  const schematic = checkbox("flappy-schematic", "Schematic view");
  schematic.label.style.justifyContent = "flex-start"; // the panel spreads its other labels across
  const spritesNote = el("div", { id: "flappy-sprites-note", hidden: true });
  spritesNote.style.color = "var(--muted)";
  const agent = checkbox("flappy-agent", "Agent plays");
  agent.input.disabled = true;
  agent.label.style.justifyContent = "flex-start";
  agent.label.title = "a trained PPO policy plays the dream (models/<folder>/policy.json); your keys are ignored meanwhile";
  const agentAction = el("span", { id: "flappy-agent-action", className: "readout", textContent: "agent: –" });
  const agentRow = el("div", {}, agent.label, " ", agentAction);
  agentRow.style.cssText = "display:flex;gap:.6rem;align-items:center;";
  const agentNote = el("div", { id: "flappy-agent-note", textContent: "no agent policy" });
  agentNote.style.color = "var(--muted)";
  const stream = el("div", { id: "token-stream", className: "tokens" });
  const stage = el("div", {}, canvas, overlay);
  stage.style.position = "relative";
  const panel = el("div", { className: "panel" },
    el("label", {}, "tokens/s", tps), el("label", {}, "frames/s", fps),
    el("label", { title: "model calls a frame: the frame graph's fixed-point passes, or one per token" }, "calls/frame", passes),
    status, schematic.label, spritesNote,
    el("div", { textContent: "Space / click: flap · R: restart" }), agentRow, agentNote, stream);
  const root = el("div", { className: "game flappy" }, stage, panel);
  schematic.input.addEventListener("change", () => schematic.input.blur()); // Space flaps again, not toggles
  agent.input.addEventListener("change", () => agent.input.blur());
  return { root, canvas, overlay, tps, fps, passes, status, schematic: schematic.input, spritesNote,
    agent: agent.input, agentAction, agentNote, stream };
}

export interface FlappyScreen {
  /** A game starts from `context` (a start context's tokens): replay its frames at the game's frame rate
   * (`replay`) or show its last one at once; then frames follow with `show`. */
  start(context: number[], replay: boolean): void;
  /** Draw this frame next, made with `action` from the frame before; listed in the token stream as `label`. */
  show(tokens: number[], label: string, action: number): void;
  /** What the canvas shows: "start context frame i of n" or "model frame". */
  shown(): string;
  view(): "sprites" | "schematic";
  firstDrawMs(): number | null; // performance.now() of the first drawn frame
  dispose(): void;
}

/** The screen; `sprites` settles before the first frame is drawn (a rejection, with its reason, means schematic). */
export function createScreen(view: FlappyView, spec: TokenSpec, ctx: CanvasRenderingContext2D,
  sprites: Promise<Sprites>): FlappyScreen {
  const g = spec.geometry;
  const pose = new PoseTracker(g);
  let images: Sprites | null = null;
  let settled = false;
  let latest: FrameState | null = null;
  let latestTokens: number[] | null = null;
  let what = "nothing";
  let recent: string[] = [];
  let drawPending = 0;
  let replayTimer = 0;
  let firstDraw: number | null = null;
  const draw = () => {
    drawPending = 0;
    if (!settled || !latest || !latestTokens) return;
    if (images && !view.schematic.checked) drawSprites(ctx, g, latest, images, pose.pose(images.base.width));
    else drawFrame(ctx, spec, latestTokens);
    firstDraw ??= performance.now();
    view.stream.textContent = recent.join("\n");
  };
  const redraw = () => (drawPending ||= requestAnimationFrame(draw));
  const list = (tokens: number[], label: string) => {
    recent = [`${label}: ${spec.describe(tokens).join("  ")}`, ...recent].slice(0, STREAM_FRAMES);
  };
  const frame = (tokens: number[], action: number | null) => {
    const state = spec.decodeFrame(tokens);
    if (latest && action !== null) pose.step(latest, state, action);
    latest = state;
    latestTokens = tokens;
  };
  sprites.then((s) => (images = s), (err) => {
    view.schematic.checked = true;
    view.schematic.disabled = true;
    view.spritesNote.textContent = `No game sprites (${err instanceof Error ? err.message : err}): drawn schematically.`;
    view.spritesNote.hidden = false;
  }).finally(() => {
    settled = true;
    redraw();
  });
  view.schematic.addEventListener("change", redraw);
  const stopReplay = () => {
    clearInterval(replayTimer);
    replayTimer = 0;
  };
  return {
    start: (context, replay) => {
      stopReplay();
      const per = spec.tokensPerFrame;
      const frames = Array.from({ length: Math.ceil(context.length / per) }, (_, i) => context.slice(i * per, i * per + per));
      pose.reset();
      latest = null;
      const showFrame = (i: number) => {
        frame(frames[i].slice(0, spec.stateTokensPerFrame), i > 0 ? spec.decodeFrame(frames[i - 1]).action : null);
        what = `start context frame ${i + 1} of ${frames.length}`;
        list(frames[i].slice(0, spec.stateTokensPerFrame), `start ${i + 1}/${frames.length}`);
        redraw();
      };
      if (!replay) {
        frames.forEach((_, i) => showFrame(i));
        return;
      }
      let i = 0;
      showFrame(i++);
      replayTimer = window.setInterval(() => {
        if (i < frames.length) showFrame(i++);
        else stopReplay();
      }, 1000 / g.fps);
    },
    show: (tokens, label, action) => {
      stopReplay();
      frame(tokens, action);
      what = "model frame";
      list(tokens, label);
      redraw();
    },
    shown: () => what,
    view: () => (images && !view.schematic.checked ? "sprites" : "schematic"),
    firstDrawMs: () => firstDraw,
    dispose: () => {
      stopReplay();
      cancelAnimationFrame(drawPending);
    },
  };
}
