"""`worldmodels/BreakoutDream-v0`: the Breakout simulator's gymnasium interface, played inside an exported
diffusion world model that runs autonomously on its own frames.

    env = gymnasium.make("worldmodels/BreakoutDream-v0", model="models/breakout/breakout.json")
    frame, info = env.reset(seed=0)
    frame, reward, terminated, truncated, info = env.step(2)      # 0 noop, 1 left, 2 right

* Start: the true game of a seed drawn from `np_random`, played by uniformly random keys for a random 0-59 steps
  (so starts are not all the serve), gives the context frames (the manifest's `frame.context_frames`, 4 or 8).
* Step: one warm-started sample of the next frame from the newest context frames and the action (the manifest's sampler
  contract: steps, sigma_max, sigma_min; the noise from a generator seeded by `np_random`), rounded to bytes; the
  sample becomes the newest context frame. The observation is the frame, uint8 (64, 64, 3), as the simulator's.
* Reward and end, read from the dreamed pixels with `worldmodels.breakout.readout` (nearest game colour):
  - reward = the bricks present in the previous frame and absent in this one (a brick that reappears gives
    nothing back), as the simulator rewards a brick hit;
  - `terminated` when the frame has shown no ball for `LOST_AFTER` (4) frames in a row: the true game never shows
    a frame without a ball (a lost ball is served again at once), so a missing ball is the dream losing it, and
    the dream has no lives to lose;
  - `truncated` after `max_frames` (1000) dreamed frames.
  `info`: `bricks_broken` so far, `ball_missing_for` (frames in a row without a ball), `frames`.

Many dreams at once: `BreakoutDreamVecEnv` makes all N frames with one denoiser call per sampler step.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import torch
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from worldmodels.breakout.denoiser import frames_to_tensor, tensor_to_frames
from worldmodels.breakout.readout import read_balls, read_bricks
from worldmodels.breakout.sampler import sample_next_frame
from worldmodels.breakout.sim import FRAME_SIZE, NUM_ACTIONS, BreakoutSim
from worldmodels.dream.flappy import check_action, check_render_mode, manifest_path, ort_session, vector_rngs

DEFAULT_MODEL = "models/breakout/breakout.json"
MAX_WARMUP = 60  # random-key steps of the true game before the context is taken: 0 .. MAX_WARMUP - 1
LOST_AFTER = 4  # frames in a row without a ball that end the episode
MAX_FRAMES = 1000


def frame_space() -> gymnasium.spaces.Box:
    return gymnasium.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), np.uint8)


def true_context(rng: np.random.Generator, count: int = 4) -> np.ndarray:
    """uint8 (count, 64, 64, 3): the newest `count` frames of a true game (seed from `rng`) after a random warm-up
    of random keys (both from `rng`)."""
    sim = BreakoutSim([int(rng.integers(2**32))])
    warmup = int(rng.integers(MAX_WARMUP))
    shown = [sim.render()[0]]
    for action in rng.integers(NUM_ACTIONS, size=warmup + count - 1):
        sim.step(np.array([action]))
        shown.append(sim.render()[0])
    return np.stack(shown[-count:])


class BreakoutDreams:
    """N Breakout dreams over one ONNX denoiser session: `start(i, context, seed)`, `step(actions)` -> uint8
    (N, 64, 64, 3); and the read-out bookkeeping of each dream (reward, ball-missing streaks)."""

    def __init__(self, model: str | Path, num: int, threads: int = 1, max_frames: int = MAX_FRAMES):
        self.path, manifest = manifest_path(model, "breakout")
        sampler = manifest["sampler"]
        self.steps, self.sigma_max, self.sigma_min = sampler["steps"], sampler["sigma_max"], sampler["sigma_min"]
        self.session = ort_session(self.path.parent / manifest["onnx"], threads)
        self.input, self.output = manifest["inputs"][0]["name"], manifest["outputs"][0]["name"]
        self.num, self.max_frames = num, max_frames
        self.context_frames = int(manifest["frame"]["context_frames"])
        self.context = np.zeros((num, self.context_frames, FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
        self.generators = [torch.Generator().manual_seed(0) for _ in range(num)]
        self.bricks = np.zeros((num, 6, 8), bool)
        self.missing_for = np.zeros(num, np.int64)
        self.broken = np.zeros(num, np.int64)
        self.frames = np.zeros(num, np.int64)

    def denoise(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run([self.output], {self.input: x.numpy()})[0])

    def start(self, i: int, context: np.ndarray, seed: int) -> None:
        self.context[i] = context
        self.generators[i] = torch.Generator().manual_seed(seed)
        self.bricks[i] = read_bricks(context[-1:])[0]
        self.missing_for[i] = self.broken[i] = self.frames[i] = 0

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The N next frames and, per dream, (reward, terminated, truncated)."""
        shape = (1, 3, FRAME_SIZE, FRAME_SIZE)
        noise = torch.cat([torch.randn(shape, generator=g) for g in self.generators])
        with torch.no_grad():
            pred = sample_next_frame(self.denoise, frames_to_tensor(torch.from_numpy(self.context)),
                                     torch.as_tensor(np.asarray(actions, np.int64)), self.steps, self.sigma_max,
                                     self.sigma_min, noise=noise)
        frames = tensor_to_frames(pred).numpy()
        self.context = np.concatenate([self.context[:, 1:], frames[:, None]], axis=1)
        return (frames, *self.judge(frames))

    def judge(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The read-out rules (module docstring) for each dream's next frame: (reward, terminated, truncated)."""
        bricks = read_bricks(frames)
        reward = (self.bricks & ~bricks).sum(axis=(1, 2)).astype(np.float64)
        self.bricks, self.broken, self.frames = bricks, self.broken + reward.astype(np.int64), self.frames + 1
        self.missing_for = np.where(read_balls(frames).missing, self.missing_for + 1, 0)
        terminated = self.missing_for >= LOST_AFTER
        return reward, terminated, ~terminated & (self.frames >= self.max_frames)

    def info(self, i: int | None = None) -> dict:
        pick = slice(None) if i is None else i
        return {"bricks_broken": self.broken[pick].copy(), "ball_missing_for": self.missing_for[pick].copy(),
                "frames": self.frames[pick].copy()}


class BreakoutDreamEnv(gymnasium.Env):
    """`worldmodels/BreakoutDream-v0` (module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, model: str | Path = DEFAULT_MODEL, max_frames: int = MAX_FRAMES,
                 render_mode: str | None = None, threads: int = 1):
        check_render_mode(render_mode)
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 (got {max_frames})")
        self.dreams = BreakoutDreams(model, 1, threads, max_frames)
        self.render_mode = render_mode
        self.observation_space = frame_space()
        self.action_space = gymnasium.spaces.Discrete(NUM_ACTIONS)
        self._started = self._ended = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start(self.dreams, 0, self.np_random)
        self._started, self._ended = True, False
        return self.dreams.context[0, -1].copy(), {k: v.item() for k, v in self.dreams.info(0).items()}

    def step(self, action):
        if not self._started or self._ended:
            raise RuntimeError("call reset() before step()" if not self._started else
                               "the dreamed game ended: call reset() before step()")
        frames, reward, terminated, truncated = self.dreams.step([check_action(action, NUM_ACTIONS)])
        self._ended = bool(terminated[0] or truncated[0])
        info = {k: v.item() for k, v in self.dreams.info(0).items()}
        return frames[0].copy(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self):
        return self.dreams.context[0, -1].copy() if self.render_mode == "rgb_array" and self._started else None


def start(dreams: BreakoutDreams, i: int, rng: np.random.Generator) -> None:
    """Dream i's next game: a true context and a noise seed, both from `rng` (the same draws in either env)."""
    context = true_context(rng, dreams.context_frames)
    dreams.start(i, context, int(rng.integers(2**63)))


class BreakoutDreamVecEnv(VectorEnv):
    """`num_envs` Breakout dreams, one denoiser call per sampler step for all of them, with same-step autoreset
    (`info["final_obs"]`, `info["final_info"]`); `reset(seed=s)` seeds dream i with s + i, as `BreakoutDreamEnv`s
    reset with those seeds."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, model: str | Path = DEFAULT_MODEL, max_frames: int = MAX_FRAMES,
                 render_mode: str | None = None, threads: int = 1):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
        check_render_mode(render_mode)
        self.dreams = BreakoutDreams(model, num_envs, threads, max_frames)
        self.num_envs, self.render_mode = num_envs, render_mode
        self.single_observation_space = frame_space()
        self.single_action_space = gymnasium.spaces.Discrete(NUM_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self._started = False

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        self.rngs = vector_rngs(seed, self.num_envs, self.rngs)
        for i, rng in enumerate(self.rngs):
            start(self.dreams, i, rng)
        self._started = True
        return self.dreams.context[:, -1].copy(), self.dreams.info()

    def step(self, actions):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = [check_action(a, NUM_ACTIONS) for a in np.asarray(actions).reshape(-1)]
        if len(actions) != self.num_envs:
            raise ValueError(f"step: {len(actions)} actions for {self.num_envs} envs")
        frames, reward, terminated, truncated = self.dreams.step(actions)
        frames, infos = frames.copy(), self.dreams.info()
        ended = terminated | truncated
        if ended.any():
            infos["final_obs"] = np.empty(self.num_envs, object)
            for i in np.flatnonzero(ended):
                infos["final_obs"][i] = frames[i].copy()
                start(self.dreams, int(i), self.rngs[i])
                frames[i] = self.dreams.context[i, -1]
            infos["final_info"] = {**{k: v.copy() for k, v in infos.items() if k != "final_obs"},
                                   **{f"_{k}": ended.copy() for k in ("bricks_broken", "ball_missing_for", "frames")}}
            infos["_final_obs"], infos["_final_info"] = ended.copy(), ended.copy()
            infos.update({k: v for k, v in self.dreams.info().items()})
        return frames, reward, terminated, truncated, infos

    def render(self):
        return tuple(self.dreams.context[:, -1].copy()) if self.render_mode == "rgb_array" and self._started \
            else None
