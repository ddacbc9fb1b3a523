// Messages between a diffusion game's page (Breakout's loop.ts, the dreamed pixel game's src/pixels/loop.ts) and the
// denoiser's module worker (worker.ts, bundled as dist/breakout-worker.js).
// Type-only: both sides import it. The page keeps at most one "predict" in flight; the worker answers each one with
// a "frame" (or an "error" carrying its id). Exercised end to end by web/e2e/browser.mjs.
import type { DenoiserManifest } from "../shell/manifest";
import type { RuntimeChoice } from "../shell/types";

export type ToWorker =
  // Configure onnxruntime-web and create the denoiser session (onnx is a transferred copy of the model's bytes).
  | { type: "init"; runtime: RuntimeChoice; manifest: DenoiserManifest; onnx: Uint8Array }
  // Predict the frame after `context` under `action`. context: the manifest's context_frames uint8 HWC frames, oldest
  // first, or the same already as a float32 (1, contextFrames, 3, H, W) tensor in [-1, 1]. The starting noise is
  // `noise` (3 * H * W standard normal values) if given, else drawn from `seed` (uint32), else from Math.random.
  | {
    type: "predict";
    id: number;
    context: Uint8Array[] | Float32Array;
    action: number;
    steps: number;
    sigmaMax: number;
    noise?: Float32Array;
    seed?: number;
  };

export type FromWorker =
  | { type: "ready"; backend: RuntimeChoice["backend"]; threads: number }
  // The predicted frame as uint8 HWC bytes; ms: the worker's time for the whole prediction (all denoising steps).
  | { type: "frame"; id: number; frame: Uint8Array; ms: number }
  // stage "init": the session could not be created (the worker is unusable); "predict": request `id` failed.
  | { type: "error"; stage: "init" | "predict"; id?: number; message: string };
