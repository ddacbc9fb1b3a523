// The Flappy game page: starts the decoding worker (dist/flappy-worker.js), draws each committed frame on
// #flappy-canvas, shows the live token stream (#token-stream) and the speed readouts (#flappy-tps, #flappy-fps).
// Space or a click flaps, R restarts from another start context; the model's done token shows the game-over overlay.
// The page (view.ts), the controls (input.ts) and the worker's messages (loop.ts) are put together here.
// window.__flappy exposes the state to web/e2e/browser.mjs, which tests these files end to end.
import type { FlappyManifest } from "../shell/manifest";
import type { Game, GameHost, LoadedModel, MountFlappy } from "../shell/types";
import { listenInput } from "./input";
import { type FlappyProbe, startLoop } from "./loop";
import { TokenSpec } from "./spec";
import { buildView, createScreen } from "./view";

declare global {
  interface Window {
    __flappy?: FlappyProbe;
  }
}

export const mountFlappy: MountFlappy = async (host: GameHost, model: LoadedModel<FlappyManifest>): Promise<Game> => {
  const manifest = model.manifest;
  const spec = new TokenSpec(manifest.token_spec);
  if (!model.prefill) throw new Error(`${model.entry.label}: the prefill graph (${manifest.prefill_onnx}) was not loaded`);

  const view = buildView(spec);
  host.root.append(view.root);
  const ctx = view.canvas.getContext("2d");
  if (!ctx) throw new Error("this browser gives no 2D canvas context");
  const screen = createScreen(view, spec, ctx);
  const loop = startLoop(host, model, view, screen, spec);
  window.__flappy = loop.probe;
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
