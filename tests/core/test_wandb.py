"""W&B: which server's key counts, the training run's id, job_type and model artifact, resume into the same W&B run,
and `evaluate --wandb`. Offline throughout (no network here): each test reads what the offline run recorded in its
`run-<id>.wandb` file, the transaction log `wandb sync` uploads."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import run_cli
from worldmodels import evaluate
from worldmodels.core.callbacks import OnnxExport
from worldmodels.core.config import CHECKPOINT_KEY, OnnxExportConfig, compose_config
from worldmodels.core.loggers import build_logger, wandb_api_key_configured, wandb_offline
from worldmodels.core.schema import ConfigError
from worldmodels.tasks import validate

ROOT = Path(__file__).resolve().parents[2]
KEY = "k" * 40  # the shape of a real API key: wandb checks it


def wandb_records(run_dir: Path, kind: str) -> list:
    """The records of one kind (`run`, `artifact`, `summary`, `files`, ...) in the offline W&B run under `run_dir`.

    The file is a LevelDB-style log (what wandb's Go core writes): a 7-byte header, then 32 KiB blocks of chunks,
    each `<crc32, length, type>` + bytes; types 1 (full) or 2/3/4 (first/middle/last) make up one protobuf Record.
    Stops this process's W&B service first: `finish()` can return before the service has written the file.
    """
    import wandb
    from wandb.proto import wandb_internal_pb2

    wandb.teardown()

    (path,) = run_dir.glob("offline-run-*/run-*.wandb")
    data, block, records, chunk = path.read_bytes(), 32768, [], b""
    assert data[:4] == b":W&B"
    pos = 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, chunk_type = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = chunk + data[pos + 7:pos + 7 + length], pos + 7 + length
        if chunk_type in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            chunk = b""
            if record.WhichOneof("record_type") == kind:
                records.append(getattr(record, kind))
    return records


def offline_run_id(run_dir: Path) -> str:
    (offline,) = run_dir.glob("offline-run-*")
    return offline.name.rsplit("-", 1)[1]


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """No WANDB_* variable, no netrc, no settings of this machine's user; wandb's settings reloaded per test."""
    import wandb

    for name in [n for n in os.environ if n.startswith("WANDB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    wandb.teardown()  # the settings are loaded once per process: see this test's environment
    yield
    wandb.teardown()


def write_netrc(tmp_path: Path, machine: str) -> None:
    (tmp_path / "netrc").write_text(f"machine {machine}\n  login user\n  password {KEY}\n")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network call")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("netrc_host, base_url, configured", [
    ("wandb.example.com", "https://wandb.example.com", True),  # a self-hosted server and its netrc entry
    ("api.wandb.ai", "https://wandb.example.com", False),  # a key for another server does not count
    ("api.wandb.ai", None, True),  # the public server
    (None, None, False),
], ids=["self_hosted", "key_of_another_host", "public", "no_netrc"])
def test_a_key_counts_for_the_server_wandb_talks_to(wandb_env, no_network, tmp_path, monkeypatch, netrc_host,
                                                     base_url, configured):
    if netrc_host:
        write_netrc(tmp_path, netrc_host)
    if base_url:
        monkeypatch.setenv("WANDB_BASE_URL", base_url)
    assert wandb_api_key_configured() is configured
    assert wandb_offline("auto") is not configured


def test_wandb_api_key_and_wandb_mode_are_wandbs_own(wandb_env, no_network, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.com")
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    assert wandb_api_key_configured() and not wandb_offline("auto")
    monkeypatch.setenv("WANDB_MODE", "offline")
    wandb.teardown()
    assert wandb_offline("auto") and not wandb_offline("online")


def test_logger_id_is_accepted_and_checked():
    assert validate(compose_config(["logger.id=my-run_2.b"])).logger.id == "my-run_2.b"
    assert validate(compose_config([])).logger.id is None
    with pytest.raises(ConfigError, match="logger.id: must be null"):
        validate(compose_config(["logger.id=a/b"]))


def job(tmp_path: Path, *overrides: str):
    cfg = compose_config(["logger=wandb", "logger.mode=offline", *overrides], output_dir=str(tmp_path / "run"))
    return validate(cfg), OmegaConf.to_container(cfg, resolve=True)


def fake_checkpoint(tmp_path: Path, logger: dict) -> Path:
    """A checkpoint as far as the resume reads it: the stored config."""
    path = tmp_path / "old.ckpt"
    torch.save({CHECKPOINT_KEY: {"format": 1, "config": {"task_name": "breakout", "logger": logger}}}, path)
    return path


def test_a_resume_takes_the_wandb_run_of_its_checkpoint_and_logger_id_wins(wandb_env, tmp_path):
    ckpt = fake_checkpoint(tmp_path, {"name": "wandb", "id": "firstrun", "group": "sweep-a"})
    run, run_config = job(tmp_path, f"ckpt_path={ckpt}")
    assert build_logger(run, run_config).version == "firstrun"
    # the module's config (so its checkpoints and its export) records the run it logs to
    assert run_config["logger"]["id"] == "firstrun" and run_config["logger"]["group"] == "sweep-a"

    run, run_config = job(tmp_path, f"ckpt_path={ckpt}", "logger.id=mine")
    assert build_logger(run, run_config).version == "mine" and run_config["logger"]["id"] == "mine"

    run, run_config = job(tmp_path, f"ckpt_path={fake_checkpoint(tmp_path, {'name': 'csv'})}")
    new_id = build_logger(run, run_config).version
    assert new_id and new_id != "firstrun" and run_config["logger"]["id"] == new_id


def test_each_job_of_a_sweep_that_resumes_starts_its_own_wandb_run(wandb_env, tmp_path, monkeypatch):
    """Under -m every job resuming the same checkpoint would otherwise log into the one W&B run."""
    from tests.core.test_run_identity import job as sweep_job

    ckpt = fake_checkpoint(tmp_path, {"name": "wandb", "id": "firstrun"})
    monkeypatch.setattr("worldmodels.core.loggers.hydra_job_config", lambda: sweep_job()[1])
    run, run_config = job(tmp_path, f"ckpt_path={ckpt}")
    run_id = build_logger(run, run_config).version
    assert run_id != "firstrun" and run_config["logger"] == {**run_config["logger"], "id": run_id, "group": "widths"}


def test_a_training_run_is_a_train_job_without_warnings_or_none_in_its_log_line(wandb_env, tmp_path, caplog, capfd):
    import wandb

    run, run_config = job(tmp_path)
    with caplog.at_level(logging.INFO, logger="worldmodels.train"):
        logger = build_logger(run, run_config)
    experiment = logger.experiment
    wandb.finish()
    assert f"logger: W&B tags ['breakout'], id {experiment.id}" in caplog.messages  # no "group None, run name None"
    assert "anonymous" not in capfd.readouterr().err  # Lightning's anonymous=None made wandb warn on every run
    (record,) = wandb_records(tmp_path / "run" / "wandb", "run")
    assert (record.run_id, record.job_type) == (experiment.id, "train") == (run_config["logger"]["id"], "train")


def test_the_export_is_logged_as_a_model_artifact(wandb_env, tmp_path):
    import wandb

    run, run_config = job(tmp_path)
    logger = build_logger(run, run_config)
    manifest = {"task": "breakout", "name": "breakout", "onnx": "breakout.onnx", "format_version": 1,
                "parity": {"max_abs_diff": 1e-6}, "metrics": {"val/loss": 0.5}, "training_config": run_config}

    def export(module, out_dir, tolerance, metrics):
        out_dir.mkdir(parents=True)
        (out_dir / "breakout.onnx").write_bytes(b"graph")
        (out_dir / "breakout.json").write_text(json.dumps(manifest))
        return out_dir / "breakout.onnx", out_dir / "breakout.json", 0.0

    trainer = SimpleNamespace(is_global_zero=True, callback_metrics={}, global_step=4, loggers=[logger])
    OnnxExport(OnnxExportConfig(), export, tmp_path / "run" / "export").on_fit_end(trainer, None)
    run_id = logger.experiment.id
    wandb.finish()
    (artifact,) = wandb_records(tmp_path / "run" / "wandb", "artifact")
    assert (artifact.name, artifact.type) == (f"breakout-{run_id}", "model")
    assert sorted(entry.path for entry in artifact.manifest.contents) == ["breakout.json", "breakout.onnx"]
    metadata = json.loads(artifact.metadata)
    assert metadata["parity"] == {"max_abs_diff": 1e-6} and metadata["graphs"] == ["breakout.onnx"]


def evaluate_with_wandb(model: Path, out: Path, *flags: str) -> None:
    evaluate.main([str(model), "--games", "1", "--horizon", "1", "--one-step", "1", "--players", "random", "--out",
                   str(out), "--wandb", *flags])


def config_values(run_record) -> dict:
    return {item.key: json.loads(item.value_json) for item in run_record.config.update}


def test_evaluate_logs_its_results_to_an_evaluate_run(wandb_env, tmp_path, capsys):
    model = tmp_path / "model" / "breakout.onnx"
    shutil.copytree(ROOT / "models" / "breakout_tiny", model.parent)
    evaluate_with_wandb(model, tmp_path / "eval.json", "--wandb-project", "evals")
    assert "logged to W&B run" in capsys.readouterr().out
    result = json.loads((tmp_path / "eval.json").read_text())
    (record,) = wandb_records(tmp_path / "wandb", "run")
    assert (record.job_type, record.project) == ("evaluate", "evals")
    config = config_values(record)
    assert config["model"] == str(model) and config["training_run"] is None  # trained with the CSV logger
    summary = {"/".join(item.nested_key) or item.key: json.loads(item.value_json)
               for update in wandb_records(tmp_path / "wandb", "summary") for item in update.update}
    assert summary["one_step/all/model/psnr"] == pytest.approx(result["one_step"]["all"]["model"]["psnr"])
    assert summary["games_per_player"] == 1
    assert "eval.json" in {f.path for files in wandb_records(tmp_path / "wandb", "files") for f in files.files}


@pytest.fixture(scope="module")
def resumed_run(smoke_run, tmp_path_factory) -> Path:
    """`smoke_run` resumed from its last checkpoint for two more steps (W&B offline)."""
    run_dir = tmp_path_factory.mktemp("resumed") / "run"
    result = run_cli("worldmodels.train", "debug=smoke", "logger=wandb", "trainer.max_steps=6",
                     f"ckpt_path={smoke_run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.slow
def test_resume_continues_the_wandb_run_and_logs_its_export(smoke_run, resumed_run):
    run_id = offline_run_id(smoke_run / "wandb")
    assert offline_run_id(resumed_run / "wandb") == run_id
    for run_dir in (smoke_run, resumed_run):
        (record,) = wandb_records(run_dir / "wandb", "run")
        assert (record.run_id, record.job_type) == (run_id, "train")
        (artifact,) = wandb_records(run_dir / "wandb", "artifact")
        assert (artifact.name, artifact.type) == (f"breakout-{run_id}", "model")
        assert sorted(e.path for e in artifact.manifest.contents) == ["breakout.json", "breakout.onnx"]
    assert json.loads(artifact.metadata)["metrics"]["global_step"] == 6
    resumed = torch.load(resumed_run / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)
    assert resumed[CHECKPOINT_KEY]["config"]["logger"]["id"] == run_id  # a second resume continues it too


@pytest.mark.slow
def test_evaluate_links_its_run_to_the_training_run(resumed_run, wandb_env, tmp_path):
    evaluate_with_wandb(resumed_run / "export" / "breakout.onnx", tmp_path / "eval.json")
    (record,) = wandb_records(tmp_path / "wandb", "run")
    assert record.job_type == "evaluate" and record.project == "worldmodels"
    assert config_values(record)["training_run"] == offline_run_id(resumed_run / "wandb")
