// Manifest validation: an export's <name>.json (written by worldmodels/export.py) is the player's only source of
// shapes, token specs and sampler defaults. validateManifest turns a wrong task, a wrong shape or an unknown format
// version into one clear message instead of a blank canvas.

export const MANIFEST_FORMAT = "worldmodels-manifest";
export const SUPPORTED_FORMAT_VERSIONS = [1];

export interface TensorSpec {
  name: string;
  shape: (number | string)[];
  dtype: string;
}

interface ManifestBase {
  format: string;
  format_version: number;
  task: "breakout" | "flappy";
  name: string;
  onnx: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  model: Record<string, unknown> & { parameters?: number };
  metrics?: Record<string, unknown>;
  git_commit?: string | null;
}

export interface BreakoutManifest extends ManifestBase {
  task: "breakout";
  frame: { height: number; width: number; channels: number; context_frames: number; actions: string[] };
  sampler: { kind: string; schedule: string; steps: number; sigma_max: number; sigma_min: number };
}

export interface TokenField {
  name: string;
  kind: "ordinal" | "marker" | "action";
  start: number;
  size: number;
  bins?: number;
  hidden_id?: number | null;
  labels?: string[];
  pixel_range?: [number, number] | null;
  [key: string]: unknown;
}

export interface FlappyManifest extends ManifestBase {
  task: "flappy";
  prefill_onnx: string;
  prefill: { inputs: string[]; outputs: string[] };
  token_spec: Record<string, any>; // TokenSpec.to_json(): read by src/flappy/spec.ts
  decoding: { context: number; sliding_window?: boolean; slide_frames: number; temperature: number };
  start_contexts: number[][];
  // The frame graph (one call per frame, worldmodels/nets/frame_graph.py); exports before it have none.
  frame_onnx?: string;
  frame_graph?: { inputs: TensorSpec[]; outputs: TensorSpec[]; tokens_per_call: number };
}

export type Manifest = BreakoutManifest | FlappyManifest;

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

