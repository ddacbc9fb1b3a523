// The Flappy game page: shows a real start context on #flappy-canvas at once, starts the decoding worker
// (dist/flappy-worker.js) when the graphs have downloaded, draws each committed frame with the game's own sprites
// (or schematically: "Schematic view", and whenever the sprites cannot be had), shows the live token stream
// (#token-stream) and the speed readouts (#flappy-tps, #flappy-fps). Space or a click flaps, R restarts from another
// start context; the model's done token shows the game-over overlay. "Agent plays" hands the bird to the server's
// Flappy policy (agent.ts, run in the worker; loop.ts). The page (view.ts), the controls (input.ts) and the worker's
// messages (loop.ts) are put together here.
// window.__flappy exposes the state to web/e2e/browser.mjs, which tests these files end to end.
import type { FlappyManifest } from "../shell/manifest";
import type { Game, GameHost, MountFlappy, OpeningModel } from "../shell/types";
import { listenInput } from "./input";
import { type FlappyProbe, startLoop } from "./loop";
import { type FrameState, TokenSpec } from "./spec";
import { drawSprites, loadSprites, type Pose } from "./sprites";
import { buildView, createScreen } from "./view";

/** The probe, and a test hook: `state` drawn with the sprites and `pose` on a canvas of the game's size, as RGBA
 * bytes (null without sprites); web/e2e/browser.mjs compares it with the env's own rendering. */
type FlappyDebug = FlappyProbe & { spriteFrame(state: FrameState, pose: Pose): Promise<number[] | null> };

declare global {
  interface Window {
    __flappy?: FlappyDebug;
  }
}

export const mountFlappy: MountFlappy = async (host: GameHost, model: OpeningModel<FlappyManifest>): Promise<Game> => {
  const manifest = model.manifest;
  const spec = new TokenSpec(manifest.token_spec);

  const view = buildView(spec);
  host.root.append(view.root);
  const ctx = view.canvas.getContext("2d");
  if (!ctx) throw new Error("this browser gives no 2D canvas context");
  const sprites = loadSprites();
  const screen = createScreen(view, spec, ctx, sprites);
  const loop = startLoop(host, model, view, screen, spec);
  const spriteFrame = async (state: FrameState, pose: Pose) => {
    const images = await sprites.catch(() => null);
    if (!images) return null;
    const canvas = Object.assign(document.createElement("canvas"), { width: view.canvas.width, height: view.canvas.height });
    const c = canvas.getContext("2d")!;
    drawSprites(c, spec.geometry, state, images, pose);
    return Array.from(c.getImageData(0, 0, canvas.width, canvas.height).data);
  };
  window.__flappy = { ...loop.probe, spriteFrame };
  const stopInput = listenInput(view.canvas, loop);
  const dispose = () => {
    loop.dispose();
    stopInput();
    screen.dispose();
    delete window.__flappy;
    view.root.remove();
  };

  try {
    await loop.started;
  } catch (err) {
    dispose();
    throw err;
  }
  loop.mounted();
  view.canvas.focus({ preventScroll: true });
  return { dispose };
};
