// Agent policies: a trained PPO policy exported by `python -m worldmodels.dream.agent` (worldmodels/dream/agent.py
// export_policy) as policy.onnx with the manifest policy.json beside it; worldmodels/play.py lists them under
// "policies" in /models/index.json and serves the two files. validatePolicy checks a policy.json for the game that
// will play it (worldmodels/play.py policy_problem checks the same when it lists one) and turns anything the player
// cannot use into one line; loadPolicy downloads it. The Flappy agent that runs it: src/flappy/agent.ts.
// Tested by web/tests/flappy_agent.test.ts.
import { checkOnnxBytes, fetchBytes } from "./loader";
import type { PolicyEntry } from "./types";

export const POLICY_FORMAT = "worldmodels-policy";
export const POLICY_FORMAT_VERSIONS = [1];

export interface PolicyManifest {
  format: string;
  format_version: number;
  task: "breakout" | "flappy";
  onnx: string; // the graph's file name, in the folder of policy.json
  input: { name: string; shape: (number | string)[]; dtype: string };
  output: { name: string; shape: (number | string)[] };
  observation?: string;
  action?: string;
  trained_in?: string; // "dream" or "real"
  steps?: number;
  real_mean_score?: number;
}

/** What a game needs of its policy: the observation's shape and dtype and the number of actions (logits). */
export interface PolicyShape {
  observation: number[]; // without the batch axis
  dtype: string;
  actions: number;
}

export const POLICY_SHAPES: Record<string, PolicyShape> = {
  flappy: { observation: [12], dtype: "float32", actions: 2 },
};

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyError";
  }
}

function need(ok: unknown, message: string): asserts ok {
  if (!ok) throw new PolicyError(message);
}

const isName = (v: unknown) => typeof v === "string" && v.length > 0;

/** A batch axis: a name ("N") or 1; then the given sizes exactly. */
function shapeIs(shape: unknown, want: number[]): boolean {
  return Array.isArray(shape) && shape.length === want.length + 1 && (shape[0] === 1 || typeof shape[0] === "string") &&
    want.every((n, i) => shape[i + 1] === n);
}

/** Parse and check a policy.json for the `task` game; throws a one-line PolicyError. */
export function validatePolicy(raw: unknown, label: string, task: "breakout" | "flappy"): PolicyManifest {
  need(raw !== null && typeof raw === "object" && !Array.isArray(raw), `${label}: not a JSON object`);
  const p = raw as Record<string, any>;
  need(p.format === POLICY_FORMAT, `${label}: not a worldmodels policy (format is ${JSON.stringify(p.format)}, expected "${POLICY_FORMAT}")`);
  need(POLICY_FORMAT_VERSIONS.includes(p.format_version),
    `${label}: unknown policy format version ${JSON.stringify(p.format_version)} (this player reads ${POLICY_FORMAT_VERSIONS.join(", ")}); re-export the policy or update the player`);
  need(p.task === task, `${label}: is a ${JSON.stringify(p.task)} policy, but the ${task} game was asked for`);
  const shape = POLICY_SHAPES[task];
  need(shape, `${label}: the player has no agent for ${task}`);
  need(isName(p.onnx) && !/[\\/]/.test(p.onnx), `${label}: "onnx" must name the graph's file beside it (got ${JSON.stringify(p.onnx)})`);
  need(p.input && isName(p.input.name) && p.output && isName(p.output.name), `${label}: "input" and "output" must name their tensors`);
  need(shapeIs(p.input.shape, shape.observation),
    `${label}: input "${p.input.name}" has shape ${JSON.stringify(p.input.shape)}, the ${task} agent needs ${JSON.stringify([1, ...shape.observation])}`);
  need(p.input.dtype === shape.dtype, `${label}: input "${p.input.name}" is ${JSON.stringify(p.input.dtype)}, the ${task} agent needs "${shape.dtype}"`);
  need(shapeIs(p.output.shape, [shape.actions]),
    `${label}: output "${p.output.name}" has shape ${JSON.stringify(p.output.shape)}, the ${task} agent needs ${JSON.stringify([1, shape.actions])}`);
  return p as PolicyManifest;
}

/** The policy.json of `entry` (validated for `task`) and the bytes of the graph it names. */
export async function loadPolicy(entry: PolicyEntry, task: "breakout" | "flappy"): Promise<{ manifest: PolicyManifest; onnx: Uint8Array }> {
  const res = await fetch(entry.manifest);
  if (!res.ok) throw new PolicyError(`policy ${entry.manifest}: HTTP ${res.status}`);
  let raw: unknown;
  try {
    raw = await res.json();
  } catch {
    throw new PolicyError(`policy ${entry.manifest}: not valid JSON`);
  }
  const manifest = validatePolicy(raw, `policy ${entry.name}`, task);
  const url = entry.manifest.slice(0, entry.manifest.lastIndexOf("/") + 1) + manifest.onnx;
  const onnx = await fetchBytes(url, `the policy graph ${manifest.onnx}`);
  checkOnnxBytes(onnx, `the policy graph ${manifest.onnx}`);
  return { manifest, onnx };
}
