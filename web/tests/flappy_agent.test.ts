// The Flappy agent (src/flappy/agent.ts) against the Python it ports: worldmodels/dream/flappy.py features,
// BirdMotion and DreamGame, worldmodels/flappy/collector.py pipes_ahead_first, and the policy graph on onnxruntime
// (here onnxruntime-web WASM); plus the policy.json checks (src/shell/policy.ts).
//   WM_FIXTURES=DIR npx vitest run tests/flappy_agent.test.ts
// DIR from `python tests/web/web_fixtures.py DIR` (tests/web/test_web.py does it), or only this part:
//   python -c "import sys; sys.path.insert(0, 'tests/web'); import web_fixtures as w; from pathlib import Path; \
//     w.write_flappy_agent(Path('DIR/flappy_agent'))"
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { describe, expect, it } from "vitest";
import {
  AgentPolicy, argmaxAction, BirdMotion, DreamTracker, features, observation, pipesAheadFirst,
} from "../src/flappy/agent";
import { TokenSpec } from "../src/flappy/spec";
import { type PolicyManifest, PolicyError, validatePolicy } from "../src/shell/policy";
import { readBytes, readJson } from "./flappy_fixtures";

ort.env.wasm.numThreads = 1;

function fixtures(): string {
  const root = process.env.WM_FIXTURES;
  const dir = root ? join(root, "flappy_agent") : "";
  if (!root || !existsSync(join(dir, "agent.json"))) {
    throw new Error("no Flappy agent fixtures: set WM_FIXTURES to a folder made by `python tests/web/web_fixtures.py " +
      "DIR` (or only its write_flappy_agent(DIR/flappy_agent), see the top of this file)");
  }
  return dir;
}

const load = () => readJson(join(fixtures(), "agent.json"));

/** Python computes in float64 like JS, in the same order: the values are equal, not just close. */
const same = (a: number[], b: number[], what: string) => expect(a, what).toEqual(b);

describe("flappy agent observation", () => {
  it("gives Python's features and pipes_ahead_first of decoded states", () => {
    const fx = load();
    const spec = new TokenSpec(fx.token_spec);
    expect(fx.features.length).toBeGreaterThan(100);
    let reordered = 0;
    for (const [i, c] of fx.features.entries()) {
      const state = spec.decodeFrame(c.tokens);
      const obs = features(state, c.velocity, c.rotation);
      same(obs, c.features, `features of case ${i} [${c.tokens}]`);
      same(pipesAheadFirst(obs), c.ordered, `pipes_ahead_first of case ${i}`);
      const motion = Object.assign(new BirdMotion(), { velocity: c.velocity, rotation: c.rotation });
      same(observation(state, motion), c.ordered, `observation of case ${i}`);
      reordered += Number(c.ordered.join() !== c.features.join());
    }
    expect(reordered).toBeGreaterThan(10); // passed pipes moved behind
  });

  it("orders pipes like pipes_ahead_first at the passed/not-passed boundary", () => {
    const fx = load();
    for (const [i, c] of fx.pipes_ahead_first.entries()) same(pipesAheadFirst(c.obs), c.ordered, `case ${i}`);
    expect(fx.pipes_ahead_first.filter((c: any) => c.obs.join() !== c.ordered.join()).length).toBeGreaterThan(5);
  });

  it("follows BirdMotion over action sequences", () => {
    const fx = load();
    for (const [k, steps] of fx.motion.entries()) {
      const motion = new BirdMotion();
      expect([motion.velocity, motion.rotation]).toEqual([-9, 45]);
      for (const [t, s] of (steps as any[]).entries()) {
        motion.step(s.action, s.y_before);
        expect([motion.velocity, motion.rotation], `sequence ${k}, step ${t}`).toEqual([s.velocity, s.rotation]);
      }
    }
  });

  it("replays a start context and follows the next frames like DreamGame", () => {
    const fx = load();
    const spec = new TokenSpec(fx.token_spec);
    const tracker = new DreamTracker(spec);
    for (const dream of fx.dreams) {
      tracker.start(dream.context);
      for (const [t, s] of (dream.steps as any[]).entries()) {
        expect([tracker.motion.velocity, tracker.motion.rotation], `seed ${dream.seed}, frame ${t}`).toEqual([s.velocity, s.rotation]);
        same(tracker.observation(), s.obs, `observation, seed ${dream.seed}, frame ${t}`);
        tracker.advance(s.action, s.tokens);
      }
    }
    expect(() => tracker.start([1, 2, 3])).toThrow(/whole frames/);
  });

  it("takes the argmax, a tie being a noop", () => {
    expect(argmaxAction([0.1, 0.2])).toBe(1);
    expect(argmaxAction([0.3, -0.2])).toBe(0);
    expect(argmaxAction([0.5, 0.5])).toBe(0);
  });
});

