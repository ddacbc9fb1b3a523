"""The run-level config: trainer, logger, callbacks, paths, the optimizer every task shares, and where the YAML lives.

The dataclasses here and in each task's `config.py` are the single source of every default. Hydra's ConfigStore
holds them as `schema/<name>` (`schema/trainer`) and `schema/<group>/<name>` (`schema/model/tiny_denoiser`); each
YAML under `conf/` extends its schema in its `defaults:` list and states only its own choices, and OmegaConf
type-checks every value and override against the schemas while Hydra composes. `worldmodels.tasks.register_schemas`
fills the store (Hydra calls it through `hydra_plugins/worldmodels_schemas` whenever it starts);
`worldmodels.tasks.validate` then builds these dataclasses (and each part's own schema, picked by the task's record)
from the composed config and runs their range checks. Every problem stops a run at start with one line that names
the key (`compose_config` turns Hydra's and OmegaConf's multi-line errors into one). The schema machinery is
`worldmodels.core.schema`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    ConfigTypeError,
    OmegaConfBaseException,
    ValidationError,
)

from worldmodels.core.errors import UserError
from worldmodels.core.schema import ConfigError, require

# checkpoint[CHECKPOINT_KEY] = {"format": 1, "config": <resolved run config>, "extras": <export_extras>}: what makes
# a checkpoint describe itself (worldmodels.core.module writes it, worldmodels.tasks reads it).
CHECKPOINT_KEY = "worldmodels"


def config_dir() -> Path:
    """The directory holding `train.yaml`: inside the installed package (wheel) or at the checkout's top level."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no conf/train.yaml next to {package}: reinstall the package (pip install -e .)")


def compose_config(overrides: Sequence[str] = (), output_dir: str = ".") -> DictConfig:
    """Compose `train.yaml` outside a Hydra run (tests, benchmarks, notebooks), with `paths` rooted at `.`.

    A bad override or config raises a one-line ConfigError naming the key (`composition_error_line`)."""
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("train", overrides=["paths.root_dir=.", f"paths.output_dir={output_dir}", *overrides])
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(composition_error_line(err)) from None


def register_resolvers() -> None:
    """`${pid:}`, the composing process's id, in run folder names (`conf/train.yaml`): two runs started in the same
    second get separate folders. Cached like Hydra's `${now:}`, so a run and its sweep jobs resolve it once."""
    if not OmegaConf.has_resolver("pid"):
        OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True)


register_resolvers()  # at import: Hydra's plugin (hydra_plugins/worldmodels_schemas) imports this module first


def store_schemas(schemas: Mapping[str, type], group: str = "schema") -> None:
    """Put each schema into Hydra's ConfigStore as `<group>/<name>`, for a YAML's `defaults:` to extend
    (`- /schema/trainer@_here_`): its fields and their defaults, typed."""
    store = ConfigStore.instance()
    for name, schema in schemas.items():
        store.store(group=group, name=name, node=schema)


# OmegaConf's type errors -> what the key expects, worded as `worldmodels.core.schema.build` words its own.
_EXPECTED = (
    (r"could not be converted to Integer", "int"), (r"could not be converted to Float", "float"),
    (r"could not be converted to String", "str"), (r"is not a valid bool|could not be converted to Boolean", "bool"),
    (r"is not a ListConfig, list or tuple|Cannot merge DictConfig with ListConfig", "a list"),
    (r"is not a subclass of|Cannot merge ListConfig with DictConfig|is not a DictConfig", "a mapping"),
)


def composition_error_line(err: BaseException) -> str:
    """One line naming the key from a Hydra composition error: OmegaConf's own (the cause of Hydra's) when there is
    one (a wrong type, an unknown key of a schema; with the YAML it came from when not an override), else Hydra's
    text (`hydra_error_line`)."""
    cause = err
    while cause is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__ or cause.__context__
    full_key = getattr(cause, "full_key", None)
    if cause is None or not full_key:
        return hydra_error_line(str(err))
    source = re.match(r"In '([^']+)':", str(err))
    where = f" (in conf/{source.group(1)}.yaml)" if source else ""
    message = str(getattr(cause, "msg", None) or cause).strip().splitlines()[0]
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        schema = getattr(cause, "object_type", None)
        known = f"known keys: {', '.join(f.name for f in dataclasses.fields(schema))}" \
            if dataclasses.is_dataclass(schema) else "check the spelling; `--cfg job` prints every key"
        return f"{full_key}: unknown key ({known}){where}"
    if "is not Optional" in message:
        return f"{full_key}: must not be null{where}"
    expected = next((name for pattern, name in _EXPECTED if re.search(pattern, message)), None)
    if expected and isinstance(cause, (ValidationError, ConfigTypeError)):
        got = f", got {cause.value!r}" if getattr(cause, "value", None) is not None else ""
        return f"{full_key}: expected {expected}{got}{where}"
    return f"{full_key}: {message}{where}"


