"""The real Flappy Bird (`flappy-bird-gymnasium`), read out as one small visible state per frame, plus the
policies that play it to make training episodes.

`FlappyGame` wraps `gymnasium.make("FlappyBird-v0", use_lidar=False)` (the env's normalized 12-number features
observation, which the policies and PPO see) and reads each frame's visible state from the env's own objects,
never from pixels:

* `bird_y`: top edge of the bird, px from the screen top (`_player_y`). The bird's x never changes.
* two pipe slots, each `visible`, `pipe_x` (left edge of the pipe pair, px) and `gap_y` (centre of the gap, px);
  a hidden slot has NaN `pipe_x`/`gap_y`.
* `respawn`: the game recycled a pipe this frame: one that left the screen on the left was moved back behind the
  right edge with a new random gap (the env's `_get_random_pipe`; seen as a pipe whose x grew).
* `done`: the env ended the episode: the bird hit a pipe or the ground. There is no ceiling death: the bird may
  fly up to 92 px above the screen (flapping is allowed while y > -48) and lives on until a pipe or the ground
  kills it, since upper pipes reach far above the screen.

Which pipes the two slots describe. The env keeps three pipe pairs in play. At 4 px/frame, spaced 144 or 164 px,
they cycle through a 452 px loop: a pipe is recycled when its x drops below -52 (fully off the left edge) and put
back at x = 397.6 (110 px behind the right edge). Slot 0 is the leftmost of the three, slot 1 the next one; the
rightmost is left out. Why this choice:

* ordering by x changes only when the game recycles a pipe (all pipes move together), so slot identity is stable
  frame to frame and changes exactly on `respawn` frames: on all other frames a slot's x moves by exactly -4 px;
  on a respawn frame slot 0 takes slot 1's pipe and slot 1 takes the next pipe, whose gap no slot has shown yet;
* slot 0 keeps a passed pipe until it has left the screen, so nothing vanishes next to the bird; the pipe the bird
  is flying through or must pass next is always in a slot (a pipe that can touch the bird has x in (5, 91));
* the price: about a quarter of frames show a third pipe entering on the right (x >= 236, 150+ px ahead of the
  bird) that no slot holds; it pops into slot 1 at the next respawn, 8 to 14 frames after it came into view.
  Choosing instead "the two pipes not yet passed" would drop a passed pipe right next to the bird (for ~15 frames
  of every pipe) and shift slots on frames that are not game events.

Visibility follows the env's own features observation: a pipe is visible while -52 <= x <= 288 (the env reports
pipes with x > 288 as absent). In practice slot 0 is always visible and slot 1 is hidden only in the first 36
frames of an episode (the second pipe starts at x = 432); after that the spacing keeps two pipes on screen.

Library module: `from worldmodels.flappy.game import FlappyGame, HeuristicPolicy, record_episode`.
Tests: `python -m pytest tests/flappy/test_game.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import gymnasium
import numpy as np

# Importing the package also registers FlappyBird-v0 with gymnasium.
from flappy_bird_gymnasium.envs.constants import PIPE_HEIGHT, PIPE_VEL_X, PIPE_WIDTH, PLAYER_HEIGHT, PLAYER_WIDTH

NOOP, FLAP = 0, 1
PIPE_SLOTS = 2

# The env's defaults, which FlappyGame always uses; the env derives the rest from them the same way.
SCREEN_WIDTH, SCREEN_HEIGHT = 288, 512
PIPE_GAP = 100
GROUND_Y = SCREEN_HEIGHT * 0.79
BIRD_X = int(SCREEN_WIDTH * 0.2)
# The env draws a gap's top edge from 20, 30, ..., 90 plus int(0.2 * ground y) = 80.
GAP_TOP_MIN, GAP_TOP_MAX = 20 + int(GROUND_Y * 0.2), 90 + int(GROUND_Y * 0.2)

# What a renderer needs to draw a frame from the tokens alone (all px; origin top-left, y down).
GEOMETRY = {
    "screen_width": SCREEN_WIDTH,
    "screen_height": SCREEN_HEIGHT,
    "ground_y": GROUND_Y,
    "pipe_width": PIPE_WIDTH,
    "pipe_gap": PIPE_GAP,
    "bird_x": BIRD_X,
    "bird_width": PLAYER_WIDTH,
    "bird_height": PLAYER_HEIGHT,
    "pipe_speed": -PIPE_VEL_X,
    "fps": 30,
}

# Pixel range of each ordinal field, the single place the token spec takes them from.
PIXEL_RANGES = {
    # Highest reachable: y = -92 (flap at y = -47, then rise 9 + 8 + ... + 1 px); lowest: resting on the ground at
    # GROUND_Y - PLAYER_HEIGHT = 380.48. Rounded out to a 480 px span.
    "bird_y": (-96.0, 384.0),
    # Visible pipes only, as defined above.
    "pipe_x": (float(-PIPE_WIDTH), float(SCREEN_WIDTH)),
    # The eight gap centres the env can draw, 150 to 220.
    "gap_y": (GAP_TOP_MIN + PIPE_GAP / 2, GAP_TOP_MAX + PIPE_GAP / 2),
}


@dataclass(frozen=True)
class FlappyState:
    """The visible state of one frame (see the module docstring); per-slot fields are (slot 0, slot 1)."""

    bird_y: float
    visible: tuple[bool, bool]
    pipe_x: tuple[float, float]
    gap_y: tuple[float, float]
    respawn: bool
    done: bool


def stack_states(states: list[FlappyState]) -> dict[str, np.ndarray]:
    """Episode states as arrays: bird_y, respawn, done of shape (T,); visible, pipe_x, gap_y of shape (T, 2)."""
    return {
        "bird_y": np.array([s.bird_y for s in states], np.float64),
        "visible": np.array([s.visible for s in states], bool).reshape(-1, PIPE_SLOTS),
        "pipe_x": np.array([s.pipe_x for s in states], np.float64).reshape(-1, PIPE_SLOTS),
        "gap_y": np.array([s.gap_y for s in states], np.float64).reshape(-1, PIPE_SLOTS),
        "respawn": np.array([s.respawn for s in states], bool),
        "done": np.array([s.done for s in states], bool),
    }


class FlappyGame:
    """One flappy-bird-gymnasium game; deterministic given the reset seed and the actions."""

    def __init__(self) -> None:
        self.env = gymnasium.make("FlappyBird-v0", use_lidar=False)
        self._game = self.env.unwrapped
        self.obs: np.ndarray | None = None  # the latest features observation (what policies and PPO see)
        self.score = 0
        self.done = True

    def reset(self, seed: int) -> FlappyState:
        self.obs, info = self.env.reset(seed=int(seed))
        self.score, self.done = info["score"], False
        return self._read_state(respawn=False)

    def step(self, action: int) -> FlappyState:
        if self.done:
            raise RuntimeError("FlappyGame.step after the episode ended: call reset(seed) first")
        if action not in (NOOP, FLAP):
            raise ValueError(f"action must be 0 (noop) or 1 (flap), got {action!r}")
        xs_before = [pipe["x"] for pipe in self._game._upper_pipes]
        self.obs, _, terminated, truncated, info = self.env.step(int(action))
        self.score, self.done = info["score"], bool(terminated or truncated)
        # The env mutates its three pipe dicts in place and only ever moves a pipe right when it recycles it.
        respawn = any(pipe["x"] > x for pipe, x in zip(self._game._upper_pipes, xs_before, strict=True))
        return self._read_state(respawn=respawn)

    def _read_state(self, respawn: bool) -> FlappyState:
        pairs = zip(self._game._upper_pipes, self._game._lower_pipes, strict=True)
        pairs = sorted(pairs, key=lambda pair: pair[0]["x"])
        visible, pipe_x, gap_y = [], [], []
        for upper, lower in pairs[:PIPE_SLOTS]:
            x = float(upper["x"])
            shown = -PIPE_WIDTH <= x <= SCREEN_WIDTH
            visible.append(shown)
            pipe_x.append(x if shown else math.nan)
            # The upper pipe's y is its sprite's top, PIPE_HEIGHT above the gap; the lower pipe's y is the gap bottom.
            gap_y.append((upper["y"] + PIPE_HEIGHT + lower["y"]) / 2 if shown else math.nan)
        return FlappyState(
            bird_y=float(self._game._player_y),
            visible=tuple(visible),
            pipe_x=tuple(pipe_x),
            gap_y=tuple(gap_y),
            respawn=respawn,
            done=self.done,
        )

    def close(self) -> None:
        self.env.close()


class Policy(Protocol):
    """Picks an action (0 noop, 1 flap) from the features observation; `reset` starts an episode with its rng."""

    def reset(self, rng: np.random.Generator) -> None: ...

    def __call__(self, obs: np.ndarray) -> int: ...


class CallablePolicy:
    """Wraps a plain `obs -> action` function (e.g. a trained PPO model's predict) as a Policy."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def __call__(self, obs: np.ndarray) -> int:
        return int(self.fn(obs))


class RandomPolicy:
    """Flaps with probability `flap_prob` each frame."""

    def __init__(self, flap_prob: float = 0.1) -> None:
        self.flap_prob = flap_prob
        self.rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, obs: np.ndarray) -> int:
        return int(self.rng.random() < self.flap_prob)


