"""Configuration: every config composes and validates; bad input stops a run with one line naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import run_cli
from worldmodels.core.config import compose_config, config_dir
from worldmodels.core.schema import ConfigError
from worldmodels.tasks import validate

CONF = config_dir()
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def composed(*overrides: str):
    return compose_config(overrides)


def test_config_dir_is_the_checkout_conf():
    assert CONF == Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize("overrides", [
    [], ["trainer=gpu"], ["trainer=ddp"], ["logger=csv"], ["logger=none"], ["data=breakout_messy"],
    ["debug=smoke"], ["task=flappy"], ["task=flappy", "debug=smoke"], ["task=flappy", "trainer=ddp"],
    *[[f"experiment={name}"] for name in EXPERIMENTS],
])
def test_every_config_composes_and_validates(overrides):
    run = validate(composed(*overrides))
    expected = "flappy" if any("flappy" in o for o in overrides) else "breakout"
    assert run.task_name == expected
    widths = run.model.widths if run.model.name == "fast_denoiser" else [run.model.width]
    assert min(widths) > 0
    if overrides == ["experiment=breakout_fast"]:
        assert run.model.name == "fast_denoiser"


def test_group_choices_reach_the_config():
    assert validate(composed("trainer=ddp")).trainer.strategy == "ddp"
    assert validate(composed("trainer=gpu")).trainer.precision == "bf16-mixed"
    assert validate(composed("data=breakout_messy")).data.policy.miss_rate > 0
    smoke = validate(composed("debug=smoke"))
    assert smoke.trainer.max_steps < 10 and smoke.model.width < 16
    flappy_smoke = validate(composed("task=flappy", "debug=smoke"))  # the task's own shrink is picked too
    assert flappy_smoke.model.layers == 1 and flappy_smoke.data.collector.policy == "heuristic"


def test_parallel_launcher_composes():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=parallel"], return_hydra_config=True)
    assert "JoblibLauncher" in cfg.hydra.launcher._target_
    assert cfg.hydra.launcher.n_jobs == 2


@pytest.mark.parametrize("overrides, message", [
    (["model.width=-3"], "model.width: must be > 0"),
    (["module.sigma_min=2.0"], "module.sigma_min: must be < sigma_max"),
    (["module.sampler.sigma_min=1.5"], "module.sampler.sigma_min: must be < sigma_max"),
    (["data.games_per_worker=30"], "data.games_per_worker: must be a positive multiple of batch_size"),
    (["data.policy.miss_rate=1.5"], "data.policy.miss_rate: must be in [0, 1]"),
    (["+model.widht=3"], "model.widht: unknown key"),
    (["model.width=wide"], "model.width: expected int"),
    (["trainer.max_steps=0"], "trainer.max_steps: must be > 0"),
    (["logger.mode=sometimes"], "logger.mode: must be auto, online or offline"),
    (["task=flappy", "model.width=102"], "model.width: must be a multiple of heads=4"),
    (["task=flappy", "data.collector.mix.ppo=-1"], "data.collector.mix"),
])
def test_validation_names_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        validate(composed(*overrides))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("override, message", [
    ("model.width=-3", "error: model.width: must be > 0 (got -3)"),
    ("model.widht=3", "error: model.widht: unknown key"),
    ("model.width=wide", "error: model.width: expected int"),
    ("task=nope", "error: In 'train': Could not find 'task/nope' (available: breakout, flappy)"),
])
def test_cli_bad_config_is_one_line(tmp_path, override, message):
    result = run_cli("worldmodels.train", override, f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_checkpoint_config_round_trips_through_validate():
    cfg = composed("debug=smoke")
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert validate(plain) == validate(cfg)


def test_installed_wheel_finds_its_configs(tmp_path):
    # Build the wheel, unpack it, and compose from the unpacked package: no checkout conf/ next to it.
    root = Path(__file__).resolve().parents[2]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(root), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("worldmodels-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    probe = ("from worldmodels.core.config import compose_config, config_dir; "
             "print(config_dir(), compose_config().task_name)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [str(tmp_path / "site" / "worldmodels" / "conf"), "breakout"]
