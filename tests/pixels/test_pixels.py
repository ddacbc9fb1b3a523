"""task=gym_pixels: frames and players of any gymnasium env, the 16 + N channel contract, export, evaluate, record.

The fast tests play a few steps of small built-in envs (CartPole-v1, Acrobot-v1, FrozenLake-v1, Taxi-v4: rgb_array
rendering with gymnasium alone); the slow ones train (`debug=smoke`) and run the commands as a user would.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import run_cli
from worldmodels.breakout.denoiser import (
    BASE_CHANNELS,
    CONTEXT_FRAMES,
    INPUT_NAME,
    OUTPUT_NAME,
    build_denoiser,
    denoiser_input,
    frames_to_tensor,
)
from worldmodels.core.config import compose_config
from worldmodels.core.errors import UserError
from worldmodels.core.manifest import manifest_problem, read_manifest
from worldmodels.pixels.config import GymPixelsDataConfig
from worldmodels.pixels.data import (
    PixelsDataModule,
    WindowStream,
    gym_source,
    minari_facts,
    png_base64,
    png_frames,
)
from worldmodels.pixels.envs import PixelEnv, make_env, play, resize
from worldmodels.pixels.export import export_pixels
from worldmodels.record import parse_args
from worldmodels.tasks import validate


def small(env_id: str, **kwargs) -> GymPixelsDataConfig:
    return GymPixelsDataConfig(env_id=env_id, max_steps=12, train_episodes=2, val_episodes=1, batch_size=4, **kwargs)


class CountSteps:
    """A stand-in env step counter: wraps `step` to record the actions the env receives."""

    def __init__(self, env):
        self.env, self.received = env, []
        self.inner_step = env.unwrapped.step

        def step(action):
            self.received.append(int(action))
            return self.inner_step(action)

        env.unwrapped.step = step


def test_frames_are_resized_rgb_by_area_average():
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    frames[:, :4, :4] = 200  # the top-left quarter
    out = resize(frames, 4)
    assert out.shape == (2, 4, 4, 3) and out.dtype == np.uint8
    assert (out[:, :2, :2] == 200).all() and (out[:, 2:] == 0).all()
    assert resize(frames, 8) is not frames and np.array_equal(resize(frames, 8), frames)


def test_frame_skip_repeats_the_action_and_keeps_the_last_frame():
    env = make_env("CartPole-v1")
    counter = CountSteps(env)
    pixels = PixelEnv(env, 32, 3, 0.0, np.random.default_rng(0))
    frame, _ = pixels.reset(seed=0)
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    frame, reward, *_ = pixels.step(1)
    assert counter.received == [1, 1, 1] and reward == 3.0
    assert np.array_equal(frame, resize(env.render()[None], 32)[0])  # the frame after the third env step
    env.close()


def test_sticky_actions_repeat_the_previous_env_action():
    env = make_env("CartPole-v1")
    counter = CountSteps(env)
    pixels = PixelEnv(env, 16, 1, 0.5, np.random.default_rng(0))
    pixels.reset(seed=0)
    agent = [0, 1] * 20
    for action in agent:
        if pixels.step(action)[2]:
            break
    sent = counter.received
    assert sent != agent[:len(sent)]  # some steps kept the previous action ...
    assert all(s == a or s == p for s, a, p in zip(sent[1:], agent[1:], sent, strict=False))  # ... and only that
    env.close()


def test_episodes_are_the_same_for_the_same_seed_and_differ_between_players():
    cfg = small("CartPole-v1", frame_size=16)
    a, b = play(cfg, [5, 6], "data"), play(cfg, [5, 6], "data")
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    frames, actions = a[0]
    assert frames.shape[1:] == (16, 16, 3) and len(frames) == len(actions) + 1
    holder = play(cfg, [5], "holder")[0][1]
    random = play(cfg, [5], "random")[0][1]
    assert not np.array_equal(holder, random)


def test_unsupported_envs_fail_in_one_line():
    with pytest.raises(UserError, match="cannot make"):
        make_env("NoSuchGame-v9")
    with pytest.raises(UserError, match="Discrete actions"):
        make_env("Pendulum-v1")


def test_atari_without_ale_py_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # `import ale_py` now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'worldmodels\[atari\]'"):
        make_env("ALE/Breakout-v5")


def test_atari_breakout_plays_with_its_action_names():
    pytest.importorskip("ale_py", reason="the atari extra (pip install 'worldmodels[atari]') is not installed")
    cfg = validate(compose_config(["experiment=atari_breakout"])).data
    cfg = replace(cfg, max_steps=10, train_episodes=1, val_episodes=1)
    (frames, actions), = play(cfg, [0], "random")
    assert frames.shape == (11, 64, 64, 3) and actions.max() < 4
    source = gym_source(cfg, 0, None)
    assert source.action_names == ["NOOP", "FIRE", "RIGHT", "LEFT"] and source.game["frame_skip"] == 4


def test_windows_never_cross_an_episode_end():
    # frame value = 10 * episode + index: a window inside one episode counts up by one
    episodes = [(np.full((n + 1, 8, 8, 3), 0, np.uint8) + (10 * e + np.arange(n + 1))[:, None, None, None]
                 .astype(np.uint8), np.arange(n) % 3) for e, n in enumerate([5, 9, 4])]
    stream = WindowStream(episodes, batch_size=64, unroll=2, seed=0, max_batches=3)
    rows = list(stream)
    assert len(rows) == 3
    for row in rows:
        values = torch.cat([row["context"], row["target"][:, None], row["next_targets"]], 1)[:, :, 0, 0, 0].long()
        assert (values.diff(dim=1) == 1).all()
        index = values[:, CONTEXT_FRAMES - 1] % 10  # the action after the newest context frame
        assert (row["action"] == index % 3).all() and (row["next_actions"][:, 0] == (index + 1) % 3).all()


def test_start_frames_round_trip_through_png():
    frames = np.random.default_rng(0).integers(0, 256, (CONTEXT_FRAMES, 16, 16, 3), dtype=np.uint8)
    assert np.array_equal(png_frames(png_base64(np.concatenate(list(frames), axis=1))), frames)


@pytest.mark.parametrize("env_id, actions", [("Acrobot-v1", 3), ("FrozenLake-v1", 4), ("Taxi-v4", 6)])
def test_n_action_contract_in_onnx_and_manifest(tmp_path, env_id, actions):
    """16 + N input channels for N actions, in the net, the ONNX graph and the manifest the player reads."""
    raw = compose_config(["task=gym_pixels", "debug=smoke", f"data.env_id={env_id}", "data.max_steps=12",
                          "data.train_episodes=1", "data.val_episodes=1"])
    run = validate(raw)
    data = PixelsDataModule(run.data, seed=0, cache_dir=None)
    net = build_denoiser(run.model, data.loaded().num_actions)
    for p in net.parameters():  # zero-initialized blocks would make parity trivial
        torch.nn.init.normal_(p, std=0.1)
    onnx_path, manifest_path, diff = export_pixels(net, run, OmegaConf.to_container(raw, resolve=True),
                                                   data.export_extras(), tmp_path)
    assert diff <= 1e-4
    manifest = read_manifest(manifest_path)
    assert manifest_problem(manifest) is None
    assert manifest["num_actions"] == actions == len(manifest["frame"]["actions"])
    assert manifest["inputs"][0]["shape"] == ["N", BASE_CHANNELS + actions, 64, 64]
    assert [b["channels"] for b in manifest["input_layout"]] == [3, 12, actions, 1]
    assert manifest["game"]["env_id"] == env_id and len(manifest["start_frames"]) == 8
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [BASE_CHANNELS + actions, 64, 64]
    context = frames_to_tensor(torch.from_numpy(png_frames(manifest["start_frames"][0]))[None])
    x = denoiser_input(context[:, -1], context, torch.tensor([actions - 1]), torch.tensor([0.5]), actions)
    assert x.shape[1] == BASE_CHANNELS + actions and x[0, 15 + actions - 1].eq(1).all()
    out = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    assert out.shape == (1, 3, 64, 64) and np.allclose(out, net(x).detach().numpy(), atol=1e-4)
    wrong = denoiser_input(context[:, -1], context, torch.tensor([0]), torch.tensor([0.5]), actions + 1)
    with pytest.raises(Exception, match="(?i)dimension|shape|channel"):
        session.run([OUTPUT_NAME], {INPUT_NAME: wrong.numpy()})


def test_a_manifest_whose_channels_disagree_with_its_actions_is_refused(tmp_path):
    raw = compose_config(["task=gym_pixels", "debug=smoke", "data.max_steps=12", "data.train_episodes=1",
                          "data.val_episodes=1"])
    run = validate(raw)
    data = PixelsDataModule(run.data, seed=0, cache_dir=None)
    _, manifest_path, _ = export_pixels(build_denoiser(run.model, 2), run, OmegaConf.to_container(raw, resolve=True),
                                        data.export_extras(), tmp_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest_problem(manifest) is None
    for broken in ({**manifest, "num_actions": 3}, {k: v for k, v in manifest.items() if k != "start_frames"}):
        assert manifest_problem(broken) is not None


def test_minari_action_names_come_from_the_description():
    import gymnasium

    class Dataset:  # the two attributes minari_facts reads
        action_space = gymnasium.spaces.Discrete(3)

        class storage:
            metadata = {"description": "Some game.\nactions: NOOP, LEFT, RIGHT"}

    assert minari_facts(Dataset()) == (3, ["NOOP", "LEFT", "RIGHT"])
    Dataset.storage.metadata = {"description": "no names here"}
    assert minari_facts(Dataset()) == (3, ["action 0", "action 1", "action 2"])


@pytest.mark.parametrize("argv, message", [
    (["CartPole-v1", "--dataset-id", "no version"], "not a Minari id"),
    (["CartPole-v1", "--dataset-id", "cart/pole-v0", "--episodes", "0"], "--episodes"),
    (["CartPole-v1", "--dataset-id", "cart/pole-v0", "--frame-size", "30"], "--frame-size"),
    (["CartPole-v1", "--dataset-id", "cart/pole-v0", "--player", "sb3"], "--sb3-path"),
    (["CartPole-v1", "--dataset-id", "cart/pole-v0", "--env-kwargs", "{oops"], "not JSON"),
])
def test_record_refuses_bad_flags_before_any_work(argv, message):
    with pytest.raises(UserError, match=message):
        parse_args(argv)


@pytest.mark.slow
def test_smoke_run_trains_exports_and_evaluates(pixels_smoke_run, tmp_path):
    export = pixels_smoke_run / "export"
    manifest = read_manifest(export / "gym_pixels.json")
    assert manifest_problem(manifest) is None and manifest["task"] == "gym_pixels"
    assert manifest["num_actions"] == 2 and manifest["inputs"][0]["shape"] == ["N", 18, 64, 64]
    out = tmp_path / "eval.json"
    result = run_cli("worldmodels.evaluate", str(export / "gym_pixels.onnx"), "--games", "2", "--horizon", "8",
                     "--one-step", "4", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "## One step (true context)" in result.stdout and "copy_last" in result.stdout
    report = json.loads(out.read_text())
    assert report["players"] == ["random", "holder", "data"] and report["games"] == 6
    assert set(report["one_step"]) == {"model", "copy_last"}
    first = report["rollout"]["model"]["1"]
    assert first["games"] == 6 and 0 <= first["objects_missing"] <= 1 and first["psnr"] > 10
    assert set(report["rollout"]) == {"model", "frozen_start", "mean_frame"}
    assert out.with_suffix(".gif").stat().st_size > 0
    refused = run_cli("worldmodels.evaluate", str(export / "gym_pixels.onnx"), "--players", "random,tracker")
    assert refused.returncode != 0 and "--players: unknown tracker; choose from random, holder, data, sb3" in \
        refused.stderr  # Breakout's tracker is not one of this task's players


@pytest.mark.slow
def test_minari_round_trip_record_train_evaluate(tmp_path, monkeypatch):
    pytest.importorskip("minari", reason="the minari extra is not installed")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    recorded = run_cli("worldmodels.record", "CartPole-v1", "--dataset-id", "test/cartpole-v0", "--episodes", "8",
                       "--frame-size", "32", "--seed", "3")
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    assert "test/cartpole-v0: 8 episodes" in recorded.stdout
    again = run_cli("worldmodels.record", "CartPole-v1", "--dataset-id", "test/cartpole-v0", "--episodes", "8")
    assert again.returncode != 0 and "--force" in again.stderr  # an existing dataset is never overwritten silently
    run_dir = tmp_path / "run"
    trained = run_cli("worldmodels.train", "task=gym_pixels", "data=minari", "data.dataset_id=test/cartpole-v0",
                      "data.frame_size=32", "debug=smoke", "logger=csv", f"hydra.run.dir={run_dir}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    manifest = read_manifest(run_dir / "export" / "gym_pixels.json")
    assert manifest["game"] == {"source": "minari", "dataset_id": "test/cartpole-v0"}
    assert manifest["inputs"][0]["shape"] == ["N", 18, 32, 32]
    out = tmp_path / "eval.json"
    evaluated = run_cli("worldmodels.evaluate", str(run_dir / "export" / "gym_pixels.onnx"), "--horizon", "4",
                        "--one-step", "4", "--out", str(out))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["players"] == ["recorded"] and report["games"] == 2  # the dataset's held-out episodes
