"""Players for the Breakout evaluation, each acting on N games of a `BreakoutSim` at once (`act(sim) -> (N,)`).

None of them alone is the training data's policy (`TrackerPolicy` with the recipe's knobs):

* `tracker`: the scripted tracker with its default knobs (10% random actions, no deliberate misses);
* `holder`: plays like a person on a keyboard: holds a key for 4-15 frames, then picks the next one, towards the
  ball 60% of the time, otherwise any key (noop included);
* `sloppy`: a tracker that acts on where the ball was 4 frames ago, ignores offsets under 3 px and has lapses
  (each frame a 3% chance of 5-20 frames with hands off the keys);
* `random`: a uniformly random key every frame.

    python -c "from worldmodels.breakout.players import *; print(PLAYERS)"
"""

from __future__ import annotations

from collections import deque

import numpy as np

from worldmodels.breakout.config import PolicyConfig
from worldmodels.breakout.sim import (
    BALL_SIZE,
    LEFT,
    NOOP,
    NUM_ACTIONS,
    PADDLE_WIDTH,
    RIGHT,
    BreakoutSim,
    TrackerPolicy,
)


def _toward(ball_centre_x: np.ndarray, sim: BreakoutSim, dead_zone: float) -> np.ndarray:
    offset = ball_centre_x - (sim.paddle_x + PADDLE_WIDTH / 2)
    return np.where(offset > dead_zone, RIGHT, np.where(offset < -dead_zone, LEFT, NOOP))


class KeyHolder:
    def __init__(self, rng: np.random.Generator, hold: tuple[int, int] = (4, 15), toward: float = 0.6):
        self.rng, self.hold, self.toward = rng, hold, toward
        self.key: np.ndarray | None = None
        self.left: np.ndarray | None = None

    def act(self, sim: BreakoutSim) -> np.ndarray:
        n = sim.num_games
        if self.key is None or len(self.key) != n:
            self.key, self.left = np.zeros(n, np.int64), np.zeros(n, np.int64)
        switch = self.left <= 0
        aimed = _toward(sim.ball_x + BALL_SIZE / 2, sim, 1.0)
        choice = np.where(self.rng.random(n) < self.toward, aimed, self.rng.integers(0, NUM_ACTIONS, n))
        self.key = np.where(switch, choice, self.key)
        self.left = np.where(switch, self.rng.integers(self.hold[0], self.hold[1] + 1, n), self.left) - 1
        return self.key.copy()


class SloppyTracker:
    def __init__(self, rng: np.random.Generator, delay: int = 4, dead_zone: float = 3.0, lapse: float = 0.03,
                 lapse_frames: tuple[int, int] = (5, 20)):
        self.rng, self.dead_zone, self.lapse, self.lapse_frames = rng, dead_zone, lapse, lapse_frames
        self.seen: deque[np.ndarray] = deque(maxlen=delay + 1)
        self.away: np.ndarray | None = None

    def act(self, sim: BreakoutSim) -> np.ndarray:
        n = sim.num_games
        if self.away is None or len(self.away) != n:
            self.away, self.seen = np.zeros(n, np.int64), deque(maxlen=self.seen.maxlen)
        self.seen.append(sim.ball_x + BALL_SIZE / 2)
        starts = (self.away <= 0) & (self.rng.random(n) < self.lapse)
        self.away = np.where(starts, self.rng.integers(self.lapse_frames[0], self.lapse_frames[1] + 1, n),
                             self.away) - 1
        actions = _toward(self.seen[0], sim, self.dead_zone)  # the oldest position it holds: `delay` frames ago
        return np.where(self.away >= 0, NOOP, actions).astype(np.int64)


class RandomPlayer:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def act(self, sim: BreakoutSim) -> np.ndarray:
        return self.rng.integers(0, NUM_ACTIONS, sim.num_games).astype(np.int64)


PLAYERS = ("tracker", "holder", "sloppy", "random")


def make_player(name: str, seed: int):
    """A fresh player by name, its randomness from `seed`."""
    rng = np.random.default_rng(seed)
    if name == "tracker":
        return TrackerPolicy(PolicyConfig(), rng)
    if name == "holder":
        return KeyHolder(rng)
    if name == "sloppy":
        return SloppyTracker(rng)
    if name == "random":
        return RandomPlayer(rng)
    raise ValueError(f"unknown player {name!r}: choose from {', '.join(PLAYERS)}")