def hydra_error_line(message: str) -> str:
    """One line from Hydra's composition error text."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    full_key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), None)
    unknown = re.match(r"Could not override '([^']+)'", lines[0]) if lines else None
    if unknown and "To append to your config" in message:
        return f"{unknown.group(1)}: unknown key (check the spelling; `--cfg job` prints every key)"
    if re.search(r"Could not (find|load) 'schema/", message):
        return (f"{lines[0].rstrip('.')}: the config schemas are not in Hydra's ConfigStore; is "
                "hydra_plugins/worldmodels_schemas installed? (pip install -e . from the checkout)")
    if "Could not find" in message:
        listed = message.split("Available options", 1)[-1].split("Config search path", 1)[0].splitlines()[1:]
        options = [line.strip() for line in listed if line.strip()]
        return f"{lines[0]} (available: {', '.join(options)})" if options else lines[0]
    if full_key:
        return f"{full_key}: {lines[0]}"
    return "; ".join(lines[:2])


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and cosine decay to `min_lr_ratio * lr` at trainer.max_steps (every task's module
    has one: `module.optim`)."""

    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1
    ema_decay: float = 0.0  # 0 turns EMA weights off; e.g. 0.999 keeps a slow average for evaluation and export

    def validate(self, key: str) -> None:
        require(math.isfinite(self.lr) and self.lr > 0, f"{key}.lr", f"must be a finite number > 0 (got {self.lr})")
        require(self.weight_decay >= 0, f"{key}.weight_decay", "must be >= 0")
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), f"{key}.betas",
                f"must be two numbers in [0, 1) (got {self.betas})")
        require(self.warmup_steps >= 0, f"{key}.warmup_steps", "must be >= 0")
        require(0 <= self.min_lr_ratio <= 1, f"{key}.min_lr_ratio", "must be in [0, 1]")
        require(0 <= self.ema_decay < 1, f"{key}.ema_decay", f"must be in [0, 1) (got {self.ema_decay})")


# What lightning.Trainer accepts by name in Lightning 2.x (`TrainerConfig.validate` refuses anything else, so a typo
# stops at start, not after the data and the model are built). Kept here as plain tuples, not read from Lightning,
# so that composing a config never imports it; tests/core/test_bad_input.py checks them against the installed one.
# Precision: `lightning.fabric.connector._PRECISION_INPUT` (its strings, and the ints a YAML may give, as strings).
PRECISIONS = ("32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true", "64-true", "64",
              "transformer-engine", "transformer-engine-float16")
# Strategy: "auto" and `lightning.pytorch.strategies.StrategyRegistry.available_strategies()`.
STRATEGIES = (
    "auto", "single_device", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook",
    "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false",
    "ddp_spawn_find_unused_parameters_true", "ddp_spawn_find_unused_parameters_false",
    "ddp_fork_find_unused_parameters_true", "ddp_fork_find_unused_parameters_false",
    "ddp_notebook_find_unused_parameters_true", "ddp_notebook_find_unused_parameters_false",
    "fsdp", "fsdp_cpu_offload", "deepspeed", "deepspeed_stage_1", "deepspeed_stage_2", "deepspeed_stage_2_offload",
    "deepspeed_stage_3", "deepspeed_stage_3_offload", "deepspeed_stage_3_offload_nvme",
    "xla", "xla_debug", "single_xla", "single_tpu",
)


