"""The Flappy Bird wrapper reads the real game correctly, deterministically, and its policies behave as described.

    python -m pytest tests/flappy/test_game.py
"""

from __future__ import annotations

import numpy as np
import pytest

from worldmodels.flappy.game import (
    FLAP,
    GEOMETRY,
    NOOP,
    PIXEL_RANGES,
    CallablePolicy,
    DoNothingPolicy,
    GiveUpPolicy,
    HeuristicPolicy,
    NoisyPolicy,
    RandomPolicy,
    record_episode,
    stack_states,
)

W, H = GEOMETRY["screen_width"], GEOMETRY["screen_height"]
SPEED = GEOMETRY["pipe_speed"]


@pytest.fixture(scope="module")
def heuristic_run(game):
    """A 400-frame heuristic episode (it survives far longer), as arrays, with its actions."""
    states, actions, _ = record_episode(game, HeuristicPolicy(), seed=3, max_frames=400)
    assert len(states) == 400, "the heuristic should survive 400 frames on seed 3"
    return stack_states(states), actions


def test_geometry_matches_the_env(game):
    game.reset(0)
    env = game.env.unwrapped
    assert (env._screen_width, env._screen_height) == (W, H)
    assert env._ground["y"] == GEOMETRY["ground_y"]
    assert env._player_x == GEOMETRY["bird_x"]
    assert env._pipe_gap == GEOMETRY["pipe_gap"]


def test_readout_agrees_with_the_env_observation_and_internals(game):
    state = game.reset(5)
    policy = HeuristicPolicy()
    checked_hidden = checked_visible = 0
    for _ in range(150):
        obs, env = game.obs, game.env.unwrapped
        assert state.bird_y == env._player_y == pytest.approx(obs[9] * H)
        leftmost = sorted(pipe["x"] for pipe in env._upper_pipes)[:2]
        for k in range(2):
            # The features observation lists pipes by x; one behind the right edge reads (288, 0, 512).
            x, top, bottom = obs[3 * k] * W, obs[3 * k + 1] * H, obs[3 * k + 2] * H
            if state.visible[k]:
                assert state.pipe_x[k] == leftmost[k] == pytest.approx(x)
                assert state.gap_y[k] == pytest.approx((top + bottom) / 2)
                assert bottom - top == pytest.approx(GEOMETRY["pipe_gap"])
                checked_visible += 1
            else:
                assert (x, top, bottom) == (W, 0, H) and leftmost[k] > W
                assert np.isnan(state.pipe_x[k]) and np.isnan(state.gap_y[k])
                checked_hidden += 1
        state = game.step(policy(obs))
    assert checked_hidden and checked_visible


def test_same_seed_and_actions_give_the_same_states(game):
    actions = np.random.default_rng(0).random(120) < 0.12
    runs = []
    for _ in range(2):
        states = [game.reset(11)]
        for action in actions:
            if states[-1].done:
                break
            states.append(game.step(int(action)))
        runs.append(stack_states(states))
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)


def test_the_seed_picks_the_gaps(game):
    gaps = {game.reset(seed).gap_y[0] for seed in range(8)}
    assert len(gaps) > 1


def test_flapping_raises_the_bird(game):
    def bird_after(action, frames=6):
        game.reset(2)
        for _ in range(frames):
            state = game.step(action)
        return state.bird_y

    assert bird_after(FLAP) < bird_after(NOOP) - 20  # y grows downward


def test_do_nothing_dies_on_the_ground_and_done_is_on_the_last_frame_only(game):
    states, actions, score = record_episode(game, DoNothingPolicy(), seed=0, max_frames=200)
    done = stack_states(states)["done"]
    assert len(states) < 60 and done[-1] and not done[:-1].any()
    assert states[-1].bird_y >= GEOMETRY["ground_y"] - GEOMETRY["bird_height"] - 1
    assert score == 0 and not actions.any() and len(actions) == len(states)
    with pytest.raises(RuntimeError, match="reset"):
        game.step(NOOP)


def test_respawns_are_flagged_and_slots_only_jump_at_respawns(heuristic_run):
    arrays, _ = heuristic_run
    x, gap, visible, respawn = arrays["pipe_x"], arrays["gap_y"], arrays["visible"], arrays["respawn"]
    assert respawn.sum() >= 5 and not respawn[0]
    steady = ~respawn[1:, None] & visible[1:] & visible[:-1]
    np.testing.assert_array_equal(np.diff(x, axis=0)[steady], -SPEED)
    np.testing.assert_array_equal(np.diff(gap, axis=0)[steady], 0)
    # A respawn is the leftmost pipe leaving the screen: slot 0 takes over slot 1's pipe, which moved on by 4 px.
    after = np.flatnonzero(respawn)
    np.testing.assert_array_equal(x[after, 0], x[after - 1, 1] - SPEED)
    np.testing.assert_array_equal(gap[after, 0], gap[after - 1, 1])
    assert (x[after - 1, 0] - SPEED < -GEOMETRY["pipe_width"]).all()
    no_respawn = np.flatnonzero(~respawn[1:]) + 1
    assert (x[no_respawn - 1, 0] - SPEED >= -GEOMETRY["pipe_width"]).all()


def test_hidden_marker_while_the_second_pipe_is_off_screen(heuristic_run):
    # The second pipe starts at x = 432 and enters (x <= 288) after 36 frames; later the spacing keeps both
    # slots on screen, and slot 0 always holds a pipe.
    arrays, _ = heuristic_run
    visible = arrays["visible"]
    assert visible[:, 0].all()
    np.testing.assert_array_equal(np.flatnonzero(~visible[:, 1]), np.arange(36))
    assert arrays["pipe_x"][36, 1] == W
    assert np.isnan(arrays["pipe_x"][:36, 1]).all() and np.isnan(arrays["gap_y"][:36, 1]).all()


def test_values_stay_inside_the_token_pixel_ranges(game, heuristic_run):
    high_flyers = [stack_states(record_episode(game, RandomPolicy(0.5), seed, 300)[0]) for seed in range(6)]
    runs = [heuristic_run[0], *high_flyers]
    bird = np.concatenate([r["bird_y"] for r in runs])
    assert bird.min() < 0, "a flappy random policy should leave the top of the screen"
    assert PIXEL_RANGES["bird_y"][0] <= bird.min() and bird.max() <= PIXEL_RANGES["bird_y"][1]
    for name in ("pipe_x", "gap_y"):
        values = np.concatenate([r[name][r["visible"]] for r in runs])
        assert PIXEL_RANGES[name][0] <= values.min() and values.max() <= PIXEL_RANGES[name][1], name


def test_record_episode_actions_and_truncation(game, heuristic_run):
    arrays, actions = heuristic_run
    assert len(actions) == 400 and actions.dtype == np.int64 and actions[-1] == NOOP
    assert 0 < actions.mean() < 0.5 and not arrays["done"].any()


def test_policies():
    rng = np.random.default_rng(0)
    obs = np.zeros(12)
    give_up = GiveUpPolicy(RandomPolicy(flap_prob=1.0), after_frames=(5, 5))
    give_up.reset(rng)
    assert [give_up(obs) for _ in range(8)] == [FLAP] * 5 + [NOOP] * 3
    noisy = NoisyPolicy(DoNothingPolicy(), epsilon=1.0)
    noisy.reset(rng)
    share = np.mean([noisy(obs) for _ in range(400)])
    assert 0.35 < share < 0.65
    wrapped = CallablePolicy(lambda o: np.int64(1))
    wrapped.reset(rng)
    assert wrapped(obs) == FLAP and type(wrapped(obs)) is int
