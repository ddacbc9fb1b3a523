"""The Flappy task's record: a token world model of the real `flappy-bird-gymnasium`.

    python -m worldmodels.train task=flappy
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch import nn

from worldmodels.core.config import RunConfig
from worldmodels.core.task import Task
from worldmodels.flappy import evaluate
from worldmodels.flappy.data import FlappyDataModule
from worldmodels.flappy.export import export_flappy
from worldmodels.flappy.media import FlappyRolloutGif
from worldmodels.flappy.objective import TokenModule
from worldmodels.flappy.tokens import SPEC
from worldmodels.flappy.transformer import TokenTransformer


def build_net(run: RunConfig) -> nn.Module:
    if run.model.vocab_size == 0:
        run.model.vocab_size = SPEC.vocab_size
    return TokenTransformer(run.model)


def build_datamodule(run: RunConfig) -> FlappyDataModule:
    return FlappyDataModule(run.data, seed=run.seed, cache_dir=run.paths.cache_dir)


def build_module(run: RunConfig, net: nn.Module, run_config: dict) -> TokenModule:
    return TokenModule(net, run.module, run_config)


def callbacks(run: RunConfig) -> list[L.Callback]:
    """The rollout GIF at each validation."""
    if not run.callbacks.rollout.enabled:
        return []
    return [FlappyRolloutGif(run.callbacks.rollout, Path(run.paths.output_dir) / "media", run.seed)]


def export(module, run: RunConfig, out_dir: Path, name: str, tolerance: float, metrics: dict | None):
    return export_flappy(module.inference_net, run, module.run_config, out_dir, name, tolerance, metrics,
                         module.export_extras.get("start_contexts"), module.export_extras.get("start_context_seeds"))


TASK = Task(
    name="flappy",
    build_net=build_net,
    build_datamodule=build_datamodule,
    build_module=build_module,
    callbacks=callbacks,
    export=export,
    evaluate=evaluate.run,
)