def devices_problem(devices: Any) -> str | None:
    """Why `devices` is not something lightning.Trainer takes ("auto", a count >= 1, a non-empty list of distinct
    device indices), or None. Lightning's own -1 ("every GPU") is refused: "auto" says the same on every accelerator."""
    if devices == "auto":
        return None
    if isinstance(devices, int) and not isinstance(devices, bool):
        return None if devices >= 1 else f"must be >= 1 or auto (got {devices})"
    if isinstance(devices, list):
        if devices and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices) \
                and len(set(devices)) == len(devices):
            return None
        return f"must be a non-empty list of distinct device indices >= 0 (got {devices})"
    return f"must be auto, a device count >= 1 or a list of device indices (got {devices!r})"


@dataclass
class TrainerConfig:
    """Arguments passed to lightning.Trainer (the subset we support and check)."""

    accelerator: str = "cpu"  # cpu | gpu | auto
    devices: Any = 1  # int or "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn ... (STRATEGIES)
    precision: str = "32-true"  # 32-true | bf16-mixed ... (PRECISIONS)
    max_steps: int = 20000
    val_check_interval: int = 500  # optimizer steps between validations
    gradient_clip_val: float = 1.0
    log_every_n_steps: int = 25
    enable_progress_bar: bool = True
    deterministic: bool = False

    def validate(self, key: str) -> None:
        require(self.max_steps > 0, f"{key}.max_steps", f"must be > 0 (got {self.max_steps})")
        require(self.val_check_interval > 0, f"{key}.val_check_interval", "must be > 0")
        require(self.val_check_interval <= self.max_steps, f"{key}.val_check_interval",
                f"must be <= trainer.max_steps={self.max_steps}, or the run never validates and has no val/ "
                f"metrics (got {self.val_check_interval})")
        require(math.isfinite(self.gradient_clip_val) and self.gradient_clip_val >= 0, f"{key}.gradient_clip_val",
                f"must be a finite number >= 0 (got {self.gradient_clip_val})")
        require(self.num_nodes >= 1, f"{key}.num_nodes", "must be >= 1")
        require(self.accelerator in ("cpu", "gpu", "cuda", "mps", "auto"), f"{key}.accelerator",
                f"unknown accelerator {self.accelerator!r}")
        problem = devices_problem(self.devices)
        require(problem is None, f"{key}.devices", problem or "")
        for name, known in (("precision", PRECISIONS), ("strategy", STRATEGIES)):
            value = getattr(self, name)
            close = difflib.get_close_matches(value, known, n=1)
            require(value in known, f"{key}.{name}", f"unknown {name} {value!r} ("
                    f"{f'did you mean {close[0]}? ' if close else ''}known: {', '.join(known)})")


@dataclass
class LoggerConfig:
    """Which logger records the run: wandb (offline when no API key is configured), csv, or none."""

    name: str = "wandb"
    project: str = "worldmodels"
    mode: str = "auto"  # auto | online | offline (wandb only)
    # wandb only; null = automatic (worldmodels.core.run_identity): under -m the sweep directory's name / the job's
    # swept overrides (model.width=16), otherwise no group / W&B's own name.
    group: str | None = None
    run_name: str | None = None
    tags: list[str] = field(default_factory=list)  # added to the automatic ones: the task, the experiment
    # wandb only: the W&B run to log to (it is continued if it exists). null = the run of the `ckpt_path` being
    # resumed (its checkpoints record it), else a new one. The resolved id is what every checkpoint and export records.
    id: str | None = None

    def validate(self, key: str) -> None:
        require(self.name in ("wandb", "csv", "none"), f"{key}.name", f"must be wandb, csv or none (got {self.name!r})")
        require(self.mode in ("auto", "online", "offline"), f"{key}.mode", "must be auto, online or offline")
        # W&B refuses some punctuation in run ids; the model artifact's name (`<task>-<id>`) allows only these.
        require(self.id is None or re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.id) is not None, f"{key}.id",
                f"must be null (the resumed checkpoint's run, or a new one) or 1 to 64 letters, digits, '-', '_' "
                f"or '.' (got {self.id!r})")
        for field_name in ("group", "run_name"):
            value = getattr(self, field_name)
            require(value is None or 0 < len(value) <= 128, f"{key}.{field_name}",
                    f"must be null (automatic) or 1 to 128 characters (got {value!r})")
        for i, tag in enumerate(self.tags):
            require(0 < len(tag) <= 64, f"{key}.tags[{i}]", f"must be 1 to 64 characters (got {tag!r})")


