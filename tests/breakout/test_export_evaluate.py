"""ONNX export parity (and that it fails loudly), the export and evaluate commands, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import run_cli
from worldmodels.breakout.config import DenoiserConfig, FastDenoiserConfig
from worldmodels.breakout.denoiser import FastDenoiser, TinyDenoiser
from worldmodels.breakout.evaluate import WALL, evaluate, load_model, one_step_scores, play_games, rollout_scores
from worldmodels.breakout.export import export_breakout
from worldmodels.breakout.metrics import COPY, MODEL
from worldmodels.breakout.players import PLAYERS
from worldmodels.breakout.readout import EVENTS
from worldmodels.core.config import compose_config
from worldmodels.core.manifest import ExportError
from worldmodels.evaluate import main as evaluate_main
from worldmodels.export import main as export_main
from worldmodels.tasks import validate


@pytest.fixture(scope="module")
def tiny_run():
    cfg = compose_config(["debug=smoke"])
    return validate(cfg), OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("make_net", [lambda: TinyDenoiser(DenoiserConfig(width=8, blocks=2)),
                                      lambda: FastDenoiser(FastDenoiserConfig(widths=[4, 8, 8], blocks=[1, 1, 2]))],
                         ids=["tiny_denoiser", "fast_denoiser"])
def test_export_matches_pytorch(tiny_run, tmp_path, make_net):
    run, raw = tiny_run
    torch.manual_seed(0)
    net = make_net()
    for p in net.parameters():  # zero-initialized blocks would make parity trivial
        torch.nn.init.normal_(p, std=0.1)
    onnx_path, manifest_path, diff = export_breakout(net, run, raw, tmp_path)
    assert diff <= 1e-4
    assert json.loads(manifest_path.read_text())["parity"]["max_abs_diff"] == diff
    assert onnx_path.stat().st_size > 0


def test_export_fails_loudly_above_tolerance(tiny_run, tmp_path):
    run, raw = tiny_run
    net = TinyDenoiser(DenoiserConfig(width=8, blocks=2))
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.5)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_breakout(net, run, raw, tmp_path, tolerance=1e-12)
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.slow
def test_export_command(smoke_run, tmp_path):
    result = run_cli("worldmodels.export", str(smoke_run / "checkpoints" / "last.ckpt"), "--out", str(tmp_path),
                     "--name", "mine")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "mine.onnx").is_file() and (tmp_path / "mine.json").is_file()
    assert "max |onnxruntime - PyTorch|" in result.stdout
    # the run's paths travel relative to its root: no directory of the machine it was trained on
    paths = json.loads((tmp_path / "mine.json").read_text())["training_config"]["paths"]
    assert paths["root_dir"] == "." and not any(str(v).startswith("/") for v in paths.values()), paths


@pytest.mark.slow
def test_evaluate_scores_model_and_baselines(smoke_run):
    model = load_model(smoke_run / "export" / "breakout.onnx")
    result = evaluate(model, games=2, horizon=4, one_step=6, progress=False)
    one = result["one_step"]
    assert set(one) == {*EVENTS, WALL, "all"} and one["all"]["count"] == 2 * len(PLAYERS) * 6
    assert sum(one[e]["count"] for e in EVENTS) == one["all"]["count"]
    copy = one["all"][COPY]
    assert 15 < copy["psnr"] < 100 and copy["ball_missing"] == 0 and copy["extra_ball"] == 0
    rollout = result["rollout"][MODEL]
    assert set(rollout["horizons"]) == {"1", "2", "3", "4"}
    assert len(rollout["ball_kept"]["per_game"]) == 2 * len(PLAYERS)
    assert set(rollout["ball_kept"]["per_player"]) == set(PLAYERS)
    # the frozen start frame's PSNR falls as the game moves on
    frozen = result["rollout"][COPY]["horizons"]
    assert frozen["1"]["psnr"] > frozen["4"]["psnr"]


def test_scores_of_the_truth_and_of_a_blank_frame():
    games = play_games(["tracker", "random"], 3, 40)
    truth = games.frames[1:]
    perfect = one_step_scores(games, truth[3:], 3)
    for event in (*EVENTS, WALL, "all"):
        if perfect[event]["count"]:
            assert perfect[event][MODEL]["ball_right"] == 1 and perfect[event][MODEL]["paddle_right"] == 1
            assert perfect[event][MODEL]["bricks_right"] == 1
    # A blank frame has no ball: a failure everywhere, never a left-out frame.
    blank = one_step_scores(games, np.zeros_like(truth[3:]), 3)
    assert blank["all"][MODEL]["ball_right"] == 0 and blank["all"][MODEL]["ball_missing"] == 1
    roll = rollout_scores(truth[3:], np.zeros_like(truth[3:]), games.players)
    assert roll["ball_kept"]["median"] == 0 and all(h["ball_within"] == 0 for h in roll["horizons"].values())
    kept = rollout_scores(truth[3:], truth[3:], games.players)["ball_kept"]
    assert kept["median"] == len(truth) - 3


def test_warm_ups_differ_per_game_and_seeds_are_held_out():
    a, b = play_games(["tracker"], 4, 2), play_games(["tracker"], 4, 2, seed=1)
    starts = a.frames[0].reshape(4, -1)
    assert len({row.tobytes() for row in starts}) == 4
    assert not np.array_equal(a.frames, b.frames)


@pytest.mark.slow
def test_evaluate_command_on_checkpoint_writes_json(smoke_run, tmp_path):
    out = tmp_path / "eval.json"
    result = run_cli("worldmodels.evaluate", str(smoke_run / "checkpoints" / "last.ckpt"), "--games", "1",
                     "--horizon", "4", "--one-step", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| serve |" in result.stdout and "Ball-kept horizon" in result.stdout
    assert set(json.loads(out.read_text())["rollout"]) == {MODEL, COPY}
    assert Image.open(out.with_suffix(".gif")).n_frames == 4
    assert Image.open(out.with_suffix(".png")).size[0] > 300
    assert Image.open(out.with_suffix(".strip.png")).size[1] > 2 * len(PLAYERS) * 64


@pytest.mark.parametrize("command", [evaluate_main, export_main], ids=["evaluate", "export"])
def test_missing_or_corrupt_model_is_one_line(command, tmp_path, capsys):
    """The commands' own `main` (what `python -m` runs, minus the interpreter's start-up)."""
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"not a checkpoint")
    for path in (tmp_path / "missing.ckpt", bad):
        with pytest.raises(SystemExit) as exit_:
            command([str(path)])
        stderr = capsys.readouterr().err
        assert exit_.value.code == 2
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: ")


def test_manifest_states_the_sampler_contract_the_code_keeps(tiny_run, tmp_path):
    """The manifest's words about the sampler are the code's behaviour: raw sigma plane, frame-major RGB context,
    one call at sigma_max for K=1 starting at the newest frame + noise, byte-rounded feedback."""
    from worldmodels.breakout.denoiser import denoiser_input, frames_to_tensor, tensor_to_frames
    from worldmodels.breakout.export import SAMPLER_CONTRACT
    from worldmodels.breakout.sampler import dream_rollout, sample_next_frame

    run, raw = tiny_run
    _, manifest_path, _ = export_breakout(TinyDenoiser(DenoiserConfig(width=4, blocks=1)), run, raw, tmp_path)
    sampler = json.loads(manifest_path.read_text())["sampler"]
    assert {k: sampler[k] for k in SAMPLER_CONTRACT} == SAMPLER_CONTRACT
    context = torch.rand(1, 4, 3, 8, 8) * 2 - 1
    x = denoiser_input(torch.zeros(1, 3, 8, 8), context, torch.tensor([2]), torch.tensor([0.37]))
    assert torch.all(x[:, 18] == 0.37)  # raw sigma
    for frame in range(4):
        assert torch.equal(x[:, 3 + 3 * frame:6 + 3 * frame], context[:, frame])  # frame-major RGB
    calls = []
    noise = torch.randn(1, 3, 8, 8)

    def denoise(inp):
        calls.append(inp.clone())
        return inp[:, :3] * 0 + 0.1234

    out = sample_next_frame(denoise, context, torch.tensor([2]), 1, 0.8, 0.02, noise=noise)
    assert len(calls) == 1 and torch.all(calls[0][:, 18] == 0.8)
    assert torch.allclose(calls[0][:, :3], context[:, -1] + 0.8 * noise) and torch.all(out == 0.1234)
    start = torch.randint(0, 256, (1, 4, 8, 8, 3), dtype=torch.uint8)
    calls.clear()
    dream_rollout(denoise, start, torch.tensor([[0], [1]]), 1, 0.8, 0.02)
    fed = frames_to_tensor(tensor_to_frames(torch.full((1, 3, 8, 8), 0.1234)))
    assert torch.equal(calls[1][:, 12:15], fed)  # the rounded frame, not the raw prediction
    assert not torch.equal(fed, torch.full_like(fed, 0.1234))
