"""experiments/flappy_closed_loop/phantom.py measures a death's nearest obstacle and clearance on hand-made states."""

from __future__ import annotations

import numpy as np
import pytest
from flappy_bird_gymnasium.envs.constants import PLAYER_HEIGHT as BIRD_H

from tests.conftest import load_experiment_script
from worldmodels.flappy.game import BIRD_X, GROUND_Y, NOOP, PIPE_GAP, FlappyState
from worldmodels.flappy.tokens import SPEC


def _phantom():
    return load_experiment_script("flappy_closed_loop", "phantom.py")


def _state(bird_y: float, pipe_x: float, gap_y: float = 200.0) -> FlappyState:
    return FlappyState(bird_y=bird_y, visible=(True, False), pipe_x=(pipe_x, 0.0), gap_y=(gap_y, 0.0),
                       respawn=False, done=False)


def test_nearest_obstacle_over_a_lower_pipe_and_without_one():
    phantom = _phantom()
    lower_top = 200.0 + PIPE_GAP / 2
    y = lower_top - BIRD_H - 2.0
    name, clearance, overlap = phantom.nearest_obstacle(_state(y, BIRD_X), y)
    assert (name, overlap) == ("lower pipe", True) and clearance == pytest.approx(2.0)
    name, clearance, overlap = phantom.nearest_obstacle(_state(160.0, BIRD_X), 160.0)  # 10 px below the upper pipe
    assert (name, overlap) == ("upper pipe", True) and clearance == pytest.approx(10.0)
    name, clearance, overlap = phantom.nearest_obstacle(_state(300.0, BIRD_X + 200), 300.0)  # the pipe is far ahead
    assert (name, overlap) == ("ground", False) and clearance == pytest.approx(GROUND_Y - 300.0 - BIRD_H)


def test_describe_tells_a_death_one_frame_early():
    phantom = _phantom()
    lower_top = 200.0 + PIPE_GAP / 2
    frames = np.array([SPEC.encode_frame(_state(y, BIRD_X), NOOP)[:SPEC.state_tokens_per_frame]
                       for y in (lower_top - BIRD_H - 12.0, lower_top - BIRD_H - 3.0)])
    falling = phantom.describe(frames)
    assert falling["obstacle"] == "lower pipe" and falling["falling"] and falling["hit_next_frame"]
    assert 0 < falling["clearance"] < 5
    rising = phantom.describe(frames[::-1])
    assert not rising["falling"] and not rising["hit_next_frame"]
