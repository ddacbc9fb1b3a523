"""The 4-frame physics oracle of experiments/breakout_levers/ceiling.py reads the ball's state from true frames."""

from __future__ import annotations

import numpy as np

from tests.conftest import load_experiment_script
from worldmodels.breakout.sim import BALL_COLOR, BreakoutSim


def load_ceiling():
    return load_experiment_script("breakout_levers", "ceiling.py")


def test_oracle_estimates_the_true_ball_state_from_four_true_frames():
    ceiling = load_ceiling()
    rng = np.random.default_rng(1)
    x_err, vx_err = [], []
    for g in range(12):
        sim = BreakoutSim([g + 100])
        for _ in range(rng.integers(5, 80)):
            sim.step(rng.integers(0, 3, 1))
        frames, actions, paddle = [sim.render()[0]], [], [sim.paddle_x.copy()]
        for _ in range(3):
            action = rng.integers(0, 3, 1)
            sim.step(action)
            frames.append(sim.render()[0])
            actions.append(action[0])
            paddle.append(sim.paddle_x.copy())
        state = ceiling.latest_estimate(np.stack(frames), np.array(actions), np.concatenate(paddle))
        assert state is not None
        assert state[1] == sim.ball_y[0] and state[3] == sim.ball_vy[0]  # y sits on a 0.25 px lattice: exact
        x_err.append(abs(state[0] - sim.ball_x[0]))
        vx_err.append(abs(state[2] - sim.ball_vx[0]))
    # x and vx are only known to within the pixels' rounding: under half a pixel and well under the vx range.
    assert max(x_err) < 1.0 and np.mean(x_err) < 0.5
    assert np.mean(vx_err) < 0.25


def test_oracle_without_a_ball_in_its_context_draws_none():
    ceiling = load_ceiling()
    sim = BreakoutSim([3])
    frames = np.stack([sim.render()[0]] * 4)
    frames[(frames == BALL_COLOR).all(-1)] = 0  # paint the ball out
    pred = ceiling.oracle_rollout(frames[:, None], np.zeros((8, 1), np.int64), np.full((4, 1), sim.paddle_x[0]), 5)
    assert pred.shape == (5, 1, 64, 64, 3)
    assert not (pred == BALL_COLOR).all(-1).any()
