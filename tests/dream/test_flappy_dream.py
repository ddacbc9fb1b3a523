"""FlappyDream-v0 and its vector env: the gymnasium and sb3 checkers, the real env's observation and reward rules on
real frames, the rules on hand-made states, a tiny export end to end, and N batched dreams against N single ones."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import worldmodels
from worldmodels.dream import flappy as dream
from worldmodels.dream.vector import FlappyDreamVecEnv
from worldmodels.flappy.game import FlappyGame, FlappyState, HeuristicPolicy
from worldmodels.flappy.tokens import SPEC

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "flappy" / "flappy.json"
PER = SPEC.state_tokens_per_frame
BIN = {name: SPEC.bin_width(name) for name in ("bird_y", "pipe_x", "gap_y")}


def test_both_env_checkers_pass():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = gymnasium.make(worldmodels.FLAPPY_DREAM_ID, model=str(SHIPPED), max_frames=50)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check(dream.FlappyDreamEnv(model=SHIPPED, max_frames=50), warn=True)
    frame = dream.FlappyDreamEnv(model=SHIPPED, render_mode="rgb_array")
    frame.reset(seed=0)
    assert frame.render().shape == (256, 144, 3)


class RewardRecorder(gymnasium.Wrapper):
    def step(self, action):
        out = super().step(action)
        self.last_reward = out[1]
        return out


def replay(game: FlappyGame, seed: int, actions) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """The real game of `seed` played with `actions`: its state tokens, features observations and rewards."""
    game.env = RewardRecorder(game.env)
    state = game.reset(seed)
    tokens, observations, rewards = [SPEC.encode_frame(state, 0)[:PER]], [game.obs.copy()], []
    for action in actions:
        if game.done:
            break
        state = game.step(int(action))
        tokens.append(SPEC.encode_frame(state, 0)[:PER])
        observations.append(game.obs.copy())
        rewards.append(game.env.last_reward)
    game.env = game.env.env
    return tokens, observations, rewards


def check_observation(ours: np.ndarray, real: np.ndarray) -> bool:
    """Equal up to the tokens' bins; True when the real env showed a third pipe that no token slot holds."""
    assert ours[10] == real[10] and ours[11] == real[11]  # velocity and rotation: exact
    assert abs(ours[9] - real[9]) * 512 <= BIN["bird_y"] / 2 + 1e-9
    third = not np.allclose(real[6:9], dream.ABSENT_PIPE) and np.allclose(ours[6:9], dream.ABSENT_PIPE)
    for k in range(3 if not third else 2):
        x, top, bottom = ours[3 * k:3 * k + 3]
        rx, rtop, rbottom = real[3 * k:3 * k + 3]
        if np.allclose(real[3 * k:3 * k + 3], dream.ABSENT_PIPE):
            assert np.allclose(ours[3 * k:3 * k + 3], dream.ABSENT_PIPE)
            continue
        assert abs(x - rx) * 288 <= BIN["pipe_x"] / 2 + 1e-9
        for ours_y, real_y in ((top, rtop), (bottom, rbottom)):
            assert abs(ours_y - real_y) * 512 <= BIN["gap_y"] / 2 + 1e-9
    return third


def test_observation_and_reward_follow_the_real_env_on_real_start_contexts():
    """The manifest's start contexts are real games (their seeds are recorded): replaying each one's actions in the
    real env, the dream's bookkeeping makes the real env's observation (up to the bins) and its reward (exactly)
    from the real frames' tokens, on and beyond the context, through a pass and a death."""
    manifest = json.loads(SHIPPED.read_text())
    game, heuristic, thirds, frames, passes, deaths = FlappyGame(), HeuristicPolicy(), 0, 0, 0, 0
    for i, (context, seed) in enumerate(zip(manifest["start_contexts"], manifest["start_context_seeds"],
                                            strict=True)):
        context = np.append(context, SPEC.offsets["action"]).reshape(-1, SPEC.tokens_per_frame)
        actions = context[:-1, PER] - SPEC.offsets["action"]
        # the context's real frames, then the heuristic's (every other game) or no flaps, until death or 700 frames
        tokens, observations, rewards = replay(game, seed, actions)
        assert np.array_equal(np.stack(tokens), context[:, :PER])
        more = []
        while not game.done and len(more) < 700:
            more.append(heuristic(game.obs) if i % 2 else 0)
            game.step(more[-1])
        tokens, observations, rewards = replay(game, seed, [*actions, *more])
        played = [*actions, *more]
        sim = dream.DreamGame(SPEC, max_frames=10_000)
        sim.start(tokens[0])
        thirds += check_observation(sim.observation(), observations[0])
        for t, action in enumerate(played[:len(tokens) - 1]):
            r, terminated, _ = sim.advance(int(action), tokens[t + 1])
            assert r == pytest.approx(rewards[t]) and terminated == (t + 2 == len(tokens) and game.done)
            thirds += check_observation(sim.observation(), observations[t + 1])
            frames += 1
            passes += r == dream.REWARD_PASS
            deaths += terminated
    assert sim.score == game.score
    assert frames > 1000 and passes >= 8 and deaths >= 4  # the rules were exercised
    assert 0 < thirds < frames  # the third pipe, which no slot holds, was on screen now and then


