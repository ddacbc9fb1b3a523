// Manifest validation: an export's <name>.json (written by python -m worldmodels.export) is the player's only source of
// file names, tensor names, shapes, token specs and sampler defaults. validateManifest checks it against the schema
// Python checks it against (worldmodels/core/manifest.schema.json, bundled from there by esbuild), then the facts
// between values that the schema cannot state (shapes from the model config and the token spec), and turns a wrong
// task, a wrong shape or an unknown format version into one clear message instead of a blank canvas. A gym_pixels
// manifest is a Breakout one with num_actions action planes, the game it came from and real start frames.
import SCHEMA from "../../../worldmodels/core/manifest.schema.json";
import { formatPath, validate } from "./schema";
import { decodeTensors, denoiserTensors, frameInputCount, frameTensors } from "./tensors";

export const MANIFEST_FORMAT = SCHEMA.properties.format.const;
export const SUPPORTED_FORMAT_VERSIONS = [SCHEMA.properties.format_version.const];
// Tasks whose exports the schema knows but no page plays yet (python -m worldmodels.evaluate scores them).
const UNPLAYED = ["gym_tokens"];
const TASKS = SCHEMA.properties.task.enum.filter((t) => !UNPLAYED.includes(t));

export type Task = "breakout" | "flappy" | "gym_pixels";

export interface TensorSpec {
  name: string;
  shape: (number | string)[];
  dtype: string;
}

interface ManifestBase {
  format: string;
  format_version: number;
  task: Task;
  name: string;
  onnx: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  model: Record<string, unknown> & { parameters?: number };
  metrics: Record<string, unknown>;
  git_commit: string | null;
}

export interface BreakoutManifest extends ManifestBase {
  task: "breakout";
  frame: { height: number; width: number; channels: number; context_frames: number; actions: string[] };
  sampler: { kind: string; schedule: string; steps: number; sigma_max: number; sigma_min: number };
}

/** A diffusion denoiser of any gymnasium game or recording, played as a fully dreamed game (src/pixels/). */
export interface PixelsManifest extends ManifestBase {
  task: "gym_pixels";
  frame: BreakoutManifest["frame"];
  sampler: BreakoutManifest["sampler"];
  input_layout: { name: string; channels: number; [key: string]: unknown }[];
  num_actions: number;
  game: { source: "gymnasium"; env_id: string; [key: string]: unknown } | { source: "minari"; dataset_id: string;
    [key: string]: unknown };
  start_frames: string[]; // base64 PNGs: context_frames real frames side by side, oldest first
}

/** The manifests sampled by the warm-start diffusion sampler (src/breakout/sampler.ts). */
export type DenoiserManifest = BreakoutManifest | PixelsManifest;

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
  // The frame graph (one call per frame, worldmodels/flappy/frame_graph.py); exports before it have none.
  frame_onnx?: string;
  frame_graph?: { inputs: TensorSpec[]; outputs: TensorSpec[]; tokens_per_call: number };
}

export type Manifest = BreakoutManifest | FlappyManifest | PixelsManifest;

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

function need(ok: unknown, message: string): asserts ok {
  if (!ok) throw new ManifestError(message);
}

function shapeMatches(actual: unknown, expected: (number | string)[]): boolean {
  // Named axes ("N", "batch") accept any name or a fixed 1 (the player runs one game); numeric axes match exactly.
  return Array.isArray(actual) && actual.length === expected.length &&
    expected.every((e, i) => (typeof e === "number" ? actual[i] === e : typeof actual[i] === "string" || actual[i] === 1));
}

function checkShape(t: TensorSpec, kind: "input" | "output", shape: (number | string)[], label: string): void {
  need(shapeMatches(t.shape, shape),
    `${label}: ${kind} "${t.name}" has shape ${JSON.stringify(t.shape)}, the player needs ${JSON.stringify(shape)}`);
}

