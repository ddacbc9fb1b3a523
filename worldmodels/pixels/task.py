"""The gym_pixels task's record: Breakout's pixel diffusion world model over any gymnasium env or Minari dataset.

    python -m worldmodels.train task=gym_pixels data.env_id=CartPole-v1
    python -m worldmodels.train experiment=atari_breakout          (pip install 'worldmodels[atari]')
    python -m worldmodels.train task=gym_pixels data=minari data.dataset_id=<local dataset>
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from worldmodels.breakout.denoiser import build_denoiser
from worldmodels.breakout.objective import DiffusionModule
from worldmodels.core.config import RunConfig
from worldmodels.core.task import Task
from worldmodels.pixels import evaluate
from worldmodels.pixels.data import PixelsDataModule, source_facts
from worldmodels.pixels.export import export_pixels


def build_net(run: RunConfig) -> nn.Module:
    """The denoiser with one action plane per action of the configured game (read off the env or dataset)."""
    return build_denoiser(run.model, source_facts(run.data)[0])


def build_datamodule(run: RunConfig) -> PixelsDataModule:
    return PixelsDataModule(run.data, seed=run.seed, cache_dir=run.paths.cache_dir)


def build_module(run: RunConfig, net: nn.Module, run_config: dict) -> DiffusionModule:
    return DiffusionModule(net, run.module, run_config)


def callbacks(run: RunConfig) -> list:
    return []  # the Breakout sample grids read our simulator; evaluate writes this task's pictures


def export(module, run: RunConfig, out_dir: Path, name: str, tolerance: float, metrics: dict | None):
    return export_pixels(module.inference_net, run, module.run_config, module.export_extras, out_dir, name,
                         tolerance, metrics)


TASK = Task(
    name="gym_pixels",
    build_net=build_net,
    build_datamodule=build_datamodule,
    build_module=build_module,
    callbacks=callbacks,
    export=export,
    evaluate=evaluate.run,
)