def frame(bird_y=200.0, x0=100.0, done=False) -> np.ndarray:
    state = FlappyState(bird_y=bird_y, visible=(True, True), pipe_x=(x0, x0 + 160), gap_y=(180.0, 150.0),
                        respawn=False, done=done)
    return SPEC.encode_frame(state, 0)


def test_reward_and_end_rules_on_hand_made_states():
    alive = SPEC.decode_frame(frame()[:PER])[0]
    assert dream.reward(0, alive) == dream.REWARD_ALIVE and dream.reward(1, alive) == dream.REWARD_PASS
    above = SPEC.decode_frame(frame(bird_y=-20.0)[:PER])[0]
    assert dream.reward(1, above) == dream.REWARD_ABOVE
    dead = SPEC.decode_frame(frame(done=True)[:PER])[0]
    assert dream.reward(1, dead) == dream.REWARD_DEATH
    # the env scores a pipe on the step that starts with its middle at most 4 px before the bird's (x + 26 <= 57 + 17
    # < x + 30): from x = 46 here
    game = dream.DreamGame(SPEC, max_frames=3)
    game.start(frame(x0=50.0)[:PER])
    assert game.advance(0, frame(bird_y=201.0, x0=46.0)[:PER]) == (dream.REWARD_ALIVE, False, False)
    assert game.advance(0, frame(bird_y=203.0, x0=42.0)[:PER]) == (dream.REWARD_PASS, False, False)
    assert game.score == 1
    assert game.advance(0, frame(bird_y=206.0, x0=38.0)[:PER]) == (dream.REWARD_ALIVE, False, True)  # max_frames
    game.start(frame()[:PER])
    assert game.advance(0, frame(done=True)[:PER]) == (dream.REWARD_DEATH, True, False)


def test_bird_motion_follows_the_game():
    motion = dream.BirdMotion()
    assert (motion.velocity, motion.rotation) == (-9, 45)
    motion.step(0, 100.0)
    assert (motion.velocity, motion.rotation) == (-8, 42)
    motion.step(1, 100.0)
    assert (motion.velocity, motion.rotation) == (-9, 45)
    motion.step(1, -60.0)  # above the flap ceiling: the flap is ignored
    assert (motion.velocity, motion.rotation) == (-8, 42)
    for _ in range(60):
        motion.step(0, 100.0)
    assert (motion.velocity, motion.rotation) == (10, -90)


def test_bad_input_is_refused():
    env = dream.FlappyDreamEnv(model=SHIPPED)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (2, -1, 0.5, True):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    with pytest.raises(worldmodels.core.errors.UserError, match="breakout"):
        dream.FlappyDreamEnv(model=ROOT / "models" / "breakout" / "breakout.json")
    with pytest.raises(worldmodels.core.errors.UserError, match="no exported model"):
        dream.FlappyDreamEnv(model=ROOT / "nowhere.json")


def play_singles(envs, seed: int, actions) -> list:
    out = []
    for i, env in enumerate(envs):
        obs, _ = env.reset(seed=seed + i)
        row = [obs]
        for a in actions[:, i]:
            obs, r, terminated, truncated, _ = env.step(int(a))
            row.append((obs, r, terminated, truncated))
            if terminated or truncated:
                obs, _ = env.reset()
                row.append(obs)
        out.append(row)
    return out


def play_vector(venv, seed: int, actions) -> list:
    obs, _ = venv.reset(seed=seed)
    out = [[o] for o in obs]
    for a in actions:
        obs, r, terminated, truncated, info = venv.step(a)
        for i in range(venv.num_envs):
            ended = terminated[i] or truncated[i]
            out[i].append((info["final_obs"][i] if ended else obs[i], r[i], terminated[i], truncated[i]))
            if ended:
                out[i].append(obs[i])
    return out


def same(a, b) -> bool:
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(np.array_equal(a, b))


