// The TypeScript warm-start sampler (src/breakout/sampler.ts) against the Python reference (worldmodels/breakout/sampler.py):
// both run the same small exported ONNX graph (Python on onnxruntime, here on onnxruntime-web's WASM backend) from the
// same real simulator context, actions and noise. Fixtures: tests/web/web_fixtures.py (write_breakout).
//   python tests/web/web_fixtures.py /tmp/wmfix && cd web && WM_FIXTURES=/tmp/wmfix npx vitest run tests/breakout_sampler.test.ts
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
  sigmaSchedule,
  tensorToFrames,
  type Denoise,
} from "../src/breakout/sampler";
import { type BreakoutManifest, validateManifest } from "../src/shell/manifest";

const TOLERANCE = 1e-4;

interface Fixture {
  onnx: string;
  manifest: string;
  batch: number;
  context_frames: number;
  context_frames_u8: string;
  actions: number[];
  noise_f32: string;
  first_input: { steps: number; sigma: number; input_f32: string };
  cases: { steps: number; sigma_max: number; sigma_min: number; sigmas: number[]; pred_f32: string; bytes_u8: string }[];
}

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
const concat = (frames: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  frames.reduce((at, f) => (out.set(f, at), at + f.length), 0);
  return out;
};

const dir = process.env.WM_FIXTURES;

if (!dir) {
  it("needs the parity fixtures", () => {
    const message = "WM_FIXTURES is not set: write the fixtures with `python tests/web/web_fixtures.py DIR` (from the " +
      "repo root, in the venv), then run `WM_FIXTURES=DIR npx vitest run` in web/";
    console.error(message); // also printed where the reporter cannot format errors
    throw new Error(message);
  });
} else {
  // The default 4 context frames (19 channels), and an export that sees 8 (31 channels).
  for (const [folder, frames] of [["breakout", 4], ["breakout8", 8]] as const) {
    describe(`breakout sampler vs worldmodels/breakout/sampler.py, ${frames} context frames`, () => {
    const root = join(dir, folder);
    const fixture = JSON.parse(readFileSync(join(root, "sampler.json"), "utf8")) as Fixture;
    const manifest = validateManifest(JSON.parse(readFileSync(join(root, fixture.manifest), "utf8")), fixture.manifest,
      "breakout") as BreakoutManifest;
    const layout = frameLayout(manifest);
    const frameBytes = layout.height * layout.width * 3;
    const contextBytes = u8(fixture.context_frames_u8);
    const contextFrames = Array.from({ length: contextBytes.length / frameBytes },
      (_, k) => contextBytes.subarray(k * frameBytes, (k + 1) * frameBytes));
    const context = framesToTensor(contextFrames, layout);
    const noise = f32(fixture.noise_f32);
    let denoise: Denoise;

    beforeAll(async () => {
      ort.env.wasm.numThreads = 1;
      ort.env.logLevel = "error";
      const session = await ort.InferenceSession.create(readFileSync(join(root, fixture.onnx)), { executionProviders: ["wasm"] });
      denoise = sessionDenoiser(session, manifest);
    });

    it("reads its sizes from the manifest", () => {
      expect(fixture.context_frames).toBe(frames);
      expect(layout).toEqual({ height: 64, width: 64, contextFrames: frames, numActions: 3,
        inputChannels: 4 + 3 * frames + 3 });
      expect(contextFrames.length).toBe(fixture.batch * layout.contextFrames);
      expect(samplerSettings(manifest)).toEqual({ steps: manifest.sampler.steps, sigmaMax: manifest.sampler.sigma_max,
        sigmaMin: manifest.sampler.sigma_min });
    });

    it("builds the input (noisy 3, context 3 x frames, actions 3, sigma 1) exactly like denoiser_input", async () => {
      const channels = layout.inputChannels;
      const expected = f32(fixture.first_input.input_f32);
      // the sampler's own first denoiser call (noisy = latest frame + sigma_max * noise)
      let first: Float32Array | undefined;
      const recorder: Denoise = async (input, n) => {
        first ??= input.slice();
        return new Float32Array(n * 3 * layout.height * layout.width);
      };
      const settings = samplerSettings(manifest, { steps: fixture.first_input.steps });
      await sampleNextFrame(recorder, context, fixture.actions, noise, settings, layout);
      expect(first).toBeDefined();
      expect(maxAbsDiff(first!, expected)).toBe(0);
      // and directly from the reference's noisy planes: action one-hot planes and the sigma plane
      const plane = layout.height * layout.width;
      const noisy = new Float32Array(fixture.batch * 3 * plane);
      for (let i = 0; i < fixture.batch; i++) {
        noisy.set(expected.subarray(i * channels * plane, (i * channels + 3) * plane), i * 3 * plane);
      }
      const input = denoiserInput(noisy, context, fixture.actions, fixture.first_input.sigma, layout);
      expect(maxAbsDiff(input, expected)).toBe(0);
      fixture.actions.forEach((action, i) => {
        const actionsAt = i * channels + 3 + 3 * frames;
        for (let a = 0; a < 3; a++) expect(input[(actionsAt + a) * plane + 7]).toBe(a === action ? 1 : 0);
        expect(input[(actionsAt + 3) * plane + 100]).toBe(Math.fround(fixture.first_input.sigma));
      });
      expect(() => denoiserInput(noisy, context, [0, 3], 0.5, layout)).toThrow(/action 3/);
    });

    it("converts frames and tensors like frames_to_tensor / tensor_to_frames", () => {
      expect(concat(tensorToFrames(context, layout))).toEqual(contextBytes);
      for (const c of fixture.cases) expect(concat(tensorToFrames(f32(c.pred_f32), layout))).toEqual(u8(c.bytes_u8));
      const half = new Float32Array(3 * layout.height * layout.width).fill(Math.fround(0.5 / 127.5 - 1));
      expect(tensorToFrames(half, layout)[0][0]).toBe(1); // floor(v + 0.5): 0.5 rounds up
    });

    for (const [index, label] of ["1 step", "2 steps", "4 steps", "3 steps, sigma_max 0.5"].entries()) {
      it(`samples the same next frames (${label})`, async () => {
        const c = fixture.cases[index];
        const settings = samplerSettings(manifest, { steps: c.steps, sigmaMax: c.sigma_max });
        expect(settings.sigmaMin).toBe(c.sigma_min);
        expect(maxAbsDiff(sigmaSchedule(c.steps, c.sigma_max, c.sigma_min), c.sigmas)).toBeLessThan(1e-12);
        const pred = await sampleNextFrame(denoise, context, fixture.actions, noise, settings, layout);
        const diff = maxAbsDiff(pred, f32(c.pred_f32));
        console.log(`breakout sampler ${label}: max |TS - Python| = ${diff.toExponential(2)}`);
        expect(diff).toBeLessThanOrEqual(TOLERANCE);
        expect(maxAbsDiff(concat(tensorToFrames(pred, layout)), u8(c.bytes_u8))).toBeLessThanOrEqual(1);
      });
    }

    it("depends on the action and the step count (the comparison is not vacuous)", async () => {
      const settings = samplerSettings(manifest, { steps: 1 });
      const swapped = fixture.actions.map((a) => (a + 1) % 3);
      const other = await sampleNextFrame(denoise, context, swapped, noise, settings, layout);
      expect(maxAbsDiff(other, f32(fixture.cases[0].pred_f32))).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(f32(fixture.cases[0].pred_f32), f32(fixture.cases[2].pred_f32))).toBeGreaterThan(1e-3);
    });
    });
  }
}
