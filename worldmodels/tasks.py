"""The task registry: task name -> the record its folder declares (`worldmodels.core.task.Task`), and what needs
the whole run: registering every config schema, validating a composed config, building a run's parts, exporting,
loading a checkpoint.

train.py, export.py and evaluate.py go through here, so adding a task means adding its folder (with its `task.py`
and its light `config.py`) and one line to `TASKS`. Checkpoints carry their resolved config, so `load_checkpoint`
rebuilds the module with no Hydra composition.

Light to import (no torch or Lightning at the top): Hydra imports it to register the schemas before it composes.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from worldmodels.core.config import RUN_SCHEMAS, RunConfig, store_schemas
from worldmodels.core.errors import UserError
from worldmodels.core.schema import ConfigError, build
from worldmodels.core.task import Task

if TYPE_CHECKING:
    import lightning as L

    from worldmodels.core.module import WorldModelModule

# name -> its package: `<package>.task` holds its `TASK` (imported on first use, so a run loads only its own task's
# code), `<package>.config` its schemas (`SCHEMAS`, light: registered before every composition).
TASKS = {
    "breakout": "worldmodels.breakout",
    "flappy": "worldmodels.flappy",
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"task_name: unknown task {name!r} (known: {', '.join(TASKS)})")
    return importlib.import_module(f"{TASKS[name]}.task").TASK


def register_schemas() -> None:
    """Every schema into Hydra's ConfigStore, for conf/'s YAML to extend: the run's as `schema/<name>`
    (`schema/trainer`), each task's as `schema/<group>/<name>` (`schema/model/tiny_denoiser`). Hydra runs this through
    `hydra_plugins/worldmodels_schemas` whenever it starts, before any composition; of the tasks it imports only
    their light `config` modules."""
    store_schemas(RUN_SCHEMAS)
    for package in TASKS.values():
        for group, schemas in importlib.import_module(f"{package}.config").SCHEMAS.items():
            store_schemas(schemas, f"schema/{group}")


def validate(cfg: DictConfig | dict) -> RunConfig:
    """The composed config as typed dataclasses, or a ConfigError naming the first bad key."""
    raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    raw.pop("hydra", None)
    run = build(raw, RunConfig, "")
    task = get_task(run.task_name)
    for group, schemas in (("model", task.models), ("data", task.data), ("module", task.modules)):
        section = getattr(run, group)
        if not isinstance(section, dict):
            raise ConfigError(f"{group}: missing; pick one with {group}=<{'|'.join(schemas)}>")
        name = section.get("name")
        if name not in schemas:
            raise ConfigError(f"{group}.name: unknown {group} {name!r} for task {task.name} "
                              f"(known: {', '.join(schemas)})")
        setattr(run, group, build(section, schemas[name], group))
    task.check(run)
    return run


def build_datamodule(run: RunConfig) -> L.LightningDataModule:
    return get_task(run.task_name).build_datamodule(run)


def build_module(run: RunConfig, run_config: dict) -> WorldModelModule:
    task = get_task(run.task_name)
    return task.build_module(run, task.build_net(run), run_config)


def task_callbacks(run: RunConfig) -> list[L.Callback]:
    """What the task adds to the shared callbacks (media)."""
    return get_task(run.task_name).callbacks(run)


def export_module(module: WorldModelModule, run: RunConfig, out_dir: str | Path, name: str | None = None,
                  tolerance: float = 1e-4, metrics: dict | None = None) -> tuple[Path, Path, float]:
    """Export a trained LightningModule of any task (its EMA weights when it has them): (onnx, manifest, max diff)."""
    return get_task(run.task_name).export(module, run, Path(out_dir), name or run.task_name, tolerance, metrics)


def load_checkpoint(path: str | Path) -> tuple[RunConfig, WorldModelModule]:
    """Rebuild the LightningModule a checkpoint was trained with, weights loaded, in eval mode on the CPU."""
    import torch  # heavy (seconds): kept off the registry's import, which every composition pays for

    from worldmodels.core.module import CHECKPOINT_KEY  # imports Lightning: as above

    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise UserError(f"{path} is not a readable checkpoint ({type(err).__name__}); pick another .ckpt") from err
    if CHECKPOINT_KEY not in checkpoint:
        raise UserError(f"{path} was not written by worldmodels.train (no '{CHECKPOINT_KEY}' entry)")
    run_config = checkpoint[CHECKPOINT_KEY]["config"]
    run = validate(run_config)
    module = build_module(run, run_config)
    module.load_state_dict(checkpoint["state_dict"])
    module.export_extras = checkpoint[CHECKPOINT_KEY].get("extras", {})
    return run, module.eval()
