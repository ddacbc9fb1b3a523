"""The task registry: task name -> the record its folder declares (`worldmodels.core.task.Task`), and what needs
the whole run: registering every config schema, validating a composed config, building a run's parts, exporting,
loading a checkpoint.

train.py, export.py and evaluate.py go through here, so adding a task means adding its folder (with its `task.py`
and its light `config.py`) and one line to `TASKS`. Checkpoints carry their resolved config, so `load_checkpoint`
rebuilds the module with no Hydra composition.

Light to import (no torch or Lightning at the top): Hydra imports it to register the schemas before it composes.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from worldmodels.core.config import CHECKPOINT_KEY, RUN_SCHEMAS, RunConfig, read_checkpoint, store_schemas
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
    "gym_pixels": "worldmodels.pixels",
    "gym_tokens": "worldmodels.gym_tokens",
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"task_name: unknown task {name!r} (known: {', '.join(TASKS)})")
    return importlib.import_module(f"{TASKS[name]}.task").TASK


def task_config(name: str) -> ModuleType:
    """A task's light `config` module: its `SCHEMAS` (group -> name -> schema) and, where declared, `METRICS` (what
    its modules log) and `check(run)` (checks across model, data and module, raising ConfigError)."""
    return importlib.import_module(f"{TASKS[name]}.config")


def register_schemas() -> None:
    """Every schema into Hydra's ConfigStore, for conf/'s YAML to extend: the run's as `schema/<name>`
    (`schema/trainer`), each task's as `schema/<group>/<name>` (`schema/model/tiny_denoiser`). Hydra runs this through
    `hydra_plugins/worldmodels_schemas` whenever it starts, before any composition; of the tasks it imports only
    their light `config` modules."""
    store_schemas(RUN_SCHEMAS)
    for name in TASKS:
        for group, schemas in task_config(name).SCHEMAS.items():
            store_schemas(schemas, f"schema/{group}")


def validate(cfg: DictConfig | dict) -> RunConfig:
    """The composed config as typed dataclasses, or a ConfigError naming the first bad key."""
    raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    raw.pop("hydra", None)
    run = build(raw, RunConfig, "")
    if run.task_name not in TASKS:
        raise ConfigError(f"task_name: unknown task {run.task_name!r} (known: {', '.join(TASKS)})")
    config = task_config(run.task_name)  # light: validation never imports a task's torch code
    for group in ("model", "data", "module"):
        schemas = config.SCHEMAS[group]
        section = getattr(run, group)
        if not isinstance(section, dict):
            raise ConfigError(f"{group}: missing; pick one with {group}=<{'|'.join(schemas)}>")
        name = section.get("name")
        if name not in schemas:
            owner = next((t for t in TASKS if t != run.task_name and name in task_config(t).SCHEMAS.get(group, {})),
                         None)
            if owner is not None:
                raise ConfigError(f"{group}.name: {name!r} belongs to task {owner}, not {run.task_name}; pick "
                                  f"{group}=<{'|'.join(schemas)}>, or task={owner}")
            raise ConfigError(f"{group}.name: unknown {group} {name!r} for task {run.task_name} "
                              f"(known: {', '.join(schemas)})")
        setattr(run, group, build(section, schemas[name], group))
    getattr(config, "check", lambda run: None)(run)  # the task's checks across model, data and module
    check_optimized_metric(run)
    return run


# What the shared training core (`worldmodels.core.module.WorldModelModule`) logs on every step beside the names a
# module's `compute_loss` returns (its task config's `METRICS`): train/loss, train/lr, val/loss, test/loss.
CORE_METRICS = {"train": ("loss", "lr"), "held_out": ("loss",)}
SPLITS = ("train", "val", "test")


def check_optimized_metric(run: RunConfig) -> None:
    """`optimized_metric` names something the run will log: `global_step`, or `<split>/<name>` with a name the
    module logs (when its task config declares `METRICS`), and test/ only when the run tests."""
    metric = run.optimized_metric
    if metric == "global_step":
        return
    split, _, name = metric.partition("/")
    if split not in SPLITS or not name:
        raise ConfigError(f"optimized_metric: must be val/<name>, test/<name>, train/<name> or global_step "
                          f"(got {metric!r})")
    if split == "test" and not run.run_test:
        raise ConfigError(f"optimized_metric: {metric!r} is logged only by the test loop; set run_test=true "
                          f"or optimize a val/ metric")
    declared = getattr(task_config(run.task_name), "METRICS", {}).get(run.module.name)
    if declared is None:
        return  # a module that does not declare its metrics: the prefix is all that can be checked up front
    kind = "train" if split == "train" else "held_out"
    known = (*CORE_METRICS[kind], *declared[kind])
    if name not in known:
        raise ConfigError(f"optimized_metric: module {run.module.name!r} logs no {metric!r} "
                          f"(it logs {', '.join(f'{split}/{k}' for k in known)}, and global_step)")


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


def check_resume(run: RunConfig) -> None:
    """`ckpt_path` (when set) is a checkpoint this run can resume: written by worldmodels.train, for the same task
    and model. Reads only the checkpoint's stored config, before any part of the run is built."""
    if run.ckpt_path is None:
        return
    try:
        stored = read_checkpoint(run.ckpt_path, mmap=True)[CHECKPOINT_KEY]["config"]
    except UserError as err:
        raise ConfigError(f"ckpt_path: {err}") from None
    task_name = stored.get("task_name")
    if task_name != run.task_name:
        raise ConfigError(f"ckpt_path: {run.ckpt_path} is a {task_name!r} checkpoint, this run trains "
                          f"{run.task_name!r}; resume it with task={task_name} or pick a {run.task_name} checkpoint")
    model = (stored.get("model") or {}).get("name")
    if model != run.model.name:
        raise ConfigError(f"ckpt_path: {run.ckpt_path} holds a {model!r} model, this run builds "
                          f"{run.model.name!r}; resume it with model={model} or pick another checkpoint")
    ours, theirs = dataclasses.asdict(run.model), stored["model"]
    differ = [k for k, v in theirs.items() if k in ours and ours[k] != v]
    if differ:
        def pairs(values: dict) -> str:
            return " ".join(f"model.{k}={json.dumps(values[k]).replace(' ', '')}" for k in differ)

        raise ConfigError(f"ckpt_path: {run.ckpt_path} holds a model of another shape ({pairs(theirs)}, this run "
                          f"builds {pairs(ours)}); resume it with {pairs(theirs)} or pick another checkpoint")


def load_checkpoint(path: str | Path) -> tuple[RunConfig, WorldModelModule]:
    """Rebuild the LightningModule a checkpoint was trained with, weights loaded, in eval mode on the CPU."""
    checkpoint = read_checkpoint(path)
    run_config = checkpoint[CHECKPOINT_KEY]["config"]
    model = run_config.get("model", {})
    # The checkpoint's own weights replace the ones its run started from: that export need not be here.
    built = {**run_config, "model": {**model, "init_from": None}} if model.get("init_from") else run_config
    run = validate(built)
    module = build_module(run, run_config)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:  # missing, unexpected or differently shaped tensors
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
        raise UserError(f"{path}: its weights do not fit the model its config describes ({first[:160]}); "
                        f"the file was edited or mixed up, pick another checkpoint") from None
    module.export_extras = checkpoint[CHECKPOINT_KEY].get("extras", {})
    return run, module.eval()
