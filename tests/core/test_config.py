"""Configuration: every config composes and validates to the values its entry point has always had; the schema
dataclasses are the only place a default is written; bad input stops a run with one line naming the key."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import run_cli
from worldmodels.core.config import RUN_SCHEMAS, compose_config, config_dir
from worldmodels.core.schema import ConfigError
from worldmodels.tasks import TASKS, validate
from worldmodels.train import main as train_main

CONF = config_dir()
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def composed(*overrides: str):
    return compose_config(overrides)


def test_config_dir_is_the_checkout_conf():
    assert CONF == Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize("overrides", [
    [], ["trainer=gpu"], ["trainer=ddp"], ["logger=csv"], ["logger=none"], ["data=breakout_messy"],
    ["debug=smoke"], ["task=flappy"], ["task=flappy", "debug=smoke"], ["task=flappy", "trainer=ddp"],
    ["task=gym_pixels"], ["task=gym_pixels", "debug=smoke"], ["task=gym_pixels", "data=minari", "data.dataset_id=x-v0"],
    ["task=gym_tokens", "data.dataset_id=x-v0", "debug=smoke"],
    *[[f"experiment={name}"] for name in EXPERIMENTS],
])
def test_every_config_composes_and_validates(overrides):
    run = validate(composed(*overrides))
    expected = next((t for t in ("flappy", "gym_pixels", "atari", "tokens") if any(t in o for o in overrides)),
                    "breakout")
    expected = {"atari": "gym_pixels", "tokens": "gym_tokens"}.get(expected, expected)
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


# A few values per entry point, as its run has always used them (the schemas carry the defaults, the YAML only the
# choices, experiments build on each other): a change here changes what that command trains.
PINNED = {
    "": {"model.name": "tiny_denoiser", "model.width": 96, "model.blocks": 14, "data.batch_size": 32,
         "module.optim.lr": 3e-4, "trainer.max_steps": 20000, "logger.name": "wandb", "seed": 0, "run_test": True,
         "optimized_metric": "val/loss", "callbacks.checkpoint.every_n_train_steps": 500},
    "task=flappy": {"model.width": 112, "model.context": 384, "module.optim.lr": 1e-3, "module.done_weight": 5.0,
                    "data.window_frames": 38, "data.collector.episodes": 50000, "data.collector.policy": "ppo",
                    "module.soft_bin_fields": ["bird_y", "pipe_x"]},
    "debug=smoke": {"model.width": 8, "model.blocks": 2, "trainer.max_steps": 4, "data.batch_size": 4,
                    "module.optim.warmup_steps": 1, "callbacks.samples.sigmas": [0.5], "callbacks.rollout.frames": 3},
    "task=flappy debug=smoke": {"model.layers": 1, "model.width": 16, "data.collector.policy": "heuristic",
                                "module.decoding.slide_frames": 2, "module.optim.lr": 1e-3, "trainer.max_steps": 4},
    "debug=smoke model=fast_denoiser": {"model.widths": [4, 8, 8], "model.blocks": [1, 1, 1],
                                        "model.dilations": [1, 2, 4], "trainer.max_steps": 4},
    "experiment=breakout_cpu": {"model.name": "tiny_denoiser", "model.width": 32, "model.blocks": 8,
                                "data.batch_size": 16, "data.policy.random_action_rate": 0.3, "module.optim.lr": 1e-3,
                                "module.sampler.steps": 1, "trainer.max_steps": 1200,
                                "callbacks.checkpoint.every_n_train_steps": 300, "callbacks.rollout.frames": 32},
    "experiment=breakout_fast": {"model.name": "fast_denoiser", "model.widths": [16, 32, 64], "data.batch_size": 16,
                                 "data.policy.random_action_rate": 0.3, "data.unroll": 1, "module.change_weight": 50.0,
                                 "module.optim.lr": 1e-3, "module.sampler.steps": 1, "trainer.max_steps": 3000,
                                 "trainer.val_check_interval": 500, "callbacks.checkpoint.every_n_train_steps": 500,
                                 "callbacks.rollout.frames": 32},
    "experiment=breakout_game": {"model.name": "fast_denoiser", "model.widths": [16, 32, 64], "model.output": "palette",
                                 "model.one_ball": True, "data.batch_size": 16, "data.unroll": 1,
                                 "data.event_keep": 0.1, "data.policy.random_action_rate": 0.3,
                                 "data.policy.miss_rate": 0.25, "data.policy.bad_move_rate": 0.05,
                                 "data.policy.reset_rate": 0.002, "module.change_weight": 50.0,
                                 "module.context_noise": 0.0, "module.warm_start_fraction": 1.0,
                                 "module.sampler.steps": 1, "trainer.max_steps": 10000,
                                 "callbacks.checkpoint.every_n_train_steps": 1000, "model.context_frames": 4,
                                 "model.layout": False},
    "experiment=breakout_game8": {"model.name": "fast_denoiser", "model.context_frames": 8, "model.init_from": None,
                                  "model.output": "palette", "model.one_ball": True, "model.layout": True,
                                  "data.event_keep": 0.1, "data.policy.miss_rate": 0.25,
                                  "module.warm_start_fraction": 1.0, "module.sampler.steps": 1,
                                  "trainer.max_steps": 10000},
    "experiment=breakout_game_seed": {"model.name": "tiny_denoiser", "model.width": 96, "trainer.accelerator": "gpu",
                                      "data.policy.miss_rate": 0.25, "data.event_keep": 0.1,
                                      "module.warm_start_fraction": 1.0, "module.context_noise": 0.0,
                                      "module.change_weight": 50.0, "module.sampler.steps": 1,
                                      "trainer.max_steps": 60000},
    "experiment=breakout_seed": {"model.width": 96, "trainer.accelerator": "gpu", "trainer.precision": "bf16-mixed",
                                 "data.games_per_worker": 512, "trainer.max_steps": 60000, "module.optim.lr": 3e-4},
    "experiment=flappy_cpu": {"task_name": "flappy", "data.batch_size": 32, "data.collector.ppo_timesteps": 600000,
                              "data.collector.episodes": 4000, "trainer.max_steps": 1500,
                              "model.sliding_window": False, "module.soft_bin_fields": ["bird_y", "pipe_x", "gap_y"]},
    "experiment=flappy_fast": {"task_name": "flappy", "model.sliding_window": True, "data.batch_size": 16,
                               "data.window_frames": 76, "data.collector.ppo_timesteps": 600000,
                               "data.collector.episodes": 4000, "trainer.max_steps": 3000,
                               "trainer.val_check_interval": 500, "callbacks.checkpoint.every_n_train_steps": 500,
                               "module.soft_bin_fields": ["bird_y", "pipe_x", "gap_y"]},
    "experiment=flappy_game": {"task_name": "flappy", "model.sliding_window": True, "data.batch_size": 16,
                               "data.window_frames": 76, "data.collector.episodes": 4000, "trainer.max_steps": 5000,
                               "module.soft_bin_width": 1.0, "module.soft_bin_fields": ["bird_y", "pipe_x"],
                               "callbacks.checkpoint.every_n_train_steps": 500},
    "experiment=flappy_bird": {"task_name": "flappy", "model.sliding_window": True, "data.window_frames": 76,
                               "trainer.max_steps": 5000, "module.soft_bin_fields": ["pipe_x"]},
    "experiment=flappy_done": {"task_name": "flappy", "model.sliding_window": True, "trainer.max_steps": 5000,
                               "module.soft_bin_fields": ["bird_y", "pipe_x"], "module.done_weight": 20.0,
                               "module.respawn_weight": 5.0},
    "experiment=flappy_seed": {"trainer.accelerator": "gpu", "data.num_workers": 2, "data.collector.workers": 8,
                               "data.collector.ppo_timesteps": 1000000, "trainer.max_steps": 40000},
    "task=gym_pixels": {"model.name": "fast_denoiser", "data.env_id": "CartPole-v1", "data.frame_size": 64,
                        "data.frame_skip": 1, "data.sticky": 0.0, "data.policy.hold": 0.5, "data.train_episodes": 64},
    "experiment=atari_breakout": {"task_name": "gym_pixels", "model.name": "fast_denoiser",
                                  "data.env_id": "ALE/Breakout-v5", "data.frame_skip": 4, "data.sticky": 0.25,
                                  "data.env_kwargs": {"frameskip": 1, "repeat_action_probability": 0.0},
                                  "data.train_episodes": 300, "data.batch_size": 16, "module.change_weight": 10.0,
                                  "module.context_noise": 0.1,
                                  "module.warm_start_fraction": 0.5, "module.sampler.steps": 1,
                                  "trainer.max_steps": 6000, "callbacks.checkpoint.every_n_train_steps": 1000},
    "task=gym_tokens data.dataset_id=my/game-v0": {"model.name": "token_transformer", "model.context": 384,
                                                   "module.name": "gym_tokens", "module.soft_bin_fields": [],
                                                   "module.optim.lr": 1e-3, "data.fields": [], "data.bins": 64,
                                                   "data.margin": 0.05, "data.window_frames": 32,
                                                   "data.val_episodes": 2},
    "experiment=cartpole_tokens": {"task_name": "gym_tokens", "data.dataset_id": "cartpole/state-v0",
                                   "data.window_frames": 48, "data.val_episodes": 100, "trainer.max_steps": 3000},
    "sweep=flappy_kernel hydra.mode=MULTIRUN": {"data.collector.episodes": 4000, "trainer.max_steps": 500,
                                                "module.respawn_weight": 5.0},
    "sweep=breakout_optuna hydra.mode=MULTIRUN": {"model.width": 32, "module.change_weight": 50.0,
                                                  "trainer.max_steps": 300},
}


def pick(run, key: str):
    for part in key.split("."):
        run = getattr(run, part)
    return run


@pytest.mark.parametrize("overrides", sorted(PINNED))
def test_every_entry_point_keeps_its_values(overrides):
    run = validate(composed(*overrides.split()))
    assert {key: pick(run, key) for key in PINNED[overrides]} == PINNED[overrides]


def test_every_experiment_is_pinned():
    assert sorted(o.split("=")[1] for o in PINNED if o.startswith("experiment=")) == EXPERIMENTS


def schemas() -> dict[str, type]:
    """ConfigStore path (`schema/model/tiny_denoiser`) -> the dataclass stored there."""
    found = {f"schema/{name}": schema for name, schema in RUN_SCHEMAS.items()}
    for package in TASKS.values():
        for group, named in importlib.import_module(f"{package}.config").SCHEMAS.items():
            found.update({f"schema/{group}/{name}": schema for name, schema in named.items()})
    return found


def leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_no_yaml_repeats_its_schemas_default():
    """A YAML that extends a schema states only what differs from it (and its group's `name`); every schema is
    extended by one."""
    by_path, repeated, extended = schemas(), [], set()
    for path in sorted(CONF.rglob("*.yaml")):
        raw = OmegaConf.to_container(OmegaConf.load(path))
        bases = [d.split("@")[0].lstrip("/") for d in raw.pop("defaults", []) if isinstance(d, str)]
        for base in (b for b in bases if b.startswith("schema/")):
            extended.add(base)
            default = OmegaConf.structured(by_path[base])
            repeated += [f"{path.relative_to(CONF)}: {key}" for key, value in leaves(raw)
                         if key != "name" and not key.startswith("hydra.")
                         and OmegaConf.select(default, key, default=object()) == value]
    assert repeated == [] and extended == set(by_path)


def test_registering_the_schemas_imports_no_heavy_module():
    """(gymnasium is light, ~0.25 s, and `import worldmodels` loads it to register the Breakout env id.)"""
    probe = ("import sys, hydra_plugins.worldmodels_schemas; from hydra.core.config_store import ConfigStore; "
             "print(ConfigStore.instance().list('schema/model'), "
             "[m for m in ('torch', 'lightning', 'stable_baselines3', 'onnxruntime', 'pygame') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['fast_denoiser.yaml', 'tiny_denoiser.yaml', 'token_transformer.yaml'] []"


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
    (["model.widht=3"],
     "model.widht: unknown key (known keys: context_frames, init_from, name, width, blocks, dilations)"),
    (["experiment=breakout_fast", "model.width=3"], "model.width: unknown key"),  # the fast net has widths
    (["model.width=wide"], "model.width: expected int, got 'wide'"),
    (["model.width=null"], "model.width: must not be null"),
    (["seed=1.5"], "seed: expected int, got 1.5"),
    (["trainer.enable_progress_bar=maybe"], "trainer.enable_progress_bar: expected bool"),
    (["logger.tags=5"], "logger.tags: expected a list"),
    (["task=nope"], "Could not find 'task/nope' (available: breakout, flappy, gym_pixels, gym_tokens)"),
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


def test_cli_bad_config_is_one_line(tmp_path):
    """The whole command, as a user runs it: a value the schema's own check refuses, found after composition and
    before Hydra starts the run."""
    result = run_cli("worldmodels.train", "model.width=-3", f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: model.width: must be > 0 (got -3)")
    assert not (tmp_path / "run").exists()  # stopped before Hydra made the run's directory


@pytest.mark.parametrize("override, message", [
    ("model.widht=3", "error: model.widht: unknown key"),
    ("model.width=wide", "error: model.width: expected int"),
    ("task=nope",
     "error: In 'train': Could not find 'task/nope' (available: breakout, flappy, gym_pixels, gym_tokens)"),
])
def test_bad_override_stops_before_hydra_runs_in_one_line(tmp_path, monkeypatch, capsys, override, message):
    """Errors of composition stop in `train.main` before Hydra starts a run (in process: no interpreter start-up)."""
    monkeypatch.setattr(sys, "argv", ["worldmodels.train", override, f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as exit_:
        train_main()
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert not (tmp_path / "run").exists()


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
