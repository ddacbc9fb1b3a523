"""Sweeps: every launcher and sweeper config composes (SLURM cannot run here, so composition is what is tested); a
real 3-job joblib multirun of debug=smoke in which one job fails finishes, labels each job's lines, reports the
failure and the best job and `compare` tables all three; a real 2-trial Optuna search gets the metric `train`
returns."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from tests.conftest import run_cli
from worldmodels.core.config import config_dir
from worldmodels.tasks import validate

pytestmark = pytest.mark.slow  # every test runs a sweep

LAUNCHERS = {
    "basic": "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "joblib": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "parallel": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
    "slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
}


def compose_multirun(overrides: list[str]):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=["paths.root_dir=.", "paths.output_dir=.", *overrides],
                       return_hydra_config=True)


def job(cfg):
    """The job's config without the `hydra` node (whose per-job values exist only inside a real run)."""
    return validate(OmegaConf.create({k: v for k, v in cfg.items() if k != "hydra"}))


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_every_launcher_composes(launcher):
    cfg = compose_multirun([f"hydra/launcher={launcher}", "experiment=breakout_cpu"])
    assert cfg.hydra.launcher._target_ == LAUNCHERS[launcher]
    get_class(cfg.hydra.launcher._target_)  # the plugin is installed, not only named
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.timeout_min == 240
    job(cfg)  # the job's own config is valid whichever launcher runs it


@pytest.mark.parametrize("sweep, sweeper, params", [
    ("breakout_optuna", "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
     {"module.optim.lr", "module.change_weight", "module.warm_start_fraction"}),
    ("flappy_kernel", "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
     {"module.soft_bin_width", "module.done_weight"}),
])
def test_every_sweep_config_composes(sweep, sweeper, params):
    cfg = compose_multirun([f"sweep={sweep}"])
    assert cfg.hydra.sweeper._target_ == sweeper
    get_class(cfg.hydra.sweeper._target_)
    assert set(cfg.hydra.sweeper.params) == params
    run = job(cfg)
    assert run.optimized_metric == "val/loss"
    assert cfg.hydra.callbacks.report_sweep._target_ == "worldmodels.core.sweep.ReportSweep"
    assert cfg.hydra.callbacks.label_job_output._target_ == "worldmodels.core.sweep.LabelJobOutput"


def test_joblib_multirun_survives_a_failed_job_and_compare_tables_all(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("worldmodels.train", "-m", "debug=smoke", "logger=csv", "model.width=8,16,-3",
                     "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = {p.name: p for p in sweep.iterdir() if p.is_dir()}
    assert set(jobs) == {"0", "1", "2"}
    losses = {}
    for good, width in (("0", 8), ("1", 16)):
        summary = json.loads((jobs[good] / "summary.json").read_text())
        losses[good, width] = summary["metrics"]["val/loss"]
        assert losses[good, width] > 0 and (jobs[good] / "export" / "breakout.onnx").is_file()
    failed = json.loads((jobs["2"] / "failed.json").read_text())
    assert failed["error"] == "model.width: must be > 0 (got -3)"
    assert not (jobs["2"] / "summary.json").exists()
    log = result.stdout + result.stderr
    assert "1 job(s) of the sweep failed" in log and "model.width: must be > 0 (got -3)" in log
    (best, width), loss = min(losses.items(), key=lambda item: item[1])
    closing = result.stdout.strip().splitlines()[-1]
    assert closing.endswith(f"sweep done: 3 jobs, 1 failed; best val/loss = {loss:.5g} (job {best}: "
                            f"model.width={width}) in {sweep / best}"), closing
    # Two jobs at once write to one terminal: every line of a job names it; the rest are the sweep's own ([HYDRA]).
    lines = [line for line in log.splitlines() if line.strip()]
    labelled = [re.match(r"\[job (\d)\] ", line) for line in lines]
    assert all(m or "[HYDRA]" in line for m, line in zip(labelled, lines, strict=True)), log
    assert {m.group(1) for m in labelled if m} == {"0", "1", "2"}
    assert "litlogger" not in log  # Lightning's advert for its cloud logger, in the joblib workers too

    compared = run_cli("worldmodels.compare", str(sweep), "--out", str(tmp_path / "cmp"))
    assert compared.returncode == 0, compared.stderr[-3000:]
    table = (tmp_path / "cmp" / "compare.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 3, table
    assert any("model.width=8" in r or "| 8 |" in r for r in rows) and any("16" in r for r in rows)
    assert any("failed" in r and "must be > 0" in r for r in rows), table
    assert f"Optimized: val/loss (lower is better); best: {sweep / best} (" in table
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 1000


def test_optuna_search_gets_the_metric_train_returns(tmp_path):
    sweep = tmp_path / "optuna"
    result = run_cli("worldmodels.train", "-m", "debug=smoke", "logger=none", "callbacks.onnx_export.enabled=false",
                     "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.seed=0",
                     "module.optim.lr=tag(log, interval(0.0001, 0.01))",
                     f"hydra.sweep.dir={sweep}", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    summaries = [json.loads(p.read_text())["metrics"]["val/loss"] for p in sweep.glob("*/summary.json")]
    assert len(summaries) == 2
    assert best["best_value"] == pytest.approx(min(summaries), rel=1e-6)
    (closing,) = [line for line in result.stdout.splitlines() if "sweep done:" in line]
    assert f"sweep done: 2 jobs, 0 failed; best val/loss = {min(summaries):.5g} (job " in closing, closing
    assert 0.0001 <= best["best_params"]["module.optim.lr"] <= 0.01
