// The contracts between the app shell and the games. The shell lists and loads models (manifest + ONNX bytes,
// with progress and clear errors); a game gets an OpeningModel (the manifest at once, the graphs when downloaded)
// and a GameHost, and draws into host.root from the start.
import type { BreakoutManifest, FlappyManifest, Manifest, PixelsManifest, Task } from "./manifest";

export interface ModelEntry {
  id: string; // unique in /models/index.json; files are served under /models/<id>/
  task: Task;
  name: string;
  source: "shipped" | "run" | "extra";
  label: string; // what the model list shows
  manifest: string; // URL of the manifest JSON
  mtime?: number;
}

/** An agent policy in /models/index.json's "policies" (worldmodels/play.py): `manifest` is the URL of its
 * policy.json (src/shell/policy.ts), its graph is served beside it. */
export interface PolicyEntry {
  id: string;
  task: "breakout" | "flappy";
  name: string;
  source: "shipped" | "run" | "extra";
  label: string;
  manifest: string;
  mtime?: number;
}

/** A graph of an export, by role: manifest.onnx, manifest.prefill_onnx (Flappy), manifest.frame_onnx (Flappy). */
export type Graph = "onnx" | "prefill" | "frame";
export type ModelGraphs = Partial<Record<Graph, Uint8Array>>;

/** A model with every graph its manifest names (the bench page). */
export interface LoadedModel<M extends Manifest = Manifest> extends ModelGraphs {
  entry: ModelEntry;
  manifest: M;
  onnx: Uint8Array;
}

/** What a game is mounted with: the validated manifest now, the graphs it plays (loader.ts playedGraphs) once
 * downloaded; `graphs` rejects with a message naming the file when one is missing or corrupt. */
export interface OpeningModel<M extends Manifest = Manifest> {
  entry: ModelEntry;
  manifest: M;
  graphs: Promise<ModelGraphs>;
  policy?: PolicyEntry; // an agent policy for the model's task, when the server lists one (Flappy's "Agent plays")
}

export interface RuntimeChoice {
  backend: "wasm" | "webgpu";
  threads: number; // WASM threads: 2 when the page is cross-origin isolated, else 1
  wasmPaths: string; // where onnxruntime-web finds its .wasm/.mjs files (served by us)
}

export interface GameHost {
  root: HTMLElement; // the game's area; empty when mount is called
  runtime: RuntimeChoice;
  status(text: string): void; // a one-line status under the game
  progress(text: string, fraction?: number): void; // a loading step, shown above the game until it has started
  error(text: string): void; // shows a visible error box (never a blank canvas)
}

export interface Game {
  dispose(): void; // stop loops/workers, remove listeners
}

/** Mounts a game into host.root at once and resolves when it has started (rejects, having cleaned up, if it cannot). */
export type MountBreakout = (host: GameHost, model: OpeningModel<BreakoutManifest>) => Promise<Game>;
export type MountFlappy = (host: GameHost, model: OpeningModel<FlappyManifest>) => Promise<Game>;
export type MountPixels = (host: GameHost, model: OpeningModel<PixelsManifest>) => Promise<Game>;
