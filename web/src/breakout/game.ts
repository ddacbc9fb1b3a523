// The Breakout page: the real simulator (src/breakout/sim.ts) is played with the keyboard at a fixed tick and stays
// authoritative over the paddle, score and lives; it waits for a key to serve (src/breakout/serve.ts). The neural
// "dream" (the exported denoiser, sampled by src/breakout/sampler.ts) runs in a module worker (src/breakout/worker.ts
// -> /breakout-worker.js) at its own pace, one prediction in flight at a time, and its latest frame is blended over
// the real one. In "autonomous dream" the model's own frames feed its context. The real game is there at once; the
// dream starts when the denoiser has downloaded. Plain DOM, no framework: the page (view.ts), the keys (input.ts) and
// the two loops (loop.ts) are put together here.
// Tested in a browser by the player's end-to-end tests through the element ids in view.ts and window.__breakout.
import type { BreakoutManifest } from "../shell/manifest";
import type { Game, GameHost, MountBreakout, OpeningModel } from "../shell/types";
import { listenKeys } from "./input";
import { type BreakoutPlay, createDream, runGame } from "./loop";
import { frameLayout, samplerSettings } from "./sampler";
import { ServeGate } from "./serve";
import { BreakoutGame, FRAME_SIZE } from "./sim";
import { buildView } from "./view";

const ACTION_ORDER = ["noop", "left", "right"]; // the simulator's action ids 0, 1, 2

/** Read-only hook for browser tests. */
export interface BreakoutDebug {
  paddleX(): number; // the simulator's paddle left edge (pixels)
  dreamFrames(): number; // model predictions completed so far
  tick(): number; // simulator steps so far
  waiting(): boolean; // the game waits for a key to serve
}

declare global {
  interface Window {
    __breakout?: BreakoutDebug;
  }
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

export const mountBreakout: MountBreakout = async (host: GameHost, model: OpeningModel<BreakoutManifest>): Promise<Game> => {
  const manifest = model.manifest;
  const view = buildView(samplerSettings(manifest));
  host.root.append(view.root);

  const sim = new BreakoutGame(Math.floor(Math.random() * 2 ** 32));
  const real = Array.from({ length: frameLayout(manifest).contextFrames }, () => sim.render());
  const play: BreakoutPlay = { sim, gate: new ServeGate(), real, ticks: 0, dream: null, dreamFrames: 0 };
  const serve = () => {
    if (!play.gate.waiting) return;
    play.gate.press();
    dream.resume();
  };
  const keys = listenKeys([view.steps, view.noise, view.blend, view.autonomous, view.sideBySide], serve);
  view.canvas.addEventListener("pointerdown", serve);
  const dream = createDream(play, view, keys, host, model.entry, manifest);
  const stopGame = runGame(play, view, keys, host);
  window.__breakout = { paddleX: () => sim.paddleX, dreamFrames: () => play.dreamFrames, tick: () => play.ticks,
    waiting: () => play.gate.waiting };

  let disposed = false;
  const dispose = () => {
    if (disposed) return;
    disposed = true;
    stopGame();
    keys.dispose();
    delete window.__breakout;
    dream.dispose();
    view.root.remove();
  };

  const problem = incompatibility(manifest);
  if (problem) {
    host.error(`This model cannot dream here: ${problem}. The real game still runs.`);
  } else {
    try {
      const { onnx } = await model.graphs;
      if (!onnx) throw new Error(`the denoiser (${manifest.onnx}) was not loaded`);
      await dream.start(onnx);
    } catch (err) {
      dispose(); // the shell shows the error in place of the game
      throw err;
    }
  }
  return { dispose };
};
