"""The Breakout task's record: a pixel diffusion world model over our own 64x64 simulator.

    python -m worldmodels.train task=breakout
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch import nn

from worldmodels.breakout import evaluate
from worldmodels.breakout.data import BreakoutDataModule
from worldmodels.breakout.denoiser import build_denoiser
from worldmodels.breakout.export import export_breakout, load_export_weights
from worldmodels.breakout.media import BreakoutRolloutGif, BreakoutSampleGrid
from worldmodels.breakout.objective import DiffusionModule
from worldmodels.core.config import RunConfig
from worldmodels.core.schema import ConfigError
from worldmodels.core.task import Task


def build_net(run: RunConfig) -> nn.Module:
    """The denoiser, started from `model.init_from`'s export when given (a missing file fails here, before fit)."""
    net = build_denoiser(run.model)
    if run.model.init_from:
        if not Path(run.model.init_from).is_file():
            raise ConfigError(f"model.init_from: no such file: {run.model.init_from} (give an exported .onnx)")
        load_export_weights(net, run.model.init_from)
    return net


def build_datamodule(run: RunConfig) -> BreakoutDataModule:
    return BreakoutDataModule(run.data, seed=run.seed, context_frames=run.model.context_frames)


def build_module(run: RunConfig, net: nn.Module, run_config: dict) -> DiffusionModule:
    return DiffusionModule(net, run.module, run_config)


def callbacks(run: RunConfig) -> list[L.Callback]:
    """Sample grids and the rollout GIF at each validation."""
    out = Path(run.paths.output_dir) / "media"
    cbs: list[L.Callback] = []
    if run.callbacks.samples.enabled:
        cbs.append(BreakoutSampleGrid(run.callbacks.samples, run.module.sampler, out))
    if run.callbacks.rollout.enabled:
        cbs.append(BreakoutRolloutGif(run.callbacks.rollout, run.module.sampler, run.data.policy, out, run.seed))
    return cbs


def export(module, run: RunConfig, out_dir: Path, name: str, tolerance: float, metrics: dict | None):
    return export_breakout(module.inference_net, run, module.run_config, out_dir, name, tolerance, metrics)


TASK = Task(
    name="breakout",
    build_net=build_net,
    build_datamodule=build_datamodule,
    build_module=build_module,
    callbacks=callbacks,
    export=export,
    evaluate=evaluate.run,
)
