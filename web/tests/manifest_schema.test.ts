// The manifest schema that Python and the player share (worldmodels/core/manifest.schema.json) on the shipped
// manifests (models/*/*.json, but the agents' policy.json, checked by src/shell/policy.ts): each is valid, and a missing key, a wrong type, a tensor of the wrong dtype at its
// position, an unknown format or format version is rejected by validateManifest with a one-line message naming it.
// Needs no fixtures (tests/manifest.test.ts checks the cross-value rules on freshly exported manifests).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import SCHEMA from "../../worldmodels/core/manifest.schema.json";
import { ManifestError, validateManifest } from "../src/shell/manifest";
import { POLICY_FORMAT, validatePolicy } from "../src/shell/policy";
import { validate } from "../src/shell/schema";

const MODELS = fileURLToPath(new URL("../../models/", import.meta.url));
const load = (path: string) => JSON.parse(readFileSync(join(MODELS, path), "utf8"));
const json = readdirSync(MODELS, { withFileTypes: true }).filter((d) => d.isDirectory()).flatMap((d) =>
  readdirSync(join(MODELS, d.name)).filter((f) => f.endsWith(".json")).map((f) => join(d.name, f)));
const policies = json.filter((path) => load(path).format === POLICY_FORMAT);
const shipped = json.filter((path) => !policies.includes(path));
const flappy = () => load("flappy/flappy.json");
const breakout = () => load("breakout/breakout.json");
const bad = (m: unknown) => () => validateManifest(m, "test.json");

describe("the shared manifest schema", () => {
  it("is draft 2020-12 and names the manifest format", () => {
    expect(SCHEMA.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(SCHEMA.properties.format.const).toBe("worldmodels-manifest");
  });

  it("accepts every shipped manifest, with and without a frame graph", () => {
    expect(shipped).toEqual(expect.arrayContaining(["breakout/breakout.json", "breakout_tiny/breakout.json",
      "flappy/flappy.json", "flappy_cpu/flappy.json"]));
    for (const path of shipped) {
      const m = load(path);
      expect(validate(SCHEMA, m), path).toEqual([]);
      expect(validateManifest(m, path, m.task).task, path).toBe(path.startsWith("breakout") ? "breakout" : "flappy");
    }
    expect("frame_onnx" in load("flappy_cpu/flappy.json")).toBe(false);
  });

  it("leaves the shipped agent policies to the policy checks, which accept them", () => {
    expect(policies).toContain("flappy_agent/policy.json");
    for (const path of policies) expect(validatePolicy(load(path), path, load(path).task).onnx, path).toBe("policy.onnx");
  });

  it("rejects a missing key, naming it", () => {
    const { sampler, ...noSampler } = breakout();
    expect(sampler).toBeTruthy();
    expect(bad(noSampler)).toThrow(/^test\.json: "sampler" is missing$/);
    const f = flappy();
    delete f.token_spec.vocab_size;
    expect(bad(f)).toThrow(/^test\.json: "token_spec\.vocab_size" is missing$/);
    const { frame_graph, ...noGraph } = flappy(); // frame_onnx names a graph the manifest does not describe
    expect(frame_graph).toBeTruthy();
    expect(bad(noGraph)).toThrow('test.json: "frame_graph" is missing (needed with "frame_onnx")');
  });

  it("rejects a wrong type, naming the key and the value", () => {
    const f = flappy();
    f.decoding.context = "384";
    expect(bad(f)).toThrow('test.json: "decoding.context" must be an integer (got "384")');
    const b = breakout();
    b.outputs[0].shape = "N,3,64,64";
    expect(bad(b)).toThrow('test.json: "outputs[0].shape" must be a list (got "N,3,64,64")');
    expect(bad({ ...breakout(), onnx: "models/breakout.onnx" })).toThrow(/"onnx" must match/);
  });

  it("rejects a tensor of the wrong dtype, or a list of the wrong length, at its position", () => {
    const f = flappy();
    f.inputs[0].dtype = "float32"; // position 0 of the decode graph is the token
    expect(bad(f)).toThrow('test.json: "inputs[0].dtype" must be "int64" (got "float32")');
    const g = flappy();
    g.prefill.outputs.pop();
    expect(bad(g)).toThrow('test.json: "prefill.outputs" must have at least 4 entries (has 3)');
  });

  it("rejects an unknown format, format version or task with the player's messages", () => {
    expect(bad({ ...breakout(), format: "onnx-bundle" })).toThrow(ManifestError);
    expect(bad({ ...breakout(), format: "onnx-bundle" })).toThrow(
      'test.json: not a worldmodels manifest (format is "onnx-bundle", expected "worldmodels-manifest")');
    const { format, ...noFormat } = flappy();
    expect(format).toBe("worldmodels-manifest");
    expect(bad(noFormat)).toThrow(/not a worldmodels manifest \(format is undefined/);
    expect(bad({ ...flappy(), format_version: 2 })).toThrow(
      "test.json: unknown format version 2 (this player reads 1); re-export the model or update the player");
    expect(bad({ ...flappy(), format_version: "1" })).toThrow(/unknown format version "1"/);
    expect(bad({ ...flappy(), task: "pong" })).toThrow('test.json: unknown task "pong" (expected "breakout", "flappy" or "gym_pixels")');
  });
});
