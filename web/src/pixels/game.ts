// The dreamed pixel game: a gym_pixels model (the diffusion denoiser of any gymnasium game or recording, Atari
// included) played with no simulator at all. It starts from a real start strip carried in the manifest, shown at
// once, and from then on every frame is the model's, driven by the keys (src/pixels/keys.ts maps the game's action
// names to keys), clearly labelled a dream. The page (view.ts), the keys (input.ts) and the dream loop (loop.ts) are
// put together here. window.__pixels exposes the state to web/e2e/browser.mjs, which tests these files end to end.
import { samplerSettings } from "../breakout/sampler";
import { framePainter } from "../breakout/view";
import type { PixelsManifest } from "../shell/manifest";
import type { Game, GameHost, MountPixels, OpeningModel } from "../shell/types";
import { listenKeys } from "./input";
import { describeKeys, keyMap } from "./keys";
import { createDream, type PixelsProbe } from "./loop";
import { buildView } from "./view";

/** The probe, and the key chords of the game's actions (KeyboardEvent.key values, in the game's action order). */
type PixelsDebug = PixelsProbe & { keys(): string[][] };

declare global {
  interface Window {
    __pixels?: PixelsDebug;
  }
}

export const mountPixels: MountPixels = async (host: GameHost, model: OpeningModel<PixelsManifest>): Promise<Game> => {
  const manifest = model.manifest;
  const map = keyMap(manifest.frame.actions);
  const view = buildView(manifest, samplerSettings(manifest), describeKeys(map));
  host.root.append(view.root);
  const paint = framePainter(manifest.frame.width, manifest.frame.height);
  const keys = listenKeys(map, [view.steps, view.noise], () => dream.restart());
  const dream = createDream(host, model.entry, manifest, view, keys, paint);
  view.restart.addEventListener("click", () => {
    view.restart.blur(); // Space must play the game, not press the button again
    dream.restart();
  });
  window.__pixels = { ...dream.probe, keys: () => map.bindings.map((b) => b.keys) };

  let disposed = false;
  const dispose = () => {
    if (disposed) return;
    disposed = true;
    keys.dispose();
    dream.dispose();
    delete window.__pixels;
    view.root.remove();
  };

  try {
    await dream.start(model.graphs.then(({ onnx }) => {
      if (!onnx) throw new Error(`the denoiser (${manifest.onnx}) was not loaded`);
      return onnx;
    }));
  } catch (err) {
    dispose(); // the shell shows the error in place of the game
    throw err;
  }
  view.canvas.focus({ preventScroll: true });
  return { dispose };
};
