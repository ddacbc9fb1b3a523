// The contracts between the app shell and the two games. The shell lists and loads models (manifest + ONNX bytes,
// with progress and clear errors); a game gets a LoadedModel and a GameHost and draws into host.root.
import type { BreakoutManifest, FlappyManifest, Manifest } from "./manifest";

export interface ModelEntry {
  id: string; // unique in /models/index.json; files are served under /models/<id>/
  task: "breakout" | "flappy";
  name: string;
  source: "shipped" | "run" | "extra";
  label: string; // what the model list shows
  manifest: string; // URL of the manifest JSON
  mtime?: number;
}

export interface LoadedModel<M extends Manifest = Manifest> {
  entry: ModelEntry;
  manifest: M;
  onnx: Uint8Array; // manifest.onnx
  prefill?: Uint8Array; // manifest.prefill_onnx (Flappy)
  frame?: Uint8Array; // manifest.frame_onnx (Flappy, when the export has a frame graph)
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
  error(text: string): void; // shows a visible error box (never a blank canvas)
}

export interface Game {
  dispose(): void; // stop loops/workers, remove listeners
}

export type MountBreakout = (host: GameHost, model: LoadedModel<BreakoutManifest>) => Promise<Game>;
export type MountFlappy = (host: GameHost, model: LoadedModel<FlappyManifest>) => Promise<Game>;
