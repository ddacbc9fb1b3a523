"""`worldmodels/FlappyDream-v0`: the real Flappy Bird's gymnasium interface, played inside an exported world model.

    env = gymnasium.make("worldmodels/FlappyDream-v0", model="models/flappy/flappy.json")
    obs, info = env.reset(seed=0)                   # a real start context from the manifest
    obs, reward, terminated, truncated, info = env.step(1)

The same policy plays the dream and the real `FlappyBird-v0` (`use_lidar=False`): the rules below make the dream's
observation, reward and end from the dreamed tokens the way the real env makes them from its game.

* Start: `reset` picks one of the manifest's start contexts (real frames from a game's first frame, with the actions
  played) with the env's `np_random`, or takes `options={"context": tokens}` (whole frames ending with a state
  frame, beginning at a game's first frame); the decoder's own random stream is seeded from `np_random` too, so a
  seed fixes the whole dream for given actions.
* Step: `step(action)` feeds the action and makes the next frame with the export's decoder (`from_manifest`: the
  frame graph when the export has one), whose done token ends the episode (`terminated`); `max_frames` dreamed
  frames truncate it.
* Observation (`features`): the env's 12 normalized features from the dreamed state. Pipes: each visible slot as
  (x, gap top, gap bottom) / (288, 512, 512), where gap top/bottom are the gap centre -/+ 50 px; the env's third
  pipe, which no token slot holds, and a hidden slot read as the env's "behind the screen" pipe (1, 0, 1); pipes
  sorted by x, as the env sorts them. Bird: y / 512 from the bird's token (its bin centre); velocity / 10 and
  rotation / 90 follow the game's own rules from the actions (`BirdMotion`: a flap while y > -48 sets the
  velocity to -9 and the rotation to 45, else gravity adds 1 up to 10 and the bird turns 3 degrees down to -90),
  starting from the values the env resets a game with. So the observation equals the real one up to the tokens'
  bins (bird 3.75 px, pipe x 2.5 px, gap 0.7 px) and the third pipe.
* Reward, the env's rule on the dreamed frames: +1 on a frame where the bird passes a pipe (the score rule of
  `physics.RuleChecker`, equal to the env's own score on real frames), else +0.1; -0.5 while the bird is above the
  screen (y < 0); -1 on the death frame. `info["score"]` counts the pipes passed, `info["can_collide"]` says
  whether the frame's geometry allows a collision (a death without one is the dream's, not the game's).
* `render()` (`render_mode="rgb_array"`) draws the dreamed state with `worldmodels.flappy.render`.

Needs onnxruntime and numpy only (no torch). Many dreams per call: `worldmodels.dream.vector`.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
from flappy_bird_gymnasium.envs.constants import (
    PLAYER_ACC_Y,
    PLAYER_FLAP_ACC,
    PLAYER_HEIGHT,
    PLAYER_MAX_VEL_Y,
    PLAYER_VEL_ROT,
)
from gymnasium.utils import seeding

from worldmodels.core.errors import UserError
from worldmodels.core.manifest import read_manifest
from worldmodels.flappy.game import FLAP, PIPE_GAP, SCREEN_HEIGHT, SCREEN_WIDTH, FlappyState
from worldmodels.flappy.physics import RuleChecker
from worldmodels.flappy.render import render_frame
from worldmodels.flappy.tokens import TokenSpec

DEFAULT_MODEL = "models/flappy/flappy.json"
START_VELOCITY, START_ROTATION = PLAYER_FLAP_ACC, 45  # what the env's reset gives a new game's bird
FLAP_CEILING = -2 * PLAYER_HEIGHT  # a flap is ignored unless y > this
ABSENT_PIPE = (1.0, 0.0, 1.0)  # the env's normalized pipe "behind the screen"
REWARD_PASS, REWARD_ALIVE, REWARD_ABOVE, REWARD_DEATH = 1.0, 0.1, -0.5, -1.0
MAX_FRAMES = 2000


class BirdMotion:
    """The bird's velocity and rotation, which the tokens do not carry, by the game's own rules from the actions."""

    def __init__(self) -> None:
        self.velocity, self.rotation = float(START_VELOCITY), float(START_ROTATION)

    def step(self, action: int, y_before: float) -> None:
        flapped = action == FLAP and y_before > FLAP_CEILING
        if flapped:
            self.velocity = float(PLAYER_FLAP_ACC)
        if self.rotation > -90:
            self.rotation -= PLAYER_VEL_ROT
        if self.velocity < PLAYER_MAX_VEL_Y and not flapped:
            self.velocity += PLAYER_ACC_Y
        if flapped:
            self.rotation = 45.0


def features(state: FlappyState, velocity: float, rotation: float) -> np.ndarray:
    """The env's normalized 12-number features observation for a (decoded) token state (module docstring)."""
    pipes = [(x / SCREEN_WIDTH, (gap - PIPE_GAP / 2) / SCREEN_HEIGHT, (gap + PIPE_GAP / 2) / SCREEN_HEIGHT)
             for shown, x, gap in zip(state.visible, state.pipe_x, state.gap_y, strict=True) if shown]
    pipes = sorted(pipes + [ABSENT_PIPE] * (3 - len(pipes)), key=lambda pipe: pipe[0])
    return np.array([*np.ravel(pipes), state.bird_y / SCREEN_HEIGHT, velocity / PLAYER_MAX_VEL_Y, rotation / 90],
                    np.float64)


