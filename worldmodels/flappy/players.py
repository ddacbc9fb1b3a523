"""Scripted Flappy players that read a decoded token state (`FlappyState`), so that one player can play the real game
and a dream alike: the evaluation's closed loop (`worldmodels.flappy.closed_loop`). None of them is a policy the
training data came from (PPO, its noisy and give-up variants, random, do-nothing).

A player aims at the next gap it has not passed and flaps when the bird's centre is more than `margin` px below the
gap's centre. Its skill is how late and how sloppily it does so:

* `delay`: it acts on the state it saw `delay` frames ago (a reaction time);
* `lapse`: each frame it may stop paying attention with this probability, for 2-6 frames of no flaps;
* `aim`: the std (px) of a per-pipe offset of the point it aims at (a new one for each pipe).

`SKILLS` names three; on the real game they score about 33, 15 and 5 pipes in games of at most 2,000 frames
(`tests/flappy/test_players.py` checks that the order holds).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from flappy_bird_gymnasium.envs.constants import PIPE_WIDTH, PLAYER_HEIGHT

from worldmodels.flappy.game import BIRD_X, FLAP, NOOP, FlappyState


@dataclass(frozen=True)
class Skill:
    delay: int = 0
    lapse: float = 0.0
    aim: float = 0.0
    margin: float = 20.0


SKILLS = {
    "good": Skill(delay=0, lapse=0.0, aim=4.0),
    "medium": Skill(delay=0, lapse=0.004, aim=6.0),
    "sloppy": Skill(delay=1, lapse=0.002, aim=4.0),
}


class ScriptedPlayer:
    """`reset(rng)` starts a game; `__call__(state) -> action` is called once per frame with the newest state."""

    def __init__(self, skill: Skill) -> None:
        if skill.delay < 0 or not 0 <= skill.lapse < 1 or skill.aim < 0:
            raise ValueError(f"skill: delay >= 0, lapse in [0, 1), aim >= 0 (got {skill})")
        self.skill = skill
        self.reset(np.random.default_rng(0))

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.seen: deque[FlappyState] = deque(maxlen=self.skill.delay + 1)
        self.lapse_left = 0
        self.target_x: float | None = None  # x of the pipe aimed at
        self.offset = 0.0

    def __call__(self, state: FlappyState) -> int:
        self.seen.append(state)
        # The draws happen every frame, in the same order, so a game's stream does not depend on what it saw.
        lapse_draw, length_draw, aim_draw = self.rng.random(), self.rng.integers(2, 7), self.rng.normal()
        if self.lapse_left > 0:
            self.lapse_left -= 1
            return NOOP
        if lapse_draw < self.skill.lapse:
            self.lapse_left = int(length_draw) - 1
            return NOOP
        view = self.seen[0]  # `delay` frames old once the queue is full
        ahead = [(x, g) for x, g, v in zip(view.pipe_x, view.gap_y, view.visible, strict=True)
                 if v and x + PIPE_WIDTH > BIRD_X]
        if not ahead:
            return NOOP
        x, gap = min(ahead)
        if self.target_x is None or x > self.target_x:  # the aim point moved on to the next pipe: a new offset
            self.offset = aim_draw * self.skill.aim
        self.target_x = x
        bird_centre = view.bird_y + PLAYER_HEIGHT / 2
        return FLAP if bird_centre > gap + self.offset + self.skill.margin else NOOP
