"""W&B group, name and tags of a run: from the sweep it belongs to (pure function), and in a real offline sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import run_cli
from worldmodels.core.config import config_dir
from worldmodels.core.run_identity import swept_keys, wandb_run_identity
from worldmodels.core.schema import ConfigError
from worldmodels.tasks import validate


def job(*overrides: str, multirun: bool = True, sweep_dir: str = "multirun/widths"):
    """The validated run and the `hydra` node of one job, as Hydra composes them."""
    hydra_overrides = [f"hydra.mode={'MULTIRUN' if multirun else 'RUN'}", f"hydra.sweep.dir={sweep_dir}",
                       "hydra.job.num=3", "paths.root_dir=.", "paths.output_dir=."]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, *hydra_overrides], return_hydra_config=True)
    return validate(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])), cfg.hydra


def test_multirun_job_is_grouped_by_sweep_named_by_swept_overrides_tagged_by_task():
    run, hydra_cfg = job("experiment=breakout_cpu", "debug=smoke", "model.width=16")
    identity = wandb_run_identity(run, hydra_cfg, swept={"model.width"})
    assert identity == {"group": "widths", "name": "model.width=16", "tags": ["breakout", "breakout_cpu"]}


def test_unknown_sweep_names_the_job_by_all_its_overrides():
    run, hydra_cfg = job("debug=smoke", "model.width=16")
    assert wandb_run_identity(run, hydra_cfg)["name"] == hydra_cfg.job.override_dirname
    assert wandb_run_identity(run, hydra_cfg, swept={"seed"})["name"] == "job3"  # nothing of it swept


def test_single_run_keeps_wandb_defaults():
    run, hydra_cfg = job("task=flappy", multirun=False)
    assert wandb_run_identity(run, hydra_cfg, swept=None) == {"group": None, "name": None, "tags": ["flappy"]}
    assert wandb_run_identity(run, None) == {"group": None, "name": None, "tags": ["flappy"]}  # outside Hydra


def test_configured_group_name_and_tags_win():
    run, hydra_cfg = job("logger.group=mine", "logger.run_name=wide", "logger.tags=[ablation,breakout]")
    identity = wandb_run_identity(run, hydra_cfg, swept={"model.width"})
    assert identity == {"group": "mine", "name": "wide", "tags": ["breakout", "ablation"]}


def test_swept_keys_come_from_the_sweeps_multirun_yaml(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    OmegaConf.save({"hydra": {"overrides": {"task": ["debug=smoke", "model.width=8,16", "seed=range(0,3)"]},
                              "sweeper": {"params": {"module.optim.lr": "1e-3,1e-4"}}}}, sweep / "multirun.yaml")
    _, hydra_cfg = job(sweep_dir=str(sweep))
    assert swept_keys(hydra_cfg) == {"model.width", "seed", "module.optim.lr"}
    assert swept_keys(job(sweep_dir=str(tmp_path / "none"))[1]) is None  # no multirun.yaml: unknown
    assert swept_keys(job(multirun=False)[1]) is None


@pytest.mark.parametrize("override, message", [
    ("logger.tags=['']", "logger.tags[0]: must be 1 to 64 characters"),
    (f"logger.group={'g' * 129}", "logger.group: must be null (automatic) or 1 to 128 characters"),
    ("logger.run_name=''", "logger.run_name: must be null (automatic) or 1 to 128 characters"),
])
def test_logger_identity_is_validated(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        job(override)


@pytest.mark.slow
def test_real_sweep_groups_wandb_runs_and_compare_lists_the_failed_job(tmp_path):
    """Two joblib jobs, W&B offline: one trains, one fails validation; compare tables both (~40 s)."""
    sweep = tmp_path / "sweep"
    result = run_cli("worldmodels.train", "-m", "debug=smoke", "logger=wandb", "model.width=8,-3",
                     "callbacks.onnx_export.enabled=false", "hydra/launcher=parallel", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    (record_file,) = (sweep / "0" / "wandb").glob("offline-run-*/run-*.wandb")
    records = record_file.read_bytes()
    for needle in (b"sweep", b"model.width=8", b"breakout"):  # group, run name, tag
        assert needle in records, needle
    assert "W&B group sweep, run name model.width=8, tags ['breakout']" in (sweep / "0" / "train.log").read_text()
    assert (sweep / "1" / "failed.json").is_file()

    compared = run_cli("worldmodels.compare", str(sweep), "--metrics", "val/loss", timeout=120)
    assert compared.returncode == 0, compared.stderr
    table = Path(sweep / "compare.md").read_text()
    assert "| run | model.width | val/loss | status |" in table
    assert "| 1 | -3 | - | failed: model.width: must be > 0 (got -3) |" in table
    assert (sweep / "compare.png").stat().st_size > 1000
