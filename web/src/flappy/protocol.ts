// Messages between the Flappy page (loop.ts) and its module worker (worker.ts, bundled as dist/flappy-worker.js).
// Type-only: both sides import it. Exercised end to end by web/e2e/browser.mjs.
import type { FlappyManifest } from "../shell/manifest";
import type { PolicyManifest } from "../shell/policy";
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
  | { type: "fps"; fps: number }
  // Create the agent's policy session (after init; the graph's bytes are transferred): answered by "agent-ready".
  | { type: "policy"; manifest: PolicyManifest; onnx: Uint8Array }
  // The agent plays (on: each frame's action is the policy's, queued flaps are dropped) or the keys do (off).
  | { type: "agent"; on: boolean };

/** The agent's choice for a frame (src/flappy/agent.ts): what it saw and the logits of its action. */
export interface AgentFrame {
  action: number;
  logits: number[];
  obs: number[]; // the 12 numbers fed to the policy (float64 here, float32 in the policy's input)
}

export type FromWorker =
  // A start-up step begins (creating the sessions, prefilling a start context): shown while the model starts.
  | { type: "progress"; text: string }
  | { type: "ready"; contexts: number; backend: string; decoder: "frame graph" | "per token" }
  // A game started: the start context's last state frame (9 tokens), what the screen shows before frame 1.
  | { type: "started"; contextIndex: number; tokens: number[] }
  // A committed frame (9 state tokens), made with `action` (0 noop, 1 flap). frameIndex counts from 1 since the start.
  // tokensPerSec: tokens fed per second of decoding (the model's speed); framesPerSec: frames committed per second of
  // wall time; passes: the frame graph's passes for this frame (1 per token with the per-token decoder).
  // agent: the agent's choice when it played this frame (null when the keys did); fed: the action token the decoder
  // holds for this frame, read back from its history (decoder.ts lastAction), which must equal `action`.
  | { type: "frame"; tokens: number[]; action: number; frameIndex: number; done: boolean; tokensPerSec: number;
      framesPerSec: number; passes: number; agent: AgentFrame | null; fed: number | null }
  // The policy's session is ready (error: it could not be made; the keys keep playing).
  | { type: "agent-ready"; error?: string }
  // The model's own done token: the worker stops until the next reset.
  | { type: "done"; frameIndex: number }
  | { type: "error"; message: string };