def observation_space() -> gymnasium.spaces.Box:
    """The real env's (`use_lidar=False`, normalized)."""
    return gymnasium.spaces.Box(-1.0, 1.0, shape=(12,), dtype=np.float64)


def reward(passed: int, state: FlappyState) -> float:
    """The env's reward rule for the frame `state`, in which the bird passed `passed` pipes."""
    value = REWARD_PASS if passed else REWARD_ALIVE
    if state.bird_y < 0:
        value = REWARD_ABOVE
    return REWARD_DEATH if state.done else value


class DreamGame:
    """One dreamed game's bookkeeping beside its decoder: the bird's motion, the rule checker that scores it, the
    frames dreamed. `start(context)` replays the context's frames; `advance(action, tokens)` takes the next frame
    and returns (reward, terminated, truncated)."""

    def __init__(self, spec: TokenSpec, max_frames: int):
        self.spec, self.max_frames = spec, max_frames
        self.state: FlappyState | None = None

    def start(self, context: np.ndarray) -> None:
        spec, n, per = self.spec, self.spec.tokens_per_frame, self.spec.state_tokens_per_frame
        frames = np.append(context, spec.offsets["action"]).reshape(-1, n)
        self.motion, self.checker = BirdMotion(), RuleChecker(spec)
        states = [spec.decode_frame(frame[:per])[0] for frame in frames]
        for state, frame in zip(states, frames[:-1], strict=False):
            self.motion.step(int(frame[per] - spec.offsets["action"]), state.bird_y)
        self.checker.start(frames[-1][:per])
        self.state, self.frames, self.score, self.can_collide = states[-1], 0, 0, False
        self.context_frames = len(frames)

    def advance(self, action: int, tokens: np.ndarray) -> tuple[float, bool, bool]:
        self.motion.step(action, self.state.bird_y)
        transition = self.checker.step(action, tokens)
        passed, self.can_collide = transition.passed, transition.can_collide
        self.state = self.spec.decode_frame(np.asarray(tokens, np.int64))[0]
        self.frames += 1
        self.score += passed
        terminated = bool(self.state.done)
        return reward(passed, self.state), terminated, not terminated and self.frames >= self.max_frames

    def observation(self) -> np.ndarray:
        return features(self.state, self.motion.velocity, self.motion.rotation)

    def info(self) -> dict:
        """`score` (pipes passed), `frames` dreamed, `can_collide`: whether the latest frame's geometry lets the bird
        touch a pipe or the ground (`physics.RuleChecker`; a death without it is one the game could not show)."""
        return {"score": self.score, "frames": self.frames, "can_collide": self.can_collide}


