"""End to end: a real `debug=smoke` run and what it leaves behind; resume; the NaN guard; every experiment."""

from __future__ import annotations

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli
from worldmodels.breakout.metrics import MODEL
from worldmodels.core.config import compose_config, config_dir
from worldmodels.core.module import NonFiniteLossError
from worldmodels.fit import train
from worldmodels.record import main as record_main
from worldmodels.tasks import build_module, load_checkpoint, validate


@pytest.mark.slow
def test_smoke_run_writes_every_artifact(smoke_run):
    ckpts = sorted(p.name for p in (smoke_run / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and "step000002.ckpt" in ckpts
    samples = sorted((smoke_run / "media").glob("samples_step*.png"))
    assert samples and Image.open(samples[-1]).size[0] > 64 * 5
    gifs = sorted((smoke_run / "media").glob("rollout_step*.gif"))
    assert gifs and Image.open(gifs[-1]).n_frames == 3
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert np.isfinite(summary["metrics"]["val/loss"]) and summary["metrics"]["global_step"] == 4


@pytest.mark.slow
def test_smoke_run_logs_to_wandb_offline(smoke_run):
    (offline,) = (smoke_run / "wandb").glob("offline-run-*")
    # The offline run file is protobuf records: the config's values and the metric names appear in it verbatim.
    (record_file,) = offline.glob("run-*.wandb")
    records = record_file.read_bytes()
    for needle in (b"tiny_denoiser", b"sigma_min", b"train/loss", b"val/loss", b"val/psnr", b"train/lr"):
        assert needle in records, needle
    media = {p.suffix for p in (offline / "files" / "media").rglob("*.*")}
    assert {".png", ".gif"} <= media


@pytest.mark.slow
def test_smoke_run_exports_onnx_with_the_contract(smoke_run):
    onnx_path = smoke_run / "export" / "breakout.onnx"
    manifest = json.loads((smoke_run / "export" / "breakout.json").read_text())
    session = ort.InferenceSession(str(onnx_path))
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape[1:]) == ("input", [19, 64, 64])
    assert (out.name, out.shape[1:]) == ("pred", [3, 64, 64])
    pred = session.run(["pred"], {"input": np.random.randn(3, 19, 64, 64).astype(np.float32)})[0]
    assert pred.shape == (3, 3, 64, 64) and np.abs(pred).max() <= 1
    assert manifest["task"] == "breakout" and manifest["format_version"] == 1
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    assert manifest["sampler"]["steps"] >= 1 and manifest["training_config"]["model"]["width"] == 8
    props = {p.key: p.value for p in __import__("onnx").load(str(onnx_path)).metadata_props}
    assert props["worldmodels.task"] == "breakout"


@pytest.mark.slow
def test_checkpoint_describes_itself(smoke_run):
    run, module = load_checkpoint(smoke_run / "checkpoints" / "last.ckpt")
    assert run.model.width == 8 and run.trainer.max_steps == 4
    with torch.no_grad():
        assert module.net(torch.zeros(1, 19, 64, 64)).shape == (1, 3, 64, 64)


@pytest.mark.slow
def test_resume_continues_step_optimizer_and_stream(smoke_run, tmp_path):
    start = smoke_run / "checkpoints" / "step000002.ckpt"
    result = run_cli("worldmodels.train", "debug=smoke", "logger=csv", f"ckpt_path={start}", "trainer.max_steps=6",
                     f"hydra.run.dir={tmp_path / 'resumed'}")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["global_step"] == 6
    adam_steps = {int(s["step"]) for s in resumed["optimizer_states"][0]["state"].values()}
    assert adam_steps == {6}  # 2 steps before the checkpoint + 4 after it: the optimizer state came along
    first = torch.load(start, weights_only=False)
    assert resumed["BreakoutDataModule"]["generation"] > first["BreakoutDataModule"]["generation"]


def test_nan_loss_stops_with_a_clear_message():
    module = build_module(validate(compose_config(["debug=smoke"])), {})
    module.net.head.bias.data.fill_(float("nan"))
    batch = {"context": torch.zeros(2, 4, 64, 64, 3, dtype=torch.uint8), "action": torch.zeros(2, dtype=torch.long),
             "target": torch.zeros(2, 64, 64, 3, dtype=torch.uint8)}
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 0: lower module.optim.lr"):
        module.training_step(batch, 0)


EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


# What each task's data shrinks to in a one-batch test (the flappy data comes from the scripted stand-in player).
ONE_BATCH_DATA = {
    "breakout": ["data.games_per_worker=2", "data.warmup_steps=1"],
    "flappy": ["data.window_frames=10", "data.collector.policy=heuristic", "data.collector.episodes=8",
               "data.collector.max_frames=100", "data.collector.workers=0", "data.collector.eval_episodes=1",
               "data.collector.val_fraction=0.25"],
    "gym_pixels": ["data.train_episodes=1", "data.val_episodes=1", "data.max_steps=16"],
    "gym_tokens": ["data.val_episodes=1", "data.window_frames=8"],  # on a recording made in the test
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_one_batch(experiment, tmp_path, monkeypatch):
    # The experiment's own model and objective; only the hardware, batch and data shrink to fit a CPU test.
    run = validate(compose_config([f"experiment={experiment}"]))
    task = run.task_name
    if task == "gym_tokens":  # its data is a local recording: make a small one of the game under the dataset's id
        pytest.importorskip("minari", reason="the minari extra is not installed")
        monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
        record_main(["CartPole-v1", "--dataset-id", run.data.dataset_id, "--observations", "state", "--episodes", "4",
                     "--player", "random"])
    overrides = [f"experiment={experiment}", "trainer.accelerator=cpu", "trainer.devices=1",
                 "trainer.precision=32-true", "trainer.strategy=auto", "trainer.max_steps=1",
                 "trainer.val_check_interval=1", "trainer.enable_progress_bar=false", "data.batch_size=2",
                 "data.num_workers=0", "data.val_batches=1", *ONE_BATCH_DATA[task],
                 "logger=none", "callbacks.samples.enabled=false", "callbacks.rollout.enabled=false",
                 "callbacks.onnx_export.enabled=false", "run_test=false"]
    assert np.isfinite(train(compose_config(overrides, output_dir=str(tmp_path))))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_learning_rate_warms_up_then_decays_to_the_floor():
    from worldmodels.core.module import lr_factor

    warm = [lr_factor(s, 10, 100, 0.1) for s in range(10)]
    assert warm == sorted(warm) and warm[0] == pytest.approx(0.1) and warm[-1] == pytest.approx(1.0)
    decay = [lr_factor(s, 10, 100, 0.1) for s in range(10, 101)]
    assert decay == sorted(decay, reverse=True)
    assert decay[-1] == pytest.approx(0.1) and lr_factor(500, 10, 100, 0.1) == pytest.approx(0.1)


def test_ema_weights_follow_the_live_weights_and_are_used_for_inference():
    module = build_module(validate(compose_config(["debug=smoke", "module.optim.ema_decay=0.9"])), {})
    assert module.inference_net is module.ema_net
    live, ema = module.net.stem.weight, module.ema_net.stem.weight
    before = ema.detach().clone()
    with torch.no_grad():
        live.add_(1.0)
    module.on_train_batch_end(None, None, 0)
    assert torch.allclose(ema, before + 0.1 * 1.0, atol=1e-6)  # moved 10% of the way (decay 0.9)
    assert "ema_net.stem.weight" in module.state_dict()  # so checkpoints and exports carry it


@pytest.mark.slow
def test_breakout_game_recipe_and_unrolled_rows_train_end_to_end(tmp_path):
    """The shipped recipe's levers (palette head with one ball, event-rich messy rows, warm-start rows) and the
    unrolled loss through the real trainer."""
    run_dir = tmp_path / "run"
    result = run_cli("worldmodels.train", "experiment=breakout_game", "debug=smoke", "data.unroll=2", "logger=csv",
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((run_dir / "export" / "breakout.json").read_text())
    config = manifest["training_config"]
    assert config["data"]["unroll"] == 2 and config["data"]["event_keep"] == 0.1
    assert manifest["model"]["output"] == "palette" and manifest["model"]["one_ball"] is True
    assert manifest["metrics"]["global_step"] == 4 and math.isfinite(manifest["metrics"]["val/loss"])


@pytest.mark.slow
def test_fast_denoiser_trains_exports_and_evaluates(tmp_path):
    # model=fast_denoiser goes through the same run as the seed net: checkpoint, ONNX with parity, evaluate.
    run_dir = tmp_path / "run"
    result = run_cli("worldmodels.train", "debug=smoke", "model=fast_denoiser", "logger=csv",
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((run_dir / "export" / "breakout.json").read_text())
    assert manifest["model"]["name"] == "fast_denoiser" and manifest["model"]["widths"] == [4, 8, 8]
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    out = tmp_path / "eval.json"
    result = run_cli("worldmodels.evaluate", str(run_dir / "export" / "breakout.onnx"), "--games", "2",
                     "--horizon", "2", "--one-step", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(out.read_text())["one_step"]["all"][MODEL]["psnr"] > 10
