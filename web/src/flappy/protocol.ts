// Messages between the Flappy page (loop.ts) and its module worker (worker.ts, bundled as dist/flappy-worker.js).
// Type-only: both sides import it. Exercised end to end by web/e2e/browser.mjs.
import type { FlappyManifest } from "../shell/manifest";
import type { RuntimeChoice } from "../shell/types";

export type ToWorker =
  // Create the sessions (the graphs' bytes are transferred). With `frame` (the frame graph) the worker makes one call
  // per frame, else one decode call per token on `onnx` (the per-token graph, needed only then). fps: frames per
  // second to aim at (default 30; 0 = as fast as possible, for benchmarks).
  | { type: "init"; runtime: RuntimeChoice; manifest: FlappyManifest; onnx?: Uint8Array; prefill: Uint8Array;
      frame?: Uint8Array; fps?: number }
  // Start (or restart) from manifest.start_contexts[contextIndex]; without one, the next context in rotation.
  | { type: "reset"; contextIndex?: number }
  // Queue a flap: used by the next frame the worker starts, then cleared.
  | { type: "input"; flap: boolean }
  | { type: "fps"; fps: number };

export type FromWorker =
  // A start-up step begins (creating the sessions, prefilling a start context): shown while the model starts.
  | { type: "progress"; text: string }
  | { type: "ready"; contexts: number; backend: string; decoder: "frame graph" | "per token" }
  // A game started: the start context's last state frame (9 tokens), what the screen shows before frame 1.
  | { type: "started"; contextIndex: number; tokens: number[] }
  // A committed frame (9 state tokens), made with `action` (0 noop, 1 flap). frameIndex counts from 1 since the start.
  // tokensPerSec: tokens fed per second of decoding (the model's speed); framesPerSec: frames committed per second of
  // wall time; passes: the frame graph's passes for this frame (1 per token with the per-token decoder).
  | { type: "frame"; tokens: number[]; action: number; frameIndex: number; done: boolean; tokensPerSec: number;
      framesPerSec: number; passes: number }
  // The model's own done token: the worker stops until the next reset.
  | { type: "done"; frameIndex: number }
  | { type: "error"; message: string };
