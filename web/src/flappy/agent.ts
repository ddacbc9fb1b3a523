// The Flappy agent: a trained PPO policy (policy.onnx, checked by src/shell/policy.ts) plays the dream. Each frame it
// sees what it was trained on in the dream (worldmodels/dream/flappy.py, the specification): the env's 12
// normalized features made from the dreamed (decoded) state (`features`), with the bird's velocity and rotation,
// which no token carries, followed by the game's own rules from the actions (`BirdMotion`), then the pipes
// reordered by worldmodels/flappy/collector.py pipes_ahead_first (`pipesAheadFirst`); its action is the argmax of the
// policy's logits (0 noop, 1 flap; a tie is a noop). `DreamTracker` keeps the state and the motion of one game, as
// Python's DreamGame does: it replays the start context's frames (each frame's action leads to the next), then
// follows every dreamed frame. The worker (worker.ts) runs the policy beside the decoder, so the agent's action is
// the one fed for the next frame. Pinned to the Python functions by web/tests/flappy_agent.test.ts (fixtures from
// tests/web/web_fixtures.py write_flappy_agent).
import { createSession, ort } from "../shell/ort";
import type { PolicyManifest } from "../shell/policy";
import type { RuntimeChoice } from "../shell/types";
import type { FrameState, TokenSpec } from "./spec";

// flappy-bird-gymnasium's constants (envs/constants.py) and the normalization of its features observation.
export const SCREEN_WIDTH = 288;
export const SCREEN_HEIGHT = 512;
export const PIPE_GAP = 100;
export const PIPE_WIDTH = 52;
export const BIRD_X = 57; // int(288 * 0.2)
export const PLAYER_MAX_VEL_Y = 10;
export const PLAYER_FLAP_ACC = -9;
export const PLAYER_ACC_Y = 1;
export const PLAYER_VEL_ROT = 3;
export const FLAP_CEILING = -48; // -2 * PLAYER_HEIGHT: a flap is ignored unless the bird's y is above this
export const START_VELOCITY = PLAYER_FLAP_ACC; // what the env's reset gives a new game's bird
export const START_ROTATION = 45;
export const ABSENT_PIPE: readonly [number, number, number] = [1, 0, 1]; // the env's pipe "behind the screen"
export const OBSERVATION_SIZE = 12;
export const FLAP = 1;

/** Python's BirdMotion: the bird's velocity and rotation by the game's rules from the actions. */
export class BirdMotion {
  velocity = START_VELOCITY;
  rotation = START_ROTATION;

  /** One frame with `action`; `yBefore` is the bird's y in the frame the action is played in. */
  step(action: number, yBefore: number): void {
    const flapped = action === FLAP && yBefore > FLAP_CEILING;
    if (flapped) this.velocity = PLAYER_FLAP_ACC;
    if (this.rotation > -90) this.rotation -= PLAYER_VEL_ROT;
    if (this.velocity < PLAYER_MAX_VEL_Y && !flapped) this.velocity += PLAYER_ACC_Y;
    if (flapped) this.rotation = 45;
  }
}

/** Python's features: the env's 12 normalized features of a decoded state: 3 pipes (x, gap top, gap bottom) sorted
 * by x (visible slots first, then the absent pipes, a stable sort), then bird y, velocity, rotation. */
export function features(state: FrameState, velocity: number, rotation: number): number[] {
  const pipes: number[][] = state.pipes.filter((p) => p.visible).map((p) =>
    [p.x / SCREEN_WIDTH, (p.gapY - PIPE_GAP / 2) / SCREEN_HEIGHT, (p.gapY + PIPE_GAP / 2) / SCREEN_HEIGHT]);
  while (pipes.length < 3) pipes.push([...ABSENT_PIPE]);
  pipes.sort((a, b) => a[0] - b[0]); // stable (ES2019), like Python's sorted
  return [...pipes.flat(), state.birdY / SCREEN_HEIGHT, velocity / PLAYER_MAX_VEL_Y, rotation / 90];
}

/** Python's pipes_ahead_first: the 3 pipes the bird has not passed first (their order kept), then the passed ones
 * (a pipe is passed when its right edge, x * 288 + 52, is left of the bird's x, 57). */
