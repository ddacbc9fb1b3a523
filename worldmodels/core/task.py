"""What a task is made of: the record each task folder declares and `worldmodels.tasks` looks up by name.

A task provides the builders train, export and evaluate call; its config schemas (by the `name` the YAML picks) and
its cross-part checks live in its light `config.py` (`SCHEMAS`, optional `check(run)`), which validation reads without
importing torch. Nothing outside the task's folder branches on the task's name. See the README's "Adding a task".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Task:
    """One task's builders. Every callable takes the validated `RunConfig` (`run`) first."""

    name: str
    build_net: Callable  # (run) -> torch.nn.Module
    build_datamodule: Callable  # (run) -> a StreamDataModule
    build_module: Callable  # (run, net, run_config) -> a WorldModelModule
    callbacks: Callable  # (run) -> the task's own Lightning callbacks (media)
    # (module, run, out_dir, name, tolerance, metrics) -> (onnx path, manifest path, max |onnxruntime - PyTorch|)
    export: Callable[..., tuple[Path, Path, float]]
    evaluate: Callable  # (args, with `out` filled in; model path; run; module or None) -> None; prints and writes
