// The Breakout warm-start diffusion sampler: a port of worldmodels/breakout/sampler.py (sigma_schedule,
// sample_next_frame) and of the tensor layout in worldmodels/breakout/denoiser.py (frames_to_tensor, tensor_to_frames,
// denoiser_input).
// Pure functions over a `Denoise` callback; every size and sampler default comes from the manifest: Breakout's 3 action
// planes, or a gym_pixels game's num_actions (src/pixels/ plays those; validateManifest pins num_actions to the
// number of frame.actions, which is what the layout counts).
// Float32 arithmetic is rounded after each operation (Math.fround) exactly as torch does it on float32 tensors.
// Tested by tests/breakout_sampler.test.ts against Python outputs of the same ONNX graph (tests/web/web_fixtures.py).
import type { DenoiserManifest } from "../shell/manifest";
import { ort } from "../shell/ort";
import { denoiserTensors } from "../shell/tensors";

/** The denoiser: input (n, channels, H, W) float32 in NCHW order -> predicted clean frames (n, 3, H, W). */
export type Denoise = (input: Float32Array, n: number) => Promise<Float32Array>;

export interface FrameLayout {
  height: number;
  width: number;
  contextFrames: number;
  numActions: number;
  inputChannels: number; // noisy RGB (3) + context (3 x contextFrames) + action planes + sigma plane (1)
}

export interface SamplerSettings {
  steps: number;
  sigmaMax: number;
  sigmaMin: number;
}

export function frameLayout(m: DenoiserManifest): FrameLayout {
  const f = m.frame;
  return {
    height: f.height,
    width: f.width,
    contextFrames: f.context_frames,
    numActions: f.actions.length,
    inputChannels: 3 + 3 * f.context_frames + f.actions.length + 1,
  };
}

/** The manifest's sampler defaults, with the player's controls (steps, warm-start noise) applied over them. */
export function samplerSettings(m: DenoiserManifest, overrides: Partial<SamplerSettings> = {}): SamplerSettings {
  return {
    steps: overrides.steps ?? m.sampler.steps,
    sigmaMax: overrides.sigmaMax ?? m.sampler.sigma_max,
    sigmaMin: overrides.sigmaMin ?? m.sampler.sigma_min,
  };
}