def ort_session(path: Path, threads: int):
    """An onnxruntime CPU session with `threads` intra-op threads (the dreams' graphs)."""
    import onnxruntime as ort  # ~0.5 s: only when a dream env is made

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_render_mode(render_mode: str | None) -> None:
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array' (got {render_mode!r})")


def vector_rngs(seed: int | list[int] | None, num_envs: int, rngs: list[np.random.Generator]
                ) -> list[np.random.Generator]:
    """The per-dream random streams after a vector env's `reset(seed=...)`: dream i seeded with seed + i (or the
    i-th of a list), as a single env reset with that seed; `rngs` kept when no seed is given."""
    if seed is None:
        return rngs
    seeds = [int(seed) + i for i in range(num_envs)] if np.ndim(seed) == 0 else list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"reset: {len(seeds)} seeds for {num_envs} envs")
    return [seeding.np_random(s)[0] for s in seeds]


def check_action(action, actions: int = 2) -> int:
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) or action not in range(
            actions):
        raise ValueError(f"action must be an int in 0..{actions - 1} (got {action!r})")
    return int(action)


def load_contexts(manifest: dict, path: Path) -> list[np.ndarray]:
    contexts = [np.asarray(c, np.int64) for c in manifest.get("start_contexts") or []]
    if not contexts:
        raise UserError(f"{path} has no start contexts: re-export the model with python -m worldmodels.export")
    return contexts


def manifest_path(model: str | Path, task: str) -> tuple[Path, dict]:
    """The manifest of the export `model` (its .json or .onnx), checked to be a `task` export."""
    path = Path(model)
    path = path.with_suffix(".json") if path.suffix == ".onnx" else path
    if not path.is_file():
        raise UserError(f"no exported model at {path}: give a <name>.json written by python -m worldmodels.export")
    manifest = read_manifest(path)
    if manifest["task"] != task:
        raise UserError(f"{path} is a {manifest['task']} export, not a {task} one")
    return path, manifest


class FlappyDreamEnv(gymnasium.Env):
    """`worldmodels/FlappyDream-v0` (module docstring). `model`: an export's manifest (or .onnx);
    `max_frames`: dreamed frames before truncation; `threads`: onnxruntime's; `per_token`: decode with the
    per-token graph even when the export has a frame graph (the same frames)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, model: str | Path = DEFAULT_MODEL, max_frames: int = MAX_FRAMES,
                 render_mode: str | None = None, threads: int = 1, per_token: bool = False):
        from worldmodels.flappy.decoding.decoder import from_manifest  # onnxruntime: only when an env is made

        check_render_mode(render_mode)
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 (got {max_frames})")
        self.path, self.manifest = manifest_path(model, "flappy")
        self.contexts = load_contexts(self.manifest, self.path)
        self.decoder = from_manifest(self.path, per_token=per_token, threads=threads)
        self.spec = self.decoder.spec
        self.game = DreamGame(self.spec, max_frames)
        self.render_mode = render_mode
        self.observation_space = observation_space()
        self.action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        context = pick_context(self.np_random, self.contexts, options)
        self.decoder.reset(context, seed=int(self.np_random.integers(2**32)))
        self.game.start(context)
        return self.game.observation(), self.game.info()

    def step(self, action):
        if self.game.state is None:
            raise RuntimeError("call reset() before step()")
        if self.decoder.done:
            raise RuntimeError("the dreamed game ended: call reset() before step()")
        action = check_action(action)
        reward_, terminated, truncated = self.game.advance(action, self.decoder.step(action))
        return self.game.observation(), reward_, terminated, truncated, self.game.info()

    def render(self):
        if self.render_mode != "rgb_array" or self.game.state is None:
            return None
        return render_frame(self.game.state)


def pick_context(rng: np.random.Generator, contexts: list[np.ndarray], options: dict | None) -> np.ndarray:
    """The start context of a reset: `options["context"]`, else one of `contexts` drawn with `rng` (the draw is made
    either way, so the decoder's seed does not depend on where the context came from)."""
    index = int(rng.integers(len(contexts)))
    given = (options or {}).get("context")
    return contexts[index] if given is None else np.asarray(given, np.int64).reshape(-1)

