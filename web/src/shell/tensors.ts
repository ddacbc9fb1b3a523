// Which manifest tensor plays which part. The exporters (worldmodels/<task>/export.py) list each graph's inputs and
// outputs in the graph's own order, and worldmodels/core/manifest.schema.json says what each position holds; the
// player takes every ONNX tensor name from these lists by position, so an export whose tensors are named differently
// plays the same. Tested in web/tests/tensors.test.ts (renamed tensors still drive the Flappy backends' feeds).
import type { DenoiserManifest, FlappyManifest, TensorSpec } from "./manifest";

const DECODE_INPUTS = ["token", "position", "kCache", "vCache", "cacheLen"] as const;
const DECODE_OUTPUTS = ["logits", "kCache", "vCache"] as const;
const PREFILL_INPUTS = ["tokens", "positions"] as const;
const PREFILL_OUTPUTS = ["logits", "kCache", "vCache", "cacheLen"] as const;
// The frame graph's inputs: these, then each layer's key cache, each layer's value cache, then FRAME_TAIL.
const FRAME_HEAD = ["action", "position"] as const;
const FRAME_TAIL = ["cacheLen", "previous", "guess", "uniforms", "temperature"] as const;
const FRAME_OUTPUTS = ["state", "logits", "kRows", "vRows", "slots", "passes", "nextFirst"] as const;

/** `list`'s entries keyed by `roles`, position by position; `list` must have exactly one entry per role. */
function byPosition<R extends string, T>(list: readonly T[], roles: readonly R[], what: string): Record<R, T> {
  if (list.length !== roles.length) {
    throw new RangeError(`${what} lists ${list.length} tensors, the player reads ${roles.length} (${roles.join(", ")})`);
  }
  return Object.fromEntries(roles.map((role, i) => [role, list[i]])) as Record<R, T>;
}

/** Breakout and gym_pixels: the denoiser's one input and one output. */
export function denoiserTensors(m: DenoiserManifest): { input: TensorSpec; output: TensorSpec } {
  return { ...byPosition(m.inputs, ["input"], "inputs"), ...byPosition(m.outputs, ["output"], "outputs") };
}

/** Flappy: the per-token decode graph's tensors (onnx). */
export function decodeTensors(m: FlappyManifest) {
  return { inputs: byPosition(m.inputs, DECODE_INPUTS, "inputs"), outputs: byPosition(m.outputs, DECODE_OUTPUTS, "outputs") };
}

/** Flappy: the prefill graph's tensor names (prefill_onnx). */
export function prefillNames(m: FlappyManifest) {
  return {
    inputs: byPosition(m.prefill.inputs, PREFILL_INPUTS, "prefill.inputs"),
    outputs: byPosition(m.prefill.outputs, PREFILL_OUTPUTS, "prefill.outputs"),
  };
}

/** How many inputs the frame graph of a `layers`-layer model has. */
export function frameInputCount(layers: number): number {
  return FRAME_HEAD.length + 2 * layers + FRAME_TAIL.length;
}

/** Flappy: the frame graph's tensors (frame_onnx), the cache fed one layer per input. */
export function frameTensors(m: FlappyManifest) {
  if (!m.frame_graph) throw new Error(`${m.name}: the export has no frame graph`);
  const { inputs, outputs } = m.frame_graph;
  const layers = Number(m.model.layers);
  const caches = FRAME_HEAD.length + 2 * layers;
  if (inputs.length !== frameInputCount(layers)) {
    throw new RangeError(`frame_graph.inputs lists ${inputs.length} tensors, a ${layers}-layer model's frame graph has ${frameInputCount(layers)}`);
  }
  return {
    inputs: {
      ...byPosition(inputs.slice(0, FRAME_HEAD.length), FRAME_HEAD, "frame_graph.inputs"),
      kCache: inputs.slice(FRAME_HEAD.length, FRAME_HEAD.length + layers),
      vCache: inputs.slice(FRAME_HEAD.length + layers, caches),
      ...byPosition(inputs.slice(caches), FRAME_TAIL, "frame_graph.inputs"),
    },
    outputs: byPosition(outputs, FRAME_OUTPUTS, "frame_graph.outputs"),
  };
}