export function pipesAheadFirst(obs: ArrayLike<number>): number[] {
  const pipes = [0, 1, 2].map((i) => [obs[3 * i], obs[3 * i + 1], obs[3 * i + 2]]);
  const passed = (p: number[]) => p[0] * SCREEN_WIDTH + PIPE_WIDTH < BIRD_X;
  const ordered = [...pipes.filter((p) => !passed(p)), ...pipes.filter(passed)];
  return [...ordered.flat(), ...Array.from(obs).slice(9)];
}

/** What the policy sees for `state` with the bird's `motion`. */
export function observation(state: FrameState, motion: BirdMotion): number[] {
  return pipesAheadFirst(features(state, motion.velocity, motion.rotation));
}

/** The action of the logits: the first largest (a tie is a noop). */
export function argmaxAction(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** One game's state and bird motion, as Python's DreamGame keeps them: `start` replays a start context (from a
 * game's first frame, with the actions played), `advance` takes each next frame with the action that made it. */
export class DreamTracker {
  motion = new BirdMotion();
  state: FrameState | null = null;

  constructor(private readonly spec: TokenSpec) {}

  /** A new game from `context`: whole frames ending with a state frame, from a game's first frame. */
  start(context: ArrayLike<number>): void {
    const n = this.spec.tokensPerFrame;
    const per = this.spec.stateTokensPerFrame;
    if (context.length % n !== per) throw new Error(`agent: a start context of ${context.length} tokens is not whole frames`);
    const tokens = Array.from(context);
    const frames = (tokens.length + 1) / n;
    this.motion = new BirdMotion();
    for (let f = 0; f < frames; f++) {
      this.state = this.spec.decodeFrame(tokens.slice(f * n, f * n + per));
      if (f < frames - 1) this.motion.step(this.spec.labelIndex("action", tokens[f * n + per]), this.state.birdY);
    }
  }

  /** The next frame's state tokens, made by `action` played in the current one. */
  advance(action: number, tokens: ArrayLike<number>): void {
    if (!this.state) throw new Error("agent: advance before start");
    this.motion.step(action, this.state.birdY);
    this.state = this.spec.decodeFrame(tokens);
  }

  /** What the policy sees now. */
  observation(): number[] {
    if (!this.state) throw new Error("agent: observation before start");
    return observation(this.state, this.motion);
  }
}

export interface AgentChoice {
  action: number; // 0 noop, 1 flap
  logits: number[];
}

/** The policy's onnxruntime-web session: `act(obs)` is the argmax of its logits. */
export class AgentPolicy {
  private readonly input: Float32Array;
  private readonly feeds: Record<string, ort.Tensor>;

  constructor(private readonly session: ort.InferenceSession, readonly manifest: PolicyManifest) {
    const { input, output } = manifest;
    if (!session.inputNames.includes(input.name) || !session.outputNames.includes(output.name)) {
      throw new Error(`the policy graph ${manifest.onnx} has inputs ${session.inputNames.join(", ")} and outputs ` +
        `${session.outputNames.join(", ")}, its policy.json names "${input.name}" and "${output.name}": re-export it`);
    }
    this.input = new Float32Array(OBSERVATION_SIZE);
    this.feeds = { [input.name]: new ort.Tensor("float32", this.input, [1, OBSERVATION_SIZE]) };
  }

  /** A session on the chosen runtime (configureOrt must have run in browsers). */
  static async create(manifest: PolicyManifest, onnx: Uint8Array, runtime: RuntimeChoice): Promise<AgentPolicy> {
    return new AgentPolicy(await createSession(onnx, runtime), manifest);
  }

  async act(obs: ArrayLike<number>): Promise<AgentChoice> {
    if (obs.length !== OBSERVATION_SIZE) throw new Error(`agent: an observation of ${obs.length} numbers, not ${OBSERVATION_SIZE}`);
    this.input.set(obs);
    const out = await this.session.run(this.feeds);
    const logits = Array.from(out[this.manifest.output.name].data as Float32Array);
    return { action: argmaxAction(logits), logits };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
