// Messages between the Flappy page (game.ts) and its module worker (worker.ts, bundled as dist/flappy-worker.js).
// Type-only: both sides import it. Exercised end to end by web/e2e/browser.mjs.
import type { FlappyManifest } from "../shell/manifest";
import type { RuntimeChoice } from "../shell/types";

export type ToWorker =
  // Create the sessions (onnx/prefill are transferred). fps: frames per second to aim at (default 30; 0 = as fast
  // as possible, for benchmarks).
  | { type: "init"; runtime: RuntimeChoice; manifest: FlappyManifest; onnx: Uint8Array; prefill: Uint8Array; fps?: number }
  // Start (or restart) from manifest.start_contexts[contextIndex]; without one, the next context in rotation.
  | { type: "reset"; contextIndex?: number }
  // Queue a flap: used by the next frame the worker starts, then cleared.
  | { type: "input"; flap: boolean }
  | { type: "fps"; fps: number };

export type FromWorker =
  | { type: "ready"; contexts: number; backend: string }
  // A game started: the start context's last state frame (9 tokens), what the screen shows before frame 1.
  | { type: "started"; contextIndex: number; tokens: number[] }
  // A committed frame (9 state tokens). frameIndex counts from 1 since the start. tokensPerSec: tokens fed per
  // second of decoding (the model's speed); framesPerSec: frames committed per second of wall time.
  | { type: "frame"; tokens: number[]; frameIndex: number; done: boolean; tokensPerSec: number; framesPerSec: number }
  // The model's own done token: the worker stops until the next reset.
  | { type: "done"; frameIndex: number }
  | { type: "error"; message: string };