/** Parse and check a manifest. `expectTask` (when given) must match the manifest's task. Throws ManifestError. */
export function validateManifest(raw: unknown, label = "manifest", expectTask?: Task): Manifest {
  const issues = validate(SCHEMA, raw);
  const about = (key: string) => issues.some((i) => i.path[0] === key);
  need(!issues.some((i) => i.path.length === 0 && i.keyword === "type"), `${label}: not a JSON object`);
  const m = raw as Record<string, any>;
  need(!about("format"), `${label}: not a worldmodels manifest (format is ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}")`);
  need(!about("format_version"),
    `${label}: unknown format version ${JSON.stringify(m.format_version)} (this player reads ${SUPPORTED_FORMAT_VERSIONS.join(", ")}); re-export the model or update the player`);
  need(!UNPLAYED.includes(m.task),
    `${label}: a ${m.task} model (a token model of a recording) has no browser player yet; score it with python -m worldmodels.evaluate`);
  const tasks = TASKS.map((t) => `"${t}"`);
  need(!about("task"), `${label}: unknown task ${JSON.stringify(m.task)} (expected ${tasks.slice(0, -1).join(", ")} or ${tasks.at(-1)})`);
  need(!expectTask || m.task === expectTask, `${label}: is a ${m.task} model, but the ${expectTask} game was asked for`);
  if (issues.length) throw new ManifestError(`${label}: "${formatPath(issues[0].path)}" ${issues[0].message}`);
  if (m.task === "breakout") checkBreakout(m as BreakoutManifest, label);
  else if (m.task === "gym_pixels") checkPixels(m as PixelsManifest, label);
  else checkFlappy(m as FlappyManifest, label);
  return m as Manifest;
}

function checkBreakout(m: DenoiserManifest, label: string): void {
  const f = m.frame;
  const channels = 3 + 3 * f.context_frames + f.actions.length + 1;
  const { input, output } = denoiserTensors(m);
  checkShape(input, "input", ["N", channels, f.height, f.width], label);
  checkShape(output, "output", ["N", 3, f.height, f.width], label);
  need(m.sampler.sigma_min <= m.sampler.sigma_max,
    `${label}: "sampler" needs sigma_min <= sigma_max (got ${m.sampler.sigma_min} and ${m.sampler.sigma_max})`);
}

function checkPixels(m: PixelsManifest, label: string): void {
  const f = m.frame;
  need(f.actions.length === m.num_actions,
    `${label}: "frame.actions" names ${f.actions.length} actions, but "num_actions" is ${m.num_actions}`);
  const base = 3 + 3 * f.context_frames + 1;
  const { input } = denoiserTensors(m);
  const channels = Array.isArray(input.shape) ? input.shape[1] : undefined;
  need(typeof channels !== "number" || channels === base + m.num_actions,
    `${label}: input "${input.name}" has ${channels} channels, the player needs ${base} + num_actions = ` +
    `${base + m.num_actions} (noisy frame 3, context ${3 * f.context_frames}, ${m.num_actions} action planes, sigma 1)`);
  const planes = m.input_layout.find((block) => block.name === "action");
  need(!planes || planes.channels === m.num_actions,
    `${label}: "input_layout" gives the action ${planes?.channels} channels, but "num_actions" is ${m.num_actions}`);
  checkBreakout(m, label);
}

function checkFlappy(m: FlappyManifest, label: string): void {
  const spec = m.token_spec;
  need(m.decoding.context >= spec.tokens_per_frame, `${label}: context ${m.decoding.context} is shorter than one frame`);
  const cfg = m.model;
  need(Number.isInteger(cfg.layers) && Number.isInteger(cfg.heads) && Number.isInteger(cfg.width) &&
    (cfg.width as number) % (cfg.heads as number) === 0,
    `${label}: "model" must give layers, heads and width (the KV-cache shape)`);
  const cache = cacheShape(m, "batch");
  const decode = decodeTensors(m);
  checkShape(decode.inputs.token, "input", ["batch", 1], label);
  for (const t of [decode.inputs.kCache, decode.inputs.vCache]) checkShape(t, "input", cache, label);
  checkShape(decode.outputs.logits, "output", ["batch", spec.vocab_size], label);
  for (const t of [decode.outputs.kCache, decode.outputs.vCache]) checkShape(t, "output", cache, label);
  const g = m.frame_graph;
  if (g) {
    need(g.tokens_per_call === spec.tokens_per_frame,
      `${label}: "frame_graph" must give tokens_per_call = tokens_per_frame (${spec.tokens_per_frame})`);
    const count = frameInputCount(cfg.layers as number);
    need(g.inputs.length === count,
      `${label}: "frame_graph.inputs" lists ${g.inputs.length} tensors, a ${cfg.layers}-layer model's frame graph has ${count}`);
    const frame = frameTensors(m);
    for (const t of [...frame.inputs.kCache, ...frame.inputs.vCache]) checkShape(t, "input", cacheShape(m).slice(1), label);
    checkShape(frame.inputs.guess, "input", [spec.tokens_per_frame - 1], label);
    for (const t of [frame.outputs.kRows, frame.outputs.vRows]) checkShape(t, "output", frameRowsShape(m), label);
    checkShape(frame.outputs.slots, "output", [spec.tokens_per_frame], label);
  }
  need(m.start_contexts.every((c) => c.length % spec.tokens_per_frame === spec.tokens_per_frame - 1),
    `${label}: "start_contexts" must hold contexts of whole frames ending with a state frame`);
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