class DoNothingPolicy:
    """Never flaps: the bird falls to the ground within about 30 frames."""

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def __call__(self, obs: np.ndarray) -> int:
        return NOOP


class HeuristicPolicy:
    """A scripted stand-in for PPO (not PPO): flap when the bird's centre is more than `margin` px below the centre
    of the next gap it has not yet passed. Scores roughly 15-50 pipes; it reads only the features observation."""

    def __init__(self, margin: float = 10.0) -> None:
        self.margin = margin

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def __call__(self, obs: np.ndarray) -> int:
        # The env normalizes x by the screen width and y by the screen height; pipes come sorted by x, and a pipe
        # behind the right edge reads (288, 0, 512), i.e. a gap centred mid-screen, which is a fine target too.
        bird_centre = obs[9] * SCREEN_HEIGHT + PLAYER_HEIGHT / 2
        for k in range(3):
            if obs[3 * k] * SCREEN_WIDTH + PIPE_WIDTH > BIRD_X:
                gap_centre = (obs[3 * k + 1] + obs[3 * k + 2]) / 2 * SCREEN_HEIGHT
                return int(bird_centre > gap_centre + self.margin)
        return NOOP


class NoisyPolicy:
    """Plays like `base` but takes a uniformly random action with probability `epsilon` each frame."""

    def __init__(self, base: Policy, epsilon: float) -> None:
        self.base, self.epsilon = base, epsilon
        self.rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.base.reset(rng)

    def __call__(self, obs: np.ndarray) -> int:
        # The base always sees the frame, so a stateful base stays in step with the episode.
        action = self.base(obs)
        return int(self.rng.integers(2)) if self.rng.random() < self.epsilon else action


