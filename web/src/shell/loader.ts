// Model listing and loading for the shell and the bench page: /models/index.json, then a model's manifest
// (validated) and its ONNX file(s), downloaded with progress. Errors name the file and what is wrong with it.
import { ManifestError, validateManifest } from "./manifest";
import type { LoadedModel, ModelEntry } from "./types";

export type Progress = (loaded: number, total: number, what: string) => void;

export async function listModels(): Promise<ModelEntry[]> {
  const res = await fetch("/models/index.json");
  if (!res.ok) throw new Error(`/models/index.json: HTTP ${res.status}`);
  const data = await res.json();
  if (!Array.isArray(data?.models)) throw new Error("/models/index.json: no \"models\" list");
  return data.models as ModelEntry[];
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

export async function loadModel(entry: ModelEntry, onProgress?: Progress): Promise<LoadedModel> {
  const base = entry.manifest.slice(0, entry.manifest.lastIndexOf("/") + 1);
  const res = await fetch(entry.manifest);
  if (!res.ok) throw new Error(`manifest ${entry.manifest}: HTTP ${res.status}`);
  let raw: unknown;
  try {
    raw = await res.json();
  } catch {
    throw new ManifestError(`manifest ${entry.manifest}: not valid JSON`);
  }
  const manifest = validateManifest(raw, `manifest ${entry.name}.json`, entry.task);
  const onnx = await fetchBytes(base + manifest.onnx, manifest.onnx, onProgress);
  checkOnnxBytes(onnx, manifest.onnx);
  let prefill: Uint8Array | undefined;
  let frame: Uint8Array | undefined;
  if (manifest.task === "flappy") {
    prefill = await fetchBytes(base + manifest.prefill_onnx, manifest.prefill_onnx, onProgress);
    checkOnnxBytes(prefill, manifest.prefill_onnx);
    if (manifest.frame_onnx) {
      frame = await fetchBytes(base + manifest.frame_onnx, manifest.frame_onnx, onProgress);
      checkOnnxBytes(frame, manifest.frame_onnx);
    }
  }
  return { entry, manifest, onnx, prefill, frame };
}