@dataclass
class CheckpointConfig:
    every_n_train_steps: int = 500  # periodic checkpoints; `last.ckpt` is always kept
    save_top_k: int = -1  # -1 keeps every periodic checkpoint

    def validate(self, key: str) -> None:
        require(self.every_n_train_steps > 0, f"{key}.every_n_train_steps", "must be > 0")


@dataclass
class SamplesConfig:
    enabled: bool = True
    rows: int = 4  # validation examples per grid
    sigmas: list[float] = field(default_factory=lambda: [0.1, 0.4, 1.0])  # one-shot denoising columns
    steps: list[int] = field(default_factory=lambda: [1, 2, 4])  # full-sampler columns

    def validate(self, key: str) -> None:
        require(self.rows > 0, f"{key}.rows", "must be > 0")
        require(all(s > 0 for s in self.sigmas), f"{key}.sigmas", "must all be > 0")
        require(all(k > 0 for k in self.steps), f"{key}.steps", "must all be > 0")


@dataclass
class RolloutConfig:
    enabled: bool = True
    frames: int = 48  # autonomous model frames beside the real simulator in the GIF
    fps: int = 15

    def validate(self, key: str) -> None:
        require(self.frames > 0, f"{key}.frames", "must be > 0")
        require(self.fps > 0, f"{key}.fps", "must be > 0")


@dataclass
class OnnxExportConfig:
    enabled: bool = True
    tolerance: float = 1e-4  # max |onnxruntime - PyTorch| accepted before the export fails
    # frames played on both runtimes by a parity check that plays frames (Flappy's); 0: the task's own default
    # (Flappy: 100 frames token by token, 300 with the frame graph). debug=smoke plays 10.
    parity_frames: int = 0

    def validate(self, key: str) -> None:
        require(math.isfinite(self.tolerance) and self.tolerance > 0, f"{key}.tolerance",
                f"must be a finite number > 0 (got {self.tolerance})")
        require(self.parity_frames >= 0, f"{key}.parity_frames", f"must be >= 0 (got {self.parity_frames})")


@dataclass
class CallbacksConfig:
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    onnx_export: OnnxExportConfig = field(default_factory=OnnxExportConfig)


@dataclass
class PathsConfig:
    """Where a run reads and writes; conf/paths/default.yaml roots them at Hydra's directories."""

    root_dir: str = "."
    output_dir: str = "."  # this run's directory: everything the run writes goes under it
    cache_dir: str = ".cache"


@dataclass
class RunConfig:
    """The whole run (conf/train.yaml extends it). `model`, `data` and `module` are typed by the schema their group's
    YAML extends while Hydra composes, and built by `worldmodels.tasks.validate` from the task's record."""

    task_name: str
    model: Any
    data: Any
    module: Any
    trainer: TrainerConfig
    logger: LoggerConfig
    callbacks: CallbacksConfig
    paths: PathsConfig
    seed: int = 0
    ckpt_path: str | None = None  # resume from this checkpoint: step, optimizer, schedule and data stream continue
    run_test: bool = True  # run the test loop on held-out seeds after fit
    optimized_metric: str = "val/loss"  # what train() returns to a sweeper


# The ConfigStore names (group `schema`) of the run-level schemas; `worldmodels.tasks.register_schemas` stores them.
RUN_SCHEMAS: dict[str, type] = {
    "run": RunConfig, "trainer": TrainerConfig, "logger": LoggerConfig, "callbacks": CallbacksConfig,
    "paths": PathsConfig,
}


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict:
    """A checkpoint written by worldmodels.train, loaded as plain data (`weights_only`), or a one-line UserError for
    a missing path, a folder, an empty or foreign file. `mmap` leaves the tensors on disk (to read its config only)."""
    import torch  # heavy (seconds): kept off this module's import, which every composition pays for

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a checkpoint; give a .ckpt file (e.g. {path}/last.ckpt)")
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty, not a checkpoint; pick another .ckpt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise UserError(f"{path} is not a readable checkpoint ({type(err).__name__}); pick another .ckpt") from err
    stored = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
        raise UserError(f"{path} was not written by worldmodels.train (no '{CHECKPOINT_KEY}' entry)")
    return checkpoint