function need(ok: unknown, message: string): asserts ok {
  if (!ok) throw new ManifestError(message);
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function shapeMatches(actual: unknown, expected: (number | string)[]): boolean {
  // Named axes ("N", "batch") accept any name or a fixed 1 (the player runs one game); numeric axes match exactly.
  return Array.isArray(actual) && actual.length === expected.length &&
    expected.every((e, i) => (typeof e === "number" ? actual[i] === e : typeof actual[i] === "string" || actual[i] === 1));
}

function checkTensor(list: unknown, name: string, shape: (number | string)[], where: string, label: string): void {
  need(Array.isArray(list), `${label}: "${where}" must be a list of tensors`);
  const t = (list as any[]).find((x) => isObject(x) && x.name === name);
  need(t, `${label}: no ${where.slice(0, -1)} named "${name}" (found ${(list as any[]).map((x) => x?.name).join(", ") || "none"})`);
  need(shapeMatches(t.shape, shape),
    `${label}: ${where.slice(0, -1)} "${name}" has shape ${JSON.stringify(t.shape)}, the player needs ${JSON.stringify(shape)}`);
}

/** Parse and check a manifest. `expectTask` (when given) must match the manifest's task. Throws ManifestError. */
export function validateManifest(raw: unknown, label = "manifest", expectTask?: "breakout" | "flappy"): Manifest {
  need(isObject(raw), `${label}: not a JSON object`);
  const m = raw as Record<string, any>;
  need(m.format === MANIFEST_FORMAT, `${label}: not a worldmodels manifest (format is ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}")`);
  need(SUPPORTED_FORMAT_VERSIONS.includes(m.format_version),
    `${label}: unknown format version ${JSON.stringify(m.format_version)} (this player reads ${SUPPORTED_FORMAT_VERSIONS.join(", ")}); re-export the model or update the player`);
  need(m.task === "breakout" || m.task === "flappy", `${label}: unknown task ${JSON.stringify(m.task)} (expected "breakout" or "flappy")`);
  need(!expectTask || m.task === expectTask, `${label}: is a ${m.task} model, but the ${expectTask} game was asked for`);
  need(typeof m.onnx === "string" && m.onnx.endsWith(".onnx"), `${label}: "onnx" must name the .onnx file`);
  need(isObject(m.model), `${label}: "model" must be an object`);
  if (m.task === "breakout") {
    const f = m.frame;
    need(isObject(f) && Number.isInteger(f.height) && Number.isInteger(f.width) && f.channels === 3 &&
      Number.isInteger(f.context_frames) && Array.isArray(f.actions), `${label}: "frame" must give height, width, channels 3, context_frames and actions`);
    const channels = 3 + 3 * f.context_frames + f.actions.length + 1;
    checkTensor(m.inputs, "input", ["N", channels, f.height, f.width], "inputs", label);
    checkTensor(m.outputs, "pred", ["N", 3, f.height, f.width], "outputs", label);
    const s = m.sampler;
    need(isObject(s) && Number.isInteger(s.steps) && s.steps >= 1 && s.sigma_max > 0 && s.sigma_min > 0 &&
      s.sigma_min <= s.sigma_max, `${label}: "sampler" needs steps >= 1 and 0 < sigma_min <= sigma_max`);
  } else {
    need(typeof m.prefill_onnx === "string" && m.prefill_onnx.endsWith(".onnx"), `${label}: "prefill_onnx" must name the prefill .onnx file`);
    const spec = m.token_spec;
    need(isObject(spec) && Array.isArray(spec.fields) && Number.isInteger(spec.vocab_size) &&
      Number.isInteger(spec.tokens_per_frame), `${label}: "token_spec" must give fields, vocab_size and tokens_per_frame`);
    const d = m.decoding;
    need(isObject(d) && Number.isInteger(d.context) && Number.isInteger(d.slide_frames) && d.temperature > 0,
      `${label}: "decoding" must give context, slide_frames and temperature`);
    need(d.context >= spec.tokens_per_frame, `${label}: context ${d.context} is shorter than one frame`);
    const cfg = m.model;
    need(Number.isInteger(cfg.layers) && Number.isInteger(cfg.heads) && Number.isInteger(cfg.width) &&
      (cfg.width as number) % (cfg.heads as number) === 0,
      `${label}: "model" must give layers, heads and width (the KV-cache shape)`);
    const cache = cacheShape(m as FlappyManifest, "batch");
    checkTensor(m.inputs, "tokens", ["batch", 1], "inputs", label);
    checkTensor(m.inputs, "k_cache", cache, "inputs", label);
    checkTensor(m.inputs, "v_cache", cache, "inputs", label);
    checkTensor(m.outputs, "logits", ["batch", spec.vocab_size], "outputs", label);
    need(d.sliding_window === undefined || typeof d.sliding_window === "boolean",
      `${label}: "decoding.sliding_window" must be true or false`);
    if (m.frame_onnx !== undefined) {
      need(typeof m.frame_onnx === "string" && m.frame_onnx.endsWith(".onnx"), `${label}: "frame_onnx" must name the frame .onnx file`);
      const g = m.frame_graph;
      need(isObject(g) && g.tokens_per_call === spec.tokens_per_frame,
        `${label}: "frame_graph" must give tokens_per_call = tokens_per_frame (${spec.tokens_per_frame})`);
      checkTensor(g.inputs, "k_cache_0", cacheShape(m as FlappyManifest).slice(1), "inputs", label);
      checkTensor(g.inputs, "guess", [spec.tokens_per_frame - 1], "inputs", label);
      checkTensor(g.outputs, "k_frame", frameRowsShape(m as FlappyManifest), "outputs", label);
      checkTensor(g.outputs, "slots", [spec.tokens_per_frame], "outputs", label);
    }
    need(Array.isArray(m.start_contexts) && m.start_contexts.length > 0 &&
      m.start_contexts.every((c: unknown) => Array.isArray(c) && c.length % spec.tokens_per_frame === spec.tokens_per_frame - 1),
      `${label}: "start_contexts" must hold at least one context of whole frames ending with a state frame`);
  }
  return m as Manifest;
}

/** The Flappy KV cache's shape: (layers, batch, heads, context, head_dim). */
export function cacheShape(m: FlappyManifest, batch: number | string = 1): (number | string)[] {
  const cfg = m.model as Record<string, number>;
  return [cfg.layers, batch, cfg.heads, m.decoding.context, cfg.width / cfg.heads];
}

/** The frame graph's new cache rows: (layers, 1, heads, tokens per frame, head_dim). */
export function frameRowsShape(m: FlappyManifest): number[] {
  const cfg = m.model as Record<string, number>;
  return [cfg.layers, 1, cfg.heads, m.token_spec.tokens_per_frame, cfg.width / cfg.heads];
}
