// The warm-start sampler (src/breakout/sampler.ts) with a gym_pixels game's action count: the denoiser input's layout
// for 2 and 6 actions against a hand-built one, and the whole sampler against the Python reference
// (worldmodels/breakout/sampler.py with num_actions) on a real `task=gym_pixels debug=smoke` export, from its first
// start strip. Fixtures: tests/web/web_fixtures.py (write_gym_pixels).
//   python tests/web/web_fixtures.py /tmp/wmfix && cd web && WM_FIXTURES=/tmp/wmfix npx vitest run tests/pixels_sampler.test.ts
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import {
  denoiserInput,
  frameLayout,
  framesToTensor,
  sampleNextFrame,
  samplerSettings,
  sessionDenoiser,
  tensorToFrames,
  type Denoise,
} from "../src/breakout/sampler";
import { type PixelsManifest, validateManifest } from "../src/shell/manifest";

const TOLERANCE = 1e-4;
const f32 = (b64: string): Float32Array => {
  const bytes = Buffer.from(b64, "base64");
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};
const u8 = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, "base64"));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
};

/** The frame and sampler parts of a gym_pixels manifest of `actions.length` actions on 3 x 2 frames. */
const tinyManifest = (actions: string[]) => ({
  task: "gym_pixels", num_actions: actions.length,
  frame: { height: 3, width: 2, channels: 3, context_frames: 4, actions },
  sampler: { kind: "warm_start_euler_x0", schedule: "geometric", steps: 2, sigma_max: 1, sigma_min: 0.02 },
}) as unknown as PixelsManifest;

describe("the sampler's input layout with N action planes", () => {
  for (const names of [["action 0", "action 1"], ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN"]]) {
    const A = names.length;
    it(`lays out noisy 3 | context 12 | ${A} one-hot planes | sigma, as 16 + ${A} channels`, () => {
      const layout = frameLayout(tinyManifest(names));
      expect(layout).toEqual({ height: 3, width: 2, contextFrames: 4, numActions: A, inputChannels: 16 + A });
      const n = 2;
      const P = 6;
      const noisy = Float32Array.from({ length: n * 3 * P }, (_, i) => 1000 + i);
      const context = Float32Array.from({ length: n * 12 * P }, (_, i) => -1 - i);
      const actions = [A - 1, 1];
      const sigma = 0.3;
      const got = denoiserInput(noisy, context, actions, sigma, layout);
      // By hand: row i, channel c, pixel p.
      const want: number[] = [];
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < 16 + A; c++) {
          for (let p = 0; p < P; p++) {
            if (c < 3) want.push(1000 + (i * 3 + c) * P + p);
            else if (c < 15) want.push(-1 - ((i * 12 + c - 3) * P + p));
            else if (c < 15 + A) want.push(c - 15 === actions[i] ? 1 : 0);
            else want.push(Math.fround(sigma));
          }
        }
      }
      expect(Array.from(got)).toEqual(want);
      expect(() => denoiserInput(noisy, context, [A, 0], sigma, layout)).toThrow(new RegExp(`not in \\[0, ${A}\\)`));
    });
  }
});

const dir = process.env.WM_FIXTURES;

if (!dir) {
  it("needs the parity fixtures", () => {
    throw new Error("WM_FIXTURES is not set: write the fixtures with `python tests/web/web_fixtures.py DIR` (from the " +
      "repo root, in the venv), then run `WM_FIXTURES=DIR npx vitest run` in web/");
  });
} else {
  describe("the sampler on a gym_pixels export vs worldmodels/breakout/sampler.py", () => {
    const root = join(dir, "gym_pixels");
    const manifest = validateManifest(JSON.parse(readFileSync(join(root, "gym_pixels.json"), "utf8")), "gym_pixels.json",
      "gym_pixels") as PixelsManifest;
    const fixture = JSON.parse(readFileSync(join(root, "sampler.json"), "utf8"));
    const starts = JSON.parse(readFileSync(join(root, "start_frames.json"), "utf8"));
    const layout = frameLayout(manifest);
    const frameBytes = layout.height * layout.width * 3;
    const strip = u8(starts.frames_u8[0]);
    const context = framesToTensor(Array.from({ length: layout.contextFrames },
      (_, k) => strip.subarray(k * frameBytes, (k + 1) * frameBytes)), layout);
    const noise = f32(fixture.noise_f32);
    let denoise: Denoise;

    beforeAll(async () => {
      ort.env.wasm.numThreads = 1;
      ort.env.logLevel = "error";
      const session = await ort.InferenceSession.create(readFileSync(join(root, manifest.onnx)), { executionProviders: ["wasm"] });
      denoise = sessionDenoiser(session, manifest);
    });

    it("takes the action count from the manifest", () => {
      expect(layout.numActions).toBe(manifest.num_actions);
      expect(layout.inputChannels).toBe(16 + manifest.num_actions);
      expect(manifest.inputs[0].shape[1]).toBe(layout.inputChannels);
    });

    it("builds the first denoiser input Python builds", () => {
      const { sigma, input_f32 } = fixture.first_input;
      const x = new Float32Array(noise.length);
      const latest = (layout.contextFrames - 1) * frameBytes;
      for (let j = 0; j < x.length; j++) x[j] = Math.fround(context[latest + j] + Math.fround(Math.fround(sigma) * noise[j]));
      expect(maxAbsDiff(denoiserInput(x, context, [fixture.action], sigma, layout), f32(input_f32))).toBeLessThan(1e-6);
    });

    for (const [k, c] of (fixture.cases as { steps: number; sigma_max: number; pred_f32: string; bytes_u8: string }[]).entries()) {
      it(`predicts Python's next frame (case ${k}: ${c.steps} step(s), sigma max ${c.sigma_max})`, async () => {
        const settings = samplerSettings(manifest, { steps: c.steps, sigmaMax: c.sigma_max });
        const pred = await sampleNextFrame(denoise, context, [fixture.action], noise, settings, layout);
        expect(maxAbsDiff(pred, f32(c.pred_f32))).toBeLessThan(TOLERANCE);
        // Bytes: a value within TOLERANCE of a rounding edge may round the other way; allow 1 level on a few pixels.
        const bytes = tensorToFrames(pred, layout)[0];
        const want = u8(c.bytes_u8);
        let off = 0;
        for (let i = 0; i < bytes.length; i++) {
          expect(Math.abs(bytes[i] - want[i])).toBeLessThanOrEqual(1);
          if (bytes[i] !== want[i]) off++;
        }
        expect(off).toBeLessThanOrEqual(Math.ceil(bytes.length * 1e-3));
      });
    }
  });
}
