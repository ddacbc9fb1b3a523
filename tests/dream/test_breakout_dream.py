"""BreakoutDream-v0 and its vector env: the checkers, the read-out reward and end rules on true frames, and N batched
dreams against N single ones."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest

import worldmodels
from worldmodels.breakout.readout import read_bricks
from worldmodels.breakout.sim import (
    BALL_COLOR,
    BRICK_HEIGHT,
    BRICK_PITCH_X,
    BRICK_PITCH_Y,
    BRICK_TOP,
    BRICK_WIDTH,
    BreakoutSim,
)
from worldmodels.dream import breakout as dream
from worldmodels.dream.breakout import BreakoutDreamEnv, BreakoutDreamVecEnv

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "breakout" / "breakout.json"
TINY = ROOT / "models" / "breakout_tiny" / "breakout.json"


def test_both_env_checkers_pass():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = gymnasium.make(worldmodels.BREAKOUT_DREAM_ID, model=str(TINY), max_frames=30)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check(BreakoutDreamEnv(model=TINY, max_frames=30), warn=True)
    env = BreakoutDreamEnv(model=TINY, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert np.array_equal(env.render(), obs) and obs.shape == (64, 64, 3)


def true_frames(steps: int = 30) -> np.ndarray:
    sim = BreakoutSim([7])
    frames = [sim.render()[0]]
    for _ in range(steps):
        sim.step(np.array([0]))
        frames.append(sim.render()[0])
    return np.stack(frames)


def erase_brick(frame: np.ndarray, row: int, col: int) -> np.ndarray:
    out = frame.copy()
    top, left = BRICK_TOP + row * BRICK_PITCH_Y, col * BRICK_PITCH_X
    out[top:top + BRICK_HEIGHT, left:left + BRICK_WIDTH] = 0
    return out


def erase_ball(frame: np.ndarray) -> np.ndarray:
    out = frame.copy()
    out[(out == BALL_COLOR).all(-1)] = 0
    return out


def test_reward_and_end_rules_on_true_frames():
    frames = true_frames()
    dreams = dream.BreakoutDreams(TINY, 1, max_frames=8)
    dreams.start(0, frames[:4], seed=0)
    # a true frame: nothing broken, a ball
    assert [x.tolist() for x in dreams.judge(frames[4:5])] == [[0.0], [False], [False]]
    # two bricks vanish: reward 2; one coming back takes nothing back; each vanishing again pays again
    gone = erase_brick(erase_brick(frames[5], 0, 0), 3, 5)
    assert dreams.judge(gone[None])[0].tolist() == [2.0]
    assert dreams.judge(erase_brick(frames[6], 0, 0)[None])[0].tolist() == [0.0]  # (3, 5) is back
    assert dreams.judge(erase_brick(frames[7], 3, 5)[None])[0].tolist() == [1.0]  # (0, 0) back, (3, 5) gone
    assert dreams.judge(gone[None])[0].tolist() == [1.0]
    assert dreams.info(0)["bricks_broken"] == 4
    # no ball for LOST_AFTER frames in a row ends the game; a ball in between restarts the count
    dreams.start(0, frames[:4], seed=0)
    for k in range(dream.LOST_AFTER - 1):
        assert not dreams.judge(erase_ball(frames[8 + k])[None])[1][0]
    dreams.judge(frames[12][None])
    assert dreams.info(0)["ball_missing_for"] == 0
    ended = [bool(dreams.judge(erase_ball(frames[13 + k])[None])[1][0]) for k in range(dream.LOST_AFTER)]
    assert ended == [False] * (dream.LOST_AFTER - 1) + [True]
    # max_frames truncates a game that has not ended
    dreams.start(0, frames[:4], seed=0)
    truncated = [bool(dreams.judge(frames[4 + k][None])[2][0]) for k in range(8)]
    assert truncated == [False] * 7 + [True]
    assert read_bricks(frames[:1]).sum() == 48


def test_the_context_is_a_true_game_after_a_random_warm_up():
    rng = np.random.default_rng(0)
    contexts = [dream.true_context(rng) for _ in range(6)]
    assert all(c.shape == (4, 64, 64, 3) and c.dtype == np.uint8 for c in contexts)
    assert len({c.tobytes() for c in contexts}) == 6


def test_bad_input_is_refused():
    env = BreakoutDreamEnv(model=TINY)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(3)
    with pytest.raises(worldmodels.core.errors.UserError, match="flappy"):
        BreakoutDreamEnv(model=ROOT / "models" / "flappy" / "flappy.json")


@pytest.mark.parametrize("model", [TINY, SHIPPED], ids=["tiny", "shipped"])
def test_the_vector_env_makes_the_single_envs_dreams(model):
    from tests.dream.test_flappy_dream import play_singles, play_vector, same

    n, steps = 3, 60
    actions = np.random.default_rng(4).integers(0, 3, (steps, n))
    singles = play_singles([BreakoutDreamEnv(model=model, max_frames=25) for _ in range(n)], 11, actions)
    vector = play_vector(BreakoutDreamVecEnv(n, model=model, max_frames=25), 11, actions)
    assert sum(isinstance(x, tuple) and (x[2] or x[3]) for row in singles for x in row) >= 3
    assert all(same(a, b) for ra, rb in zip(singles, vector, strict=True) for a, b in zip(ra, rb, strict=True))
