"""Typed, validated run configuration.

Hydra composes plain YAML from `conf/`; `validate(cfg)` turns the result into dataclasses and stops a run
at start with one line that names the key when something is unknown, mistyped or impossible:

    config error: model.width: must be > 0 (got -3)

Each part's schema lives next to the code it configures (`nets.denoiser.DenoiserConfig`, ...);
this file holds the run-level schemas, the registries that pick a schema by its `name`, and the checker.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from worldmodels.errors import UserError


class ConfigError(UserError):
    """A configuration problem, worded as `key: what is wrong`."""


def config_dir() -> Path:
    """The directory holding `train.yaml`: inside the installed package (wheel) or at the checkout's top level."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no conf/train.yaml next to {package}: reinstall the package (pip install -e .)")


def compose_config(overrides: Sequence[str] = (), output_dir: str = ".") -> DictConfig:
    """Compose `train.yaml` outside a Hydra run (tests, benchmarks, notebooks), with `paths` rooted at `.`."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=["paths.root_dir=.", f"paths.output_dir={output_dir}", *overrides])


def require(ok: bool, key: str, problem: str) -> None:
    """Raise a one-line ConfigError for `key` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}: {problem}")


@dataclass
class TrainerConfig:
    """Arguments passed to lightning.Trainer (the subset we support and check)."""

    accelerator: str = "cpu"  # cpu | gpu | auto
    devices: Any = 1  # int or "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn ...
    precision: str = "32-true"  # 32-true | bf16-mixed ...
    max_steps: int = 20000
    val_check_interval: int = 500  # optimizer steps between validations
    gradient_clip_val: float = 1.0
    log_every_n_steps: int = 25
    enable_progress_bar: bool = True
    deterministic: bool = False

    def validate(self, key: str) -> None:
        require(self.max_steps > 0, f"{key}.max_steps", f"must be > 0 (got {self.max_steps})")
        require(self.val_check_interval > 0, f"{key}.val_check_interval", "must be > 0")
        require(self.gradient_clip_val >= 0, f"{key}.gradient_clip_val", "must be >= 0")
        require(self.num_nodes >= 1, f"{key}.num_nodes", "must be >= 1")
        require(self.accelerator in ("cpu", "gpu", "cuda", "mps", "auto"), f"{key}.accelerator",
                f"unknown accelerator {self.accelerator!r}")


@dataclass
class LoggerConfig:
    """Which logger records the run: wandb (offline when no API key is configured), csv, or none."""

    name: str = "wandb"
    project: str = "worldmodels"
    mode: str = "auto"  # auto | online | offline (wandb only)
    # wandb only; null = automatic (worldmodels.run_identity): under -m the sweep directory's name / the job's
    # swept overrides (model.width=16), otherwise no group / W&B's own name.
    group: str | None = None
    run_name: str | None = None
    tags: list[str] = field(default_factory=list)  # added to the automatic ones: the task, the experiment

    def validate(self, key: str) -> None:
        require(self.name in ("wandb", "csv", "none"), f"{key}.name", f"must be wandb, csv or none (got {self.name!r})")
        require(self.mode in ("auto", "online", "offline"), f"{key}.mode", "must be auto, online or offline")
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

    def validate(self, key: str) -> None:
        require(self.tolerance > 0, f"{key}.tolerance", "must be > 0")


@dataclass
class CallbacksConfig:
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    onnx_export: OnnxExportConfig = field(default_factory=OnnxExportConfig)


@dataclass
class PathsConfig:
    root_dir: str = "."
    output_dir: str = "."  # this run's directory: everything the run writes goes under it
    cache_dir: str = ".cache"


@dataclass
class RunConfig:
    """The whole run. `model`, `data` and `module` are picked from the registries below by their `name`."""

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


def _registries() -> dict[str, dict[str, type]]:
    # Imported lazily so `config_dir()` stays cheap; each task adds its schemas here.
    from worldmodels.data.breakout import BreakoutDataConfig
    from worldmodels.data.flappy import FlappyDataConfig
    from worldmodels.modules.diffusion import DiffusionConfig
    from worldmodels.modules.tokens import TokenObjectiveConfig
    from worldmodels.nets.denoiser import DenoiserConfig, FastDenoiserConfig
    from worldmodels.nets.transformer import TransformerConfig

    return {
        "model": {"tiny_denoiser": DenoiserConfig, "fast_denoiser": FastDenoiserConfig,
                  "token_transformer": TransformerConfig},
        "data": {"breakout": BreakoutDataConfig, "flappy": FlappyDataConfig},
        "module": {"diffusion": DiffusionConfig, "tokens": TokenObjectiveConfig},
    }


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting ints to floats where a float is expected."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {' or '.join(_type_name(o) for o in options)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return build(value, tp, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(tp) or (str, Any)
        return {_coerce(k, key_type, key): _coerce(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_type, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported annotation {tp!r} for {key}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def build(section: dict, schema: type, key: str) -> Any:
    """Build `schema` from a plain dict, rejecting unknown keys and wrong types, then run its `validate`."""
    hints = typing.get_type_hints(schema)
    known = [f.name for f in dataclasses.fields(schema)]
    for name in section:
        if name not in hints:
            raise ConfigError(f"{_join(key, name)}: unknown key (known keys: {', '.join(known)})")
    kwargs = {}
    for f in dataclasses.fields(schema):
        if f.name in section:
            kwargs[f.name] = _coerce(section[f.name], hints[f.name], _join(key, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(key, f.name)}: missing (no default)")
    obj = schema(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate(key)
    return obj


def validate(cfg: DictConfig | dict) -> RunConfig:
    """The composed config as typed dataclasses, or a ConfigError naming the first bad key."""
    raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    raw.pop("hydra", None)
    run = build(raw, RunConfig, "")
    for group, schemas in _registries().items():
        section = getattr(run, group)
        if not isinstance(section, dict):
            raise ConfigError(f"{group}: missing; pick one with {group}=<{'|'.join(schemas)}>")
        name = section.get("name")
        if name not in schemas:
            raise ConfigError(f"{group}.name: unknown {group} {name!r} (known: {', '.join(schemas)})")
        setattr(run, group, build(section, schemas[name], group))
    if run.data.name == "flappy" and run.model.name == "token_transformer" and not run.model.sliding_window:
        tokens = run.data.window_frames * 10  # the token spec's frame: whole frames of 10 tokens
        require(tokens <= run.model.context, "data.window_frames",
                f"{run.data.window_frames} frames ({tokens} tokens) do not fit model.context={run.model.context}; "
                "shorten the windows or set model.sliding_window=true (banded attention trains on longer ones)")
    return run
