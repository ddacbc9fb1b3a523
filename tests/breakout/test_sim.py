"""Tests for the vectorized Breakout simulator, its policies, read-outs, golden traces and gym envs.

Run: python -m pytest tests/breakout/test_sim.py
"""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from worldmodels.breakout import golden
from worldmodels.breakout import sim as bo
from worldmodels.breakout.config import PolicyConfig
from worldmodels.breakout.readout import read_balls, read_bricks, read_paddle

GOLDEN_PATH = Path(__file__).resolve().parent.parent / "golden" / "breakout_traces.json"


def run(sim, actions, reset_masks=None):
    """Step `sim` through actions [T, N]; returns the frames [T + 1, N, ...] and final state."""
    frames = [sim.render()]
    for t, a in enumerate(actions):
        if reset_masks is not None:
            sim.reset(reset_masks[t])
        sim.step(a)
        frames.append(sim.render())
    return np.stack(frames), sim.get_state()


def messy_actions(num_steps, num_games, seed=0):
    """Random actions plus occasional mid-game resets: lots of misses, serves and resets."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, bo.NUM_ACTIONS, (num_steps, num_games)), rng.random((num_steps, num_games)) < 0.01


def mulberry32_reference(state):
    """Scalar transcription of the JavaScript mulberry32, with & 0xFFFFFFFF for uint32."""
    a = (state + 0x6D2B79F5) & 0xFFFFFFFF
    t = ((a ^ (a >> 15)) * (a | 1)) & 0xFFFFFFFF
    t = ((t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF) ^ t
    return a, (t ^ (t >> 14)) / 2**32


def test_same_seeds_and_actions_are_deterministic():
    actions, resets = messy_actions(200, 5)
    frames_a, state_a = run(bo.BreakoutSim([3, 1, 4, 1, 5]), actions, resets)
    frames_b, state_b = run(bo.BreakoutSim([3, 1, 4, 1, 5]), actions, resets)
    assert np.array_equal(frames_a, frames_b)
    for key in state_a:
        assert np.array_equal(state_a[key], state_b[key]), key
    # Different seeds really give different games.
    frames_c, _ = run(bo.BreakoutSim([9, 9, 9, 9, 9]), actions, resets)
    assert not np.array_equal(frames_a, frames_c)


def test_vectorized_equals_single_games():
    seeds = [0, 1, 2, 7, 123456789, 2**40 + 5]
    actions, resets = messy_actions(400, len(seeds), seed=1)
    vector = bo.BreakoutSim(seeds)
    frames = [vector.render()]
    lost = 0
    for t in range(len(actions)):
        vector.reset(resets[t])
        lost += vector.step(actions[t]).life_lost.sum()
        frames.append(vector.render())
    assert lost > 5 and resets.sum() > 5  # the comparison covers serves and resets
    state = vector.get_state()
    for i, seed in enumerate(seeds):
        single_frames, single_state = run(bo.BreakoutSim([seed]), actions[:, i : i + 1], resets[:, i : i + 1])
        assert np.array_equal(np.stack(frames)[:, i], single_frames[:, 0]), seed
        for key in state:
            assert np.array_equal(state[key][i], single_state[key][0]), (seed, key)


def test_state_round_trip_and_select():
    actions, _ = messy_actions(120, 4, seed=2)
    sim = bo.BreakoutSim([10, 11, 12, 13])
    run(sim, actions[:60])
    saved = sim.get_state()
    sub = sim.select([2, 0])
    expected, _ = run(sim, actions[60:])
    restored = bo.BreakoutSim([0, 0, 0, 0])
    restored.set_state(saved)
    assert np.array_equal(run(restored, actions[60:])[0], expected)
    assert np.array_equal(run(sub, actions[60:, [2, 0]])[0], expected[:, [2, 0]])


def test_golden_traces_are_stable():
    stored = json.loads(GOLDEN_PATH.read_text())
    assert golden.generate() == stored
    assert golden.verify(GOLDEN_PATH) == []
    assert GOLDEN_PATH.stat().st_size < 300_000
    assert any(trace["game_over_steps"] for trace in stored["traces"])
    for trace in stored["traces"]:
        assert len(trace["frame_hashes"]) == len(trace["actions"]) + 1
        assert trace["frames"][0]["index"] == 0
    # The stored full frames decode to what the simulator renders.
    trace = stored["traces"][0]
    frame0 = np.frombuffer(golden.base64.b64decode(trace["frames"][0]["rgb_base64"]), np.uint8)
    assert np.array_equal(frame0.reshape(64, 64, 3), bo.BreakoutSim([trace["seed"]]).render()[0])


def test_fnv1a32_matches_reference():
    data = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    h = 0x811C9DC5
    for byte in data.tobytes():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    assert golden.fnv1a32(data) == [f"{h:08x}"]


def test_mulberry32_matches_scalar_reference():
    seed = 12345
    state = (seed ^ 0x9E3779B9) & 0xFFFFFFFF
    for shift, mult in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):  # fmix32
        state = ((state ^ (state >> shift)) * mult) & 0xFFFFFFFF
    state ^= state >> 16
    vec_state = bo.seed_to_state([seed, 7])
    assert int(vec_state[0]) == state
    expected = []
    for _ in range(6):
        state, u = mulberry32_reference(state)
        expected.append(u)
    got = []
    for _ in range(6):
        vec_state, u = bo.mulberry32(vec_state)
        got.append(u[0])
    assert got == expected
    assert all(0.0 <= u < 1.0 for u in got) and len(set(got)) == 6


def test_masked_draw_advances_only_masked_games():
    sim = bo.BreakoutSim([1, 2, 3])
    before = sim.rng_state.copy()
    sim.reset(np.array([False, True, False]))
    assert sim.rng_state[0] == before[0] and sim.rng_state[2] == before[2]
    assert sim.rng_state[1] != before[1]


def test_rendering_uses_floor_half_up():
    sim = bo.BreakoutSim([0])
    sim.ball_x[:], sim.ball_y[:] = 2.5, 40.5  # np.round gives 2 and 40
    sim.paddle_x[:] = 20.5
    frame = sim.render()[0]
    ball_ys, ball_xs = np.nonzero((frame == bo.BALL_COLOR).all(axis=-1))
    assert ball_xs.min() == 3 and ball_ys.min() == 41
    paddle_xs = np.nonzero((frame[bo.PADDLE_Y] == bo.PADDLE_COLOR).all(axis=-1))[0]
    assert paddle_xs.min() == 21 and len(paddle_xs) == bo.PADDLE_WIDTH


def test_paddle_moves_and_clamps():
    sim = bo.BreakoutSim([0], auto_reset=False)  # a game over must not re-place the paddle
    sim.paddle_x[:] = 20.0
    sim.step(np.array([bo.RIGHT]))
    assert sim.paddle_x[0] == 20.0 + bo.PADDLE_SPEED
    sim.step(np.array([bo.LEFT]))
    sim.step(np.array([bo.LEFT]))
    assert sim.paddle_x[0] == 20.0 - bo.PADDLE_SPEED
    sim.step(np.array([bo.NOOP]))
    assert sim.paddle_x[0] == 20.0 - bo.PADDLE_SPEED
    for _ in range(40):
        sim.step(np.array([bo.LEFT]))
    assert sim.paddle_x[0] == 0.0
    for _ in range(40):
        sim.step(np.array([bo.RIGHT]))
    assert sim.paddle_x[0] == bo.FRAME_SIZE - bo.PADDLE_WIDTH
    with pytest.raises(ValueError):
        sim.step(np.array([3]))


def test_tracker_breaks_bricks_and_scores():
    sim = bo.BreakoutSim(range(16))
    policy = bo.TrackerPolicy(PolicyConfig(random_action_rate=0.0), np.random.default_rng(0))
    rewards = np.zeros(16, np.int64)
    for _ in range(500):
        rewards += sim.step(policy.act(sim)).reward
    assert (sim.score == rewards).all() and (rewards >= 5).all()
    assert (sim.bricks.sum(axis=(1, 2)) == bo.BRICK_ROWS * bo.BRICK_COLS - rewards).all()
    assert (sim.lives == bo.START_LIVES).all()  # a perfect tracker never misses


def test_brick_hit_removes_brick_and_bounces():
    sim = bo.BreakoutSim([0])
    sim.ball_x[:], sim.ball_y[:] = 10.0, 31.5  # just below row 5 (rows 28-30), column 1
    sim.ball_vx[:], sim.ball_vy[:] = 0.0, -1.25
    result = sim.step(np.array([bo.NOOP]))
    assert result.reward[0] == 1 and sim.score[0] == 1
    assert not sim.bricks[0, 5, 1] and sim.bricks.sum() == 47
    assert sim.ball_vy[0] > 0
    assert not read_bricks(sim.render())[0, 5, 1]


def test_paddle_bounce_depends_on_hit_offset():
    vxs = []
    for ball_x in (20.0, 24.0, 28.0):  # left end, centre, right end of a paddle at 20..30
        sim = bo.BreakoutSim([0])
        sim.paddle_x[:] = 20.0
        sim.ball_x[:], sim.ball_y[:] = ball_x, 55.5
        sim.ball_vx[:], sim.ball_vy[:] = 0.0, 1.25
        sim.step(np.array([bo.NOOP]))
        assert sim.ball_vy[0] == -1.25 and sim.ball_y[0] == bo.PADDLE_Y - bo.BALL_SIZE
        vxs.append(sim.ball_vx[0])
    assert vxs[0] < 0 < vxs[2] and abs(vxs[1]) == bo.BALL_MIN_VX


def test_missing_the_ball_loses_a_life_and_serves():
    sim = bo.BreakoutSim([0])
    sim.paddle_x[:] = 0.0
    sim.ball_x[:], sim.ball_y[:] = 50.0, 60.0
    sim.ball_vx[:], sim.ball_vy[:] = 0.5, 1.25
    lost = [sim.step(np.array([bo.NOOP])).life_lost[0] for _ in range(4)]
    assert sum(lost) == 1 and sim.lives[0] == bo.START_LIVES - 1
    assert sim.ball_vy[0] < 0 and sim.ball_y[0] < bo.PADDLE_Y


def test_game_over_resets_game():
    sim = bo.BreakoutSim([5])
    sim.lives[:], sim.score[:] = 1, 17
    sim.bricks[0, :3] = False
    sim.ball_x[:], sim.ball_y[:], sim.ball_vy[:] = 50.0, 63.0, 1.25
    sim.paddle_x[:] = 0.0
    result = sim.step(np.array([bo.NOOP]))
    assert result.game_over[0] and result.life_lost[0]
    assert sim.lives[0] == bo.START_LIVES and sim.score[0] == 0 and sim.bricks.all()
    # Without auto_reset the game stays over until reset.
    sim = bo.BreakoutSim([5], auto_reset=False)
    sim.lives[:] = 1
    sim.ball_x[:], sim.ball_y[:], sim.ball_vy[:] = 50.0, 63.0, 1.25
    sim.paddle_x[:] = 0.0
    assert sim.step(np.array([bo.NOOP])).game_over[0]
    later = [sim.step(np.array([bo.NOOP])) for _ in range(5)]
    assert sim.lives[0] == 0 and not any(r.life_lost[0] for r in later)
    assert np.isnan(read_balls(sim.render()).centre).all()


def test_cleared_wall_refills():
    sim = bo.BreakoutSim([0])
    sim.bricks[:] = False
    sim.bricks[0, 5, 1] = True
    sim.set_state(sim.get_state())  # re-derives the rendered brick layer
    sim.ball_x[:], sim.ball_y[:] = 10.0, 31.5
    sim.ball_vx[:], sim.ball_vy[:] = 0.0, -1.25
    assert sim.step(np.array([bo.NOOP])).reward[0] == 1
    assert sim.bricks.all() and read_bricks(sim.render()).all()


def test_readouts_agree_with_state():
    actions, resets = messy_actions(300, 8, seed=3)
    sim = bo.BreakoutSim(range(8))
    checked = 0
    for t in range(len(actions)):
        sim.reset(resets[t])
        sim.step(actions[t])
        frames = sim.render()
        visible = sim.ball_y + 0.5 < bo.FRAME_SIZE - bo.BALL_SIZE  # fully on screen
        ball = read_balls(frames).centre
        assert np.all(np.abs(ball[visible, 0] - (sim.ball_x[visible] + 1)) <= 0.5)
        assert np.all(np.abs(ball[visible, 1] - (sim.ball_y[visible] + 1)) <= 0.5)
        assert np.all(np.abs(read_paddle(frames)[0] - (sim.paddle_x + bo.PADDLE_WIDTH / 2)) <= 0.5)
        assert np.array_equal(read_bricks(frames), sim.bricks)
        checked += visible.sum()
    assert checked > 1000 and not sim.bricks.all()


def test_readouts_tolerate_noise():
    sim = bo.BreakoutSim(range(16))
    sim.step(np.zeros(16, np.int64))
    frames = sim.render()
    noise = np.random.default_rng(0).normal(0, 8, frames.shape)
    noisy = np.clip(frames + noise, 0, 255).astype(np.uint8)
    assert np.all(np.abs(read_balls(noisy).centre - read_balls(frames).centre) <= 1.0)
    assert np.all(np.abs(read_paddle(noisy)[0] - (sim.paddle_x + bo.PADDLE_WIDTH / 2)) <= 1.0)
    assert np.array_equal(read_bricks(noisy), sim.bricks)
    assert np.isnan(read_balls(np.zeros((1, 64, 64, 3), np.uint8)).centre).all()
    assert np.isnan(read_paddle(np.zeros((1, 64, 64, 3), np.uint8))[0]).all()


def test_gymnasium_env():
    bo.register_envs()
    bo.register_envs()  # idempotent
    env = gymnasium.make("worldmodels/Breakout-v0", render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=3)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and info["lives"] == bo.START_LIVES
    assert np.array_equal(obs, bo.BreakoutSim([3]).render()[0])
    assert np.array_equal(env.render(), obs)
    terminated, steps = False, 0
    while not terminated:  # never moving loses every ball eventually
        obs, reward, terminated, truncated, info = env.step(bo.NOOP)
        steps += 1
        assert steps < 5000
    assert info["lives"] == 0 and not truncated


def test_vector_env_steps_and_autoresets():
    bo.register_envs()
    envs = gymnasium.make_vec("worldmodels/Breakout-v0", num_envs=4)
    assert isinstance(envs.unwrapped, bo.BreakoutVectorEnv)
    obs, info = envs.reset(seed=10)
    assert obs.shape == (4, 64, 64, 3)
    assert np.array_equal(obs, bo.BreakoutSim([10, 11, 12, 13]).render())
    finished = np.zeros(4, bool)
    for _ in range(3000):
        obs, reward, terminated, truncated, info = envs.step(np.zeros(4, np.int64))
        if finished.any():  # the step after termination returns a fresh game
            assert (info["lives"][finished] == bo.START_LIVES).all()
            assert (info["score"][finished] == 0).all() and (reward[finished] == 0).all()
            break
        finished = terminated
    else:
        pytest.fail("no game terminated")
    envs.close()


def test_vector_env_truncates():
    envs = bo.BreakoutVectorEnv(num_envs=2, max_episode_steps=5)
    envs.reset(seed=0)
    truncations = [envs.step(np.array([0, 0]))[3] for _ in range(6)]
    assert truncations[4].all() and not truncations[5].any()


def lives_lost(config, steps=600, num_games=32):
    sim = bo.BreakoutSim(range(num_games))
    policy = bo.TrackerPolicy(config, np.random.default_rng(1))
    return sum(sim.step(policy.act(sim)).life_lost.sum() for _ in range(steps))


def test_miss_rate_causes_misses():
    careful = lives_lost(PolicyConfig(random_action_rate=0.0, miss_rate=0.0))
    sloppy = lives_lost(PolicyConfig(random_action_rate=0.0, miss_rate=1.0))
    assert sloppy > 10 * max(careful, 1) and sloppy > 200


def test_random_action_rate_changes_actions():
    sim = bo.BreakoutSim(range(64))
    counts = {}
    for rate in (0.0, 1.0):
        policy = bo.TrackerPolicy(PolicyConfig(random_action_rate=rate), np.random.default_rng(0))
        acts = np.concatenate([policy.act(sim) for _ in range(50)])
        counts[rate] = np.bincount(acts, minlength=3) / len(acts)
    # Fully random: about uniform. Tracking a static state: the same action every call.
    assert np.all(np.abs(counts[1.0] - 1 / 3) < 0.05)
    assert np.abs(counts[0.0] - counts[1.0]).max() > 0.1


def test_maybe_reset_restarts_masked_games():
    sim = bo.BreakoutSim(range(200))
    sim.score[:] = 5
    mask = bo.TrackerPolicy(PolicyConfig(reset_rate=0.25), np.random.default_rng(0)).maybe_reset(sim)
    assert 20 < mask.sum() < 80
    assert (sim.score[mask] == 0).all() and (sim.score[~mask] == 5).all()


def test_importing_the_package_registers_the_gym_env():
    probe = ("import gymnasium, worldmodels, sys; assert 'worldmodels.breakout.sim' not in sys.modules; "
             "print(gymnasium.make('worldmodels/Breakout-v0').observation_space.shape)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(64, 64, 3)"