@pytest.mark.parametrize("model", ["flappy", "flappy_cpu"])
def test_the_vector_env_makes_the_single_envs_dreams(model):
    """models/flappy has a ring cache (frame graph in the single env), models/flappy_cpu an ordered window that
    slides (per-token decode graph): N batched dreams equal N single ones for seeds s + i, resets included."""
    path = ROOT / "models" / model / "flappy.json"
    n, steps = 3, 160
    actions = (np.random.default_rng(1).random((steps, n)) < 0.15).astype(np.int64)
    singles = play_singles([dream.FlappyDreamEnv(model=path, max_frames=70) for _ in range(n)], 5, actions)
    vector = play_vector(FlappyDreamVecEnv(n, model=path, max_frames=70), 5, actions)
    ends = sum(isinstance(x, tuple) and (x[2] or x[3]) for row in singles for x in row)
    assert ends >= 6  # autoresets happened (deaths and truncations)
    assert all(same(a, b) for ra, rb in zip(singles, vector, strict=True) for a, b in zip(ra, rb, strict=True))


def test_a_tiny_export_end_to_end(tmp_path):
    """A fresh export carries its batched graph; both envs reset, step and close on it, and agree."""
    from omegaconf import OmegaConf

    from tests.flappy.test_frame_graph import sharp_model
    from worldmodels.core.config import compose_config
    from worldmodels.flappy.export import export_flappy
    from worldmodels.flappy.game import record_episode
    from worldmodels.tasks import validate

    cfg = compose_config(["task=flappy", "model.layers=2", "model.heads=2", "model.width=32", "model.context=80",
                          "data.window_frames=8", "module.decoding.slide_frames=2"], output_dir=str(tmp_path))
    run = validate(cfg)
    run.model.vocab_size = SPEC.vocab_size
    states, acts, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=0, max_frames=12)
    start = SPEC.encode_episode(states, acts)[:-1].tolist()
    _, manifest_path, _ = export_flappy(sharp_model(context=80), run, OmegaConf.to_container(cfg, resolve=True),
                                        tmp_path / "out", start_contexts=[start])
    assert json.loads(manifest_path.read_text())["batch_onnx"] == "flappy.batch.onnx"
    actions = (np.random.default_rng(2).random((40, 2)) < 0.2).astype(np.int64)
    singles = play_singles([dream.FlappyDreamEnv(model=manifest_path, max_frames=15) for _ in range(2)], 0, actions)
    venv = FlappyDreamVecEnv(2, model=manifest_path, max_frames=15)
    vector = play_vector(venv, 0, actions)
    assert all(same(a, b) for ra, rb in zip(singles, vector, strict=True) for a, b in zip(ra, rb, strict=True))
    venv.close()


def test_an_export_without_a_batched_graph_says_how_to_add_one(tmp_path):
    import shutil

    for f in SHIPPED.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    manifest = json.loads(SHIPPED.read_text())
    del manifest["batch_onnx"]
    (tmp_path / "flappy.json").write_text(json.dumps(manifest))
    with pytest.raises(worldmodels.core.errors.UserError, match="batch_graph"):
        FlappyDreamVecEnv(2, model=tmp_path / "flappy.json")
    from worldmodels.flappy.batch_graph import add_batch_graph

    (tmp_path / "flappy.batch.onnx").unlink()
    add_batch_graph(tmp_path / "flappy.json")
    assert json.loads((tmp_path / "flappy.json").read_text())["batch_onnx"] == "flappy.batch.onnx"
    assert FlappyDreamVecEnv(2, model=tmp_path / "flappy.json").reset(seed=0)[0].shape == (2, 12)


def test_sb3_ppo_learns_on_the_vector_dream():
    from stable_baselines3 import PPO

    from worldmodels.dream.sb3 import SB3VecEnv
    from worldmodels.flappy.collector import pipes_ahead_first

    venv = SB3VecEnv(FlappyDreamVecEnv(4, model=SHIPPED, max_frames=40), observation=pipes_ahead_first)
    venv.seed(0)
    ends = []

    class Ends:
        def __call__(self, locals_, globals_):
            ends.extend(info for info in locals_["infos"] if "terminal_observation" in info)

    agent = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    agent.learn(512)
    obs = venv.reset()
    for _ in range(60):
        obs, rewards, dones, infos = venv.step(agent.predict(obs)[0])
        ends += [info for info, done in zip(infos, dones, strict=True) if done]
    assert agent.num_timesteps >= 512 and ends
    assert all(info["terminal_observation"].shape == (12,) and "episode" in info and "score" in info for info in ends)
