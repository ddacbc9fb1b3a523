"""The run-level config: trainer, logger, callbacks, paths, and where the YAML lives.

Hydra composes plain YAML from `conf/`; `worldmodels.tasks.validate(cfg)` turns the result into these dataclasses
(and each part's own schema, picked by the task's record) and stops a run at start with one line that names the
key when something is unknown, mistyped or impossible. The schema machinery is `worldmodels.core.schema`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from worldmodels.core.schema import require


def config_dir() -> Path:
    """The directory holding `train.yaml`: inside the installed package (wheel) or at the checkout's top level."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no conf/train.yaml next to {package}: reinstall the package (pip install -e .)")


def compose_config(overrides: Sequence[str] = (), output_dir: str = ".") -> DictConfig:
    """Compose `train.yaml` outside a Hydra run (tests, benchmarks, notebooks), with `paths` rooted at `.`."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=["paths.root_dir=.", f"paths.output_dir={output_dir}", *overrides])


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
    # wandb only; null = automatic (worldmodels.core.run_identity): under -m the sweep directory's name / the job's
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
    """The whole run. `model`, `data` and `module` are built by `worldmodels.tasks.validate` from the task's record."""

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