describe("flappy agent policy", () => {
  it("runs the exported policy graph to onnxruntime's logits and actions", async () => {
    const dir = fixtures();
    const fx = load();
    const manifest = validatePolicy(readJson(join(dir, fx.policy)), "policy.json", "flappy");
    const session = await ort.InferenceSession.create(readBytes(join(dir, manifest.onnx)), { executionProviders: ["wasm"] });
    const policy = new AgentPolicy(session, manifest);
    let compared = 0;
    for (const dream of fx.dreams) {
      for (const s of dream.steps) {
        const choice = await policy.act(s.obs);
        for (let a = 0; a < 2; a++) expect(choice.logits[a]).toBeCloseTo(s.logits[a], 5);
        if (Math.abs(s.logits[0] - s.logits[1]) > 1e-4) expect(choice.action).toBe(s.policy_action);
        compared += 1;
      }
    }
    expect(compared).toBeGreaterThan(100);
    await expect(policy.act([1, 2, 3])).rejects.toThrow(/12/);
    await policy.release();
  });

  it("refuses a graph whose tensors are not the ones policy.json names", async () => {
    const dir = fixtures();
    const manifest = validatePolicy(readJson(join(dir, "policy.json")), "policy.json", "flappy");
    const session = await ort.InferenceSession.create(readBytes(join(dir, manifest.onnx)), { executionProviders: ["wasm"] });
    expect(() => new AgentPolicy(session, { ...manifest, input: { ...manifest.input, name: "x" } })).toThrow(/re-export/);
    await session.release();
  });

  it("checks policy.json in one line", () => {
    const good: PolicyManifest = readJson(join(fixtures(), "policy.json"));
    expect(validatePolicy(good, "p", "flappy")).toBe(good);
    expect(validatePolicy({ ...good, input: { ...good.input, shape: ["N", 12] } }, "p", "flappy").task).toBe("flappy");
    const refused: [unknown, RegExp][] = [
      [[1, 2], /not a JSON object/],
      [{ ...good, format: "worldmodels-manifest" }, /not a worldmodels policy/],
      [{ ...good, format_version: 2 }, /unknown policy format version 2/],
      [{ ...good, task: "breakout" }, /"breakout" policy, but the flappy game/],
      [{ ...good, onnx: "../policy.onnx" }, /"onnx" must name/],
      [{ ...good, input: { ...good.input, shape: [1, 8] } }, /shape \[1,8\], the flappy agent needs \[1,12\]/],
      [{ ...good, input: { ...good.input, dtype: "uint8" } }, /needs "float32"/],
      [{ ...good, output: { ...good.output, shape: [1, 3] } }, /output "logits" has shape \[1,3\]/],
      [{ ...good, output: {} }, /must name their tensors/],
    ];
    for (const [raw, why] of refused) {
      let message = "";
      try {
        validatePolicy(raw, "policy p", "flappy");
      } catch (err) {
        expect(err).toBeInstanceOf(PolicyError);
        message = (err as Error).message;
      }
      expect(message).toMatch(why);
      expect(message).toMatch(/^policy p: /);
      expect(message).not.toMatch(/\n/);
    }
  });
});