class GiveUpPolicy:
    """Plays like `base` for a number of frames drawn uniformly from `after_frames` = (low, high) each episode,
    then never flaps again."""

    def __init__(self, base: Policy, after_frames: tuple[int, int]) -> None:
        self.base, self.after_frames = base, after_frames
        self.frames_left = 0

    def reset(self, rng: np.random.Generator) -> None:
        low, high = self.after_frames
        self.frames_left = int(rng.integers(low, high + 1))
        self.base.reset(rng)

    def __call__(self, obs: np.ndarray) -> int:
        self.frames_left -= 1
        return self.base(obs) if self.frames_left >= 0 else NOOP


def record_episode(
    game: FlappyGame, policy: Policy, seed: int, max_frames: int
) -> tuple[list[FlappyState], np.ndarray, int]:
    """Play one episode: (states, actions, score), at most `max_frames` states.

    `actions[t]` is the action taken after observing `states[t]` (it leads to `states[t + 1]`). The last frame has
    no successor, so its action is NOOP. Only a death sets `done` (on the last state); a recording cut at
    `max_frames` has no done. The policy's rng is seeded from `seed` on a stream apart from the game's own.
    """
    policy.reset(np.random.default_rng([seed, 1]))
    states = [game.reset(seed)]
    actions = []
    while not game.done and len(states) < max_frames:
        action = int(policy(game.obs))
        actions.append(action)
        states.append(game.step(action))
    actions.append(NOOP)
    return states, np.array(actions, np.int64), game.score
