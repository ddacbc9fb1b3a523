"""ONNX export parity (and that it fails loudly), the export and evaluate commands, and their errors."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import run_cli
from worldmodels.breakout.config import DenoiserConfig, FastDenoiserConfig
from worldmodels.breakout.denoiser import FastDenoiser, TinyDenoiser
from worldmodels.breakout.evaluate import evaluate, load_model
from worldmodels.breakout.export import export_breakout
from worldmodels.breakout.metrics import COPY, MODEL, TRUE
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
    result = evaluate(model, games=4, horizon=4)
    truth = result["one_step"][TRUE]
    assert truth["psnr"] == 100.0 and truth["ball_err_px"] == 0 and truth["brick_acc"] == 1
    copy = result["one_step"][COPY]
    assert 15 < copy["psnr"] < 100 and copy["ball_err_px"] > 0  # the ball moves every step
    assert set(result["rollout"][MODEL]) == {"1", "2", "4"}
    # the rollout's first frame is a one-step prediction from real context
    assert result["rollout"][COPY]["1"]["psnr"] > result["rollout"][COPY]["4"]["psnr"]


@pytest.mark.slow
def test_evaluate_command_on_checkpoint_writes_json(smoke_run, tmp_path):
    out = tmp_path / "eval.json"
    result = run_cli("worldmodels.evaluate", str(smoke_run / "checkpoints" / "last.ckpt"), "--games", "2",
                     "--horizon", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "copy last frame" in result.stdout and "true simulator" in result.stdout
    assert set(json.loads(out.read_text())["one_step"]) == {MODEL, COPY, TRUE}
    assert Image.open(out.with_suffix(".gif")).n_frames == 2
    assert Image.open(out.with_suffix(".png")).size[0] > 300


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
