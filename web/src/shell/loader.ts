// Model listing and loading for the shell and the bench page: /models/index.json, then a model's manifest
// (validated) and its ONNX file(s), downloaded with progress. The player mounts a game on the manifest alone
// (loadManifest) while the graphs it plays download (loadGraphs); the bench page loads every graph (loadModel).
// Errors name the file and what is wrong with it.
import { type Manifest, ManifestError, validateManifest } from "./manifest";
import type { Graph, LoadedModel, ModelEntry, ModelGraphs, PolicyEntry } from "./types";

/** Bytes of the file being downloaded; `what` names it and says which of how many files it is. */
export type Progress = (loaded: number, total: number, what: string) => void;

export async function listModels(): Promise<ModelEntry[]> {
  return (await listIndex()).models;
}

/** The models and the agent policies ("policies", absent from older servers: none) the server found. */
export async function listIndex(): Promise<{ models: ModelEntry[]; policies: PolicyEntry[] }> {
  const res = await fetch("/models/index.json");
  if (!res.ok) throw new Error(`/models/index.json: HTTP ${res.status}`);
  const data = await res.json();
  if (!Array.isArray(data?.models)) throw new Error("/models/index.json: no \"models\" list");
  return { models: data.models as ModelEntry[], policies: Array.isArray(data.policies) ? data.policies as PolicyEntry[] : [] };
}

/** Download a file with progress; a missing file is an error naming it. */
export async function fetchBytes(url: string, what: string, onProgress?: Progress): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${what} (${url}): HTTP ${res.status}${res.status === 404 ? " (missing file)" : ""}`);
  const total = Number(res.headers.get("Content-Length") ?? 0);
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.(loaded, total, what);
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  if (total && loaded !== total) throw new Error(`${what}: got ${loaded} of ${total} bytes (truncated download)`);
  return bytes;
}

/** ONNX files are protobuf ModelProto: they start with field 1 (ir_version, varint), byte 0x08. */
export function checkOnnxBytes(bytes: Uint8Array, what: string): void {
  if (bytes.length < 16 || bytes[0] !== 0x08) {
    throw new Error(`${what} is not an ONNX model (corrupt or wrong file: ${bytes.length} bytes); re-export it`);
  }
}

/** The model's manifest, validated (a wrong task, shape or format version is a ManifestError saying so). */
export async function loadManifest(entry: ModelEntry): Promise<Manifest> {
  const res = await fetch(entry.manifest);
  if (!res.ok) throw new Error(`manifest ${entry.manifest}: HTTP ${res.status}`);
  let raw: unknown;
  try {
    raw = await res.json();
  } catch {
    throw new ManifestError(`manifest ${entry.manifest}: not valid JSON`);
  }
  return validateManifest(raw, `manifest ${entry.name}.json`, entry.task);
}

/** Every graph the manifest names, by role: the denoiser or per-token decoder, Flappy's prefill and frame graphs. */
export function graphFiles(manifest: Manifest): [Graph, string][] {
  if (manifest.task !== "flappy") return [["onnx", manifest.onnx]];
  return [["onnx", manifest.onnx], ["prefill", manifest.prefill_onnx],
    ...(manifest.frame_onnx ? [["frame", manifest.frame_onnx] as [Graph, string]] : [])];
}

/** The graphs the player runs: Flappy with a frame graph plays it and the prefill graph, never the per-token one. */
export function playedGraphs(manifest: Manifest): [Graph, string][] {
  const files = graphFiles(manifest);
  return manifest.task === "flappy" && manifest.frame_onnx ? files.filter(([g]) => g !== "onnx") : files;
}

/** Download `files` (of `entry`'s folder) one after another, each checked to be an ONNX model. */
export async function loadGraphs(entry: ModelEntry, files: [Graph, string][], onProgress?: Progress): Promise<ModelGraphs> {
  const base = entry.manifest.slice(0, entry.manifest.lastIndexOf("/") + 1);
  const graphs: ModelGraphs = {};
  for (const [i, [graph, file]] of files.entries()) {
    const what = files.length > 1 ? `${file} (file ${i + 1} of ${files.length})` : file;
    onProgress?.(0, 0, what);
    const bytes = await fetchBytes(base + file, what, onProgress);
    checkOnnxBytes(bytes, file);
    graphs[graph] = bytes;
  }
  return graphs;
}

/** The manifest and every graph it names (the bench page measures them all). */
export async function loadModel(entry: ModelEntry, onProgress?: Progress): Promise<LoadedModel> {
  const manifest = await loadManifest(entry);
  const graphs = await loadGraphs(entry, graphFiles(manifest), onProgress);
  return { entry, manifest, ...graphs, onnx: graphs.onnx! };
}