/** K noise levels from sigmaMax down to sigmaMin, evenly spaced in log (one step: just sigmaMax). */
export function sigmaSchedule(steps: number, sigmaMax: number, sigmaMin: number): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be an integer >= 1 (got ${steps})`);
  if (steps === 1) return [sigmaMax];
  const ratio = sigmaMin / sigmaMax;
  return Array.from({ length: steps }, (_, i) => sigmaMax * ratio ** (i / (steps - 1)));
}

const f32 = Math.fround;

/** uint8 HWC frames -> float32 (k, 3, H, W) in [-1, 1] as x / 127.5 - 1. */
export function framesToTensor(frames: Uint8Array[], layout: FrameLayout): Float32Array {
  const plane = layout.height * layout.width;
  const out = new Float32Array(frames.length * 3 * plane);
  frames.forEach((frame, k) => {
    if (frame.length !== plane * 3) throw new RangeError(`frame ${k} has ${frame.length} bytes, expected ${plane * 3}`);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) out[(k * 3 + c) * plane + p] = f32(f32(frame[p * 3 + c] / 127.5) - 1);
    }
  });
  return out;
}

/** float32 (k, 3, H, W) -> k uint8 HWC frames, as floor((clamp(y, -1, 1) + 1) * 127.5 + 0.5) clamped to [0, 255]. */
export function tensorToFrames(x: Float32Array, layout: FrameLayout): Uint8Array[] {
  const plane = layout.height * layout.width;
  if (x.length % (3 * plane) !== 0) throw new RangeError(`tensor of ${x.length} values is not whole (3, H, W) frames`);
  return Array.from({ length: x.length / (3 * plane) }, (_, k) => {
    const frame = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        const y = Math.min(Math.max(x[(k * 3 + c) * plane + p], -1), 1);
        const v = Math.floor(f32(f32(f32(y + 1) * 127.5) + 0.5));
        frame[p * 3 + c] = Math.min(Math.max(v, 0), 255);
      }
    }
    return frame;
  });
}

/** The denoiser input (n, channels, H, W): noisy RGB | context oldest -> newest | one-hot action planes | sigma.
 * noisy (n, 3, H, W), context (n, contextFrames, 3, H, W), one action per row, one sigma for all rows. */
export function denoiserInput(noisy: Float32Array, context: Float32Array, actions: ArrayLike<number>, sigma: number,
  layout: FrameLayout): Float32Array {
  const n = actions.length;
  const plane = layout.height * layout.width;
  const contextChannels = 3 * layout.contextFrames;
  checkLength("noisy", noisy, n * 3 * plane);
  checkLength("context", context, n * contextChannels * plane);
  const out = new Float32Array(n * layout.inputChannels * plane);
  for (let i = 0; i < n; i++) {
    const action = actions[i];
    if (!Number.isInteger(action) || action < 0 || action >= layout.numActions) {
      throw new RangeError(`action ${action} is not in [0, ${layout.numActions})`);
    }
    const row = i * layout.inputChannels * plane;
    out.set(noisy.subarray(i * 3 * plane, (i + 1) * 3 * plane), row);
    out.set(context.subarray(i * contextChannels * plane, (i + 1) * contextChannels * plane), row + 3 * plane);
    const actionStart = row + (3 + contextChannels) * plane;
    out.fill(1, actionStart + action * plane, actionStart + (action + 1) * plane);
    const sigmaStart = actionStart + layout.numActions * plane;
    out.fill(f32(sigma), sigmaStart, sigmaStart + plane);
  }
  return out;
}

/** Predict the next frames: context (n, contextFrames, 3, H, W) in [-1, 1], one action per row, noise (n, 3, H, W)
 * -> (n, 3, H, W) in [-1, 1]. Starts at latest frame + sigmaMax * noise and walks the schedule down (Euler, x0). */
export async function sampleNextFrame(denoise: Denoise, context: Float32Array, actions: ArrayLike<number>,
  noise: Float32Array, settings: SamplerSettings, layout: FrameLayout): Promise<Float32Array> {
  const n = actions.length;
  const frameValues = 3 * layout.height * layout.width;
  checkLength("context", context, n * layout.contextFrames * frameValues);
  checkLength("noise", noise, n * frameValues);
  const sigmas = sigmaSchedule(settings.steps, settings.sigmaMax, settings.sigmaMin);
  const x = new Float32Array(n * frameValues);
  const first = f32(sigmas[0]);
  for (let i = 0; i < n; i++) {
    const latest = (i * layout.contextFrames + layout.contextFrames - 1) * frameValues;
    for (let j = 0; j < frameValues; j++) x[i * frameValues + j] = f32(context[latest + j] + f32(first * noise[i * frameValues + j]));
  }
  let x0: Float32Array = new Float32Array(0);
  for (let s = 0; s < sigmas.length; s++) {
    x0 = await denoise(denoiserInput(x, context, actions, sigmas[s], layout), n);
    checkLength("denoiser output", x0, n * frameValues);
    if (s + 1 < sigmas.length) {
      const ratio = f32(sigmas[s + 1] / sigmas[s]);
      for (let j = 0; j < x.length; j++) x[j] = f32(x0[j] + f32(ratio * f32(x[j] - x0[j])));
    }
  }
  return x0;
}

/** A Denoise over an onnxruntime-web session, with the tensor names and shape the manifest declares. */
export function sessionDenoiser(session: ort.InferenceSession, m: DenoiserManifest): Denoise {
  const layout = frameLayout(m);
  const { input: { name: inputName }, output: { name: outputName } } = denoiserTensors(m);
  return async (input, n) => {
    const feeds = { [inputName]: new ort.Tensor("float32", input, [n, layout.inputChannels, layout.height, layout.width]) };
    const result = (await session.run(feeds))[outputName];
    if (!result || result.type !== "float32") throw new Error(`the model returned no float32 output "${outputName}"`);
    return result.data as Float32Array;
  };
}

/** Standard normal float32 values (Box-Muller over `random`, uniform in [0, 1)). */
export function gaussianNoise(count: number, random: () => number = Math.random): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - random()));
    const angle = 2 * Math.PI * random();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

function checkLength(what: string, values: Float32Array, expected: number): void {
  if (values.length !== expected) throw new RangeError(`${what} has ${values.length} values, expected ${expected}`);
}
