"""What a task is made of: the record each task folder declares and `worldmodels.tasks` looks up by name.

A task provides its config schemas (by the `name` the YAML picks) and the builders train, export and evaluate call;
nothing outside the task's folder branches on the task's name. See the README's "Adding a task".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def no_checks(run: Any) -> None:
    """A task whose parts need no cross-checks beyond their own schemas."""


@dataclass(frozen=True)
class Task:
    """One task's schemas and builders. Every callable takes the validated `RunConfig` (`run`) first."""

    name: str
    schemas: dict[str, dict[str, type]]  # group (model, data, module) -> the `name` its YAML picks -> its schema
    build_net: Callable  # (run) -> torch.nn.Module
    build_datamodule: Callable  # (run) -> a StreamDataModule
    build_module: Callable  # (run, net, run_config) -> a WorldModelModule
    callbacks: Callable  # (run) -> the task's own Lightning callbacks (media)
    # (module, run, out_dir, name, tolerance, metrics) -> (onnx path, manifest path, max |onnxruntime - PyTorch|)
    export: Callable[..., tuple[Path, Path, float]]
    eval_arguments: Callable[[argparse._ArgumentGroup], None]  # adds the task's `evaluate` flags
    evaluate: Callable  # (args, model path, loaded checkpoint (run, module) or None) -> None; prints and writes
    check: Callable = no_checks  # (run) -> None, raising ConfigError: checks across model, data and module
