// onnxruntime-web set-up, shared by the page and the Flappy worker: WASM files come from our own server (/ort/),
// two threads when the page is cross-origin isolated (SharedArrayBuffer available), WebGPU when the browser offers an
// adapter. Import `ort` from here so every caller gets the same configuration.
import * as ort from "onnxruntime-web";
import type { RuntimeChoice } from "./types";

export { ort };

export const WASM_PATHS = "/ort/";

/** What this page can run: WebGPU if an adapter exists (and not disabled), else WASM with 1 or 2 threads. */
export async function chooseRuntime(opts: { allowWebGpu?: boolean; threads?: number } = {}): Promise<RuntimeChoice> {
  const isolated = (globalThis as any).crossOriginIsolated === true;
  const threads = Math.max(1, Math.min(opts.threads ?? 2, isolated ? 2 : 1));
  let backend: RuntimeChoice["backend"] = "wasm";
  const gpu = (globalThis as any).navigator?.gpu;
  if (opts.allowWebGpu !== false && gpu) {
    try {
      if (await gpu.requestAdapter()) backend = "webgpu";
    } catch {
      backend = "wasm";
    }
  }
  return { backend, threads, wasmPaths: WASM_PATHS };
}

/** Apply a RuntimeChoice to onnxruntime-web's global env (call before the first session is created). */
export function configureOrt(choice: RuntimeChoice): void {
  ort.env.wasm.wasmPaths = choice.wasmPaths;
  ort.env.wasm.numThreads = choice.threads;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
}

export async function createSession(bytes: Uint8Array, choice: RuntimeChoice): Promise<ort.InferenceSession> {
  const providers = choice.backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
  return ort.InferenceSession.create(bytes, { executionProviders: providers, graphOptimizationLevel: "all" });
}
