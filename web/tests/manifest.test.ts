// Manifest validation (src/shell/manifest.ts) on the real manifests export.py writes (from the parity fixtures):
// they pass, and each kind of bad manifest fails with a message naming what is wrong.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cacheShape, ManifestError, type Task, validateManifest } from "../src/shell/manifest";
import { checkOnnxBytes } from "../src/shell/loader";

const FIXTURE_PATHS = { breakout: ["breakout", "breakout.json"], flappy: ["flappy", "default", "flappy.json"],
  gym_pixels: ["gym_pixels", "gym_pixels.json"] } satisfies Record<Task, string[]>;

function manifest(task: Task): any {
  const root = process.env.WM_FIXTURES;
  if (!root) throw new Error("WM_FIXTURES is not set: run `python tests/web/web_fixtures.py DIR` from the repo root, then WM_FIXTURES=DIR npx vitest run");
  return JSON.parse(readFileSync(join(root, ...FIXTURE_PATHS[task]), "utf8"));
}

const bad = (m: any, expectTask?: Task) => () => validateManifest(m, "test.json", expectTask);

describe("manifest validation", () => {
  it("accepts what export.py writes, for Breakout and Flappy", () => {
    expect(validateManifest(manifest("breakout")).task).toBe("breakout");
    const f = validateManifest(manifest("flappy"), "flappy.json", "flappy");
    expect(f.task).toBe("flappy");
    expect(cacheShape(f as any)).toEqual(f.inputs.find((i) => i.name === "k_cache")!.shape);
  });

  it("rejects a file that is not a worldmodels manifest", () => {
    expect(bad([1, 2])).toThrow(/not a JSON object/);
    expect(bad({ ...manifest("breakout"), format: "something" })).toThrow(/not a worldmodels manifest/);
  });

  it("rejects an unknown format version, naming it", () => {
    expect(bad({ ...manifest("breakout"), format_version: 99 })).toThrow(ManifestError);
    expect(bad({ ...manifest("flappy"), format_version: 99 })).toThrow(/unknown format version 99/);
  });

  it("rejects the wrong task", () => {
    expect(bad(manifest("breakout"), "flappy")).toThrow(/is a breakout model, but the flappy game/);
    expect(bad({ ...manifest("breakout"), task: "pong" })).toThrow(/unknown task "pong"/);
    expect(bad({ ...manifest("breakout"), task: "pong" })).not.toThrow(/gym_tokens/); // not one the player takes
    expect(bad({ ...manifest("flappy"), task: "gym_tokens" })).toThrow(/gym_tokens model .* has no browser player yet/);
  });

  it("rejects wrong shapes", () => {
    const b = manifest("breakout");
    b.inputs[0].shape = ["N", 7, 64, 64];
    expect(bad(b)).toThrow(/input "input" has shape \["N",7,64,64\], the player needs \["N",19,64,64\]/);
    const f = manifest("flappy");
    f.outputs.find((o: any) => o.name === "logits").shape = [1, 17];
    expect(bad(f)).toThrow(/output "logits" has shape/);
    const g = manifest("flappy");
    g.decoding.context = 100; // the cache inputs no longer match the declared context
    expect(bad(g)).toThrow(/input "k_cache" has shape/);
  });

  it("rejects missing pieces", () => {
    const f = manifest("flappy");
    f.start_contexts = [];
    expect(bad(f)).toThrow(/start_contexts/);
    const b = manifest("breakout");
    b.sampler.sigma_min = 2 * b.sampler.sigma_max;
    expect(bad(b)).toThrow(/sigma_min <= sigma_max/);
    expect(bad({ ...manifest("flappy"), prefill_onnx: undefined })).toThrow(/prefill_onnx/);
  });

  it("checks the frame graph's declared shapes and the window kind when an export has them", () => {
    const f = manifest("flappy");
    expect(f.frame_onnx).toBe("flappy.frame.onnx");
    const rows = f.frame_graph.outputs.find((o: any) => o.name === "k_frame");
    rows.shape = [rows.shape[0], 1, rows.shape[2], 9, rows.shape[4]];
    expect(bad(f)).toThrow(/output "k_frame" has shape/);
    expect(bad({ ...manifest("flappy"), frame_onnx: "frame.txt" })).toThrow(/frame_onnx/);
    const g = manifest("flappy");
    g.frame_graph.tokens_per_call = 9;
    expect(bad(g)).toThrow(/tokens_per_call/);
    expect(bad({ ...manifest("flappy"), decoding: { ...manifest("flappy").decoding, sliding_window: "yes" } }))
      .toThrow(/sliding_window/);
    const { frame_onnx, frame_graph, ...older } = manifest("flappy"); // an export from before the frame graph
    expect(validateManifest(older, "old.json", "flappy").task).toBe("flappy");
    expect(frame_onnx && frame_graph).toBeTruthy();
  });

  it("accepts a gym_pixels export (a real task=gym_pixels debug=smoke run's) and checks its own facts", () => {
    const p = validateManifest(manifest("gym_pixels"), "gym_pixels.json", "gym_pixels");
    expect(p.task).toBe("gym_pixels");
    expect(bad(manifest("gym_pixels"), "breakout")).toThrow(/is a gym_pixels model, but the breakout game/);
    const channels = manifest("gym_pixels");
    channels.inputs[0].shape = ["N", 19, 64, 64]; // Breakout's 3 action planes, for a 2-action game
    expect(bad(channels)).toThrow(/input "input" has 19 channels, the player needs 16 \+ num_actions = 18/);
    const names = manifest("gym_pixels");
    names.frame.actions = ["NOOP", "FIRE", "RIGHT"];
    expect(bad(names)).toThrow(/"frame.actions" names 3 actions, but "num_actions" is 2/);
    const planes = manifest("gym_pixels");
    planes.input_layout.find((b: any) => b.name === "action").channels = 4;
    expect(bad(planes)).toThrow(/"input_layout" gives the action 4 channels/);
    const size = manifest("gym_pixels");
    size.outputs[0].shape = ["N", 3, 32, 32];
    expect(bad(size)).toThrow(/output "pred" has shape/);
  });

  it("rejects a gym_pixels manifest without start frames or its game", () => {
    expect(bad({ ...manifest("gym_pixels"), start_frames: undefined })).toThrow(/"start_frames" is missing/);
    expect(bad({ ...manifest("gym_pixels"), start_frames: [] })).toThrow(/"start_frames" must have at least 1 entry/);
    expect(bad({ ...manifest("gym_pixels"), start_frames: [""] })).toThrow(/start_frames\[0\]/);
    expect(bad({ ...manifest("gym_pixels"), num_actions: undefined })).toThrow(/"num_actions" is missing/);
    expect(bad({ ...manifest("gym_pixels"), game: undefined })).toThrow(/"game" is missing/);
  });

  it("tells a corrupt ONNX file from a real one", () => {
    const root = process.env.WM_FIXTURES!;
    const real = new Uint8Array(readFileSync(join(root, "breakout", "breakout.onnx")));
    expect(() => checkOnnxBytes(real, "breakout.onnx")).not.toThrow();
    expect(() => checkOnnxBytes(new TextEncoder().encode("<html>not found</html>".repeat(5)), "x.onnx")).toThrow(/not an ONNX model/);
  });
});
