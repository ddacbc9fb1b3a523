"""The gym_tokens task's record: Flappy's token Transformer over a local Minari dataset's vector observations.

    python -m worldmodels.record CartPole-v1 --dataset-id cartpole/state-v0 --observations state --episodes 200
    python -m worldmodels.train task=gym_tokens data.dataset_id=cartpole/state-v0

Which observation entries become which tokens, with their bins and ranges, is the data config's declaration
(`worldmodels.gym_tokens.config`); the token spec is built from it and the dataset (`worldmodels.gym_tokens.data`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import nn

from worldmodels.core.config import RunConfig
from worldmodels.core.errors import UserError
from worldmodels.core.task import Task
from worldmodels.flappy.objective import TokenModule
from worldmodels.flappy.transformer import TokenTransformer
from worldmodels.gym_tokens import evaluate
from worldmodels.gym_tokens.data import GymTokensDataModule, read_recorded
from worldmodels.gym_tokens.export import export_gym_tokens


def build_net(run: RunConfig) -> nn.Module:
    spec = read_recorded(run.data).spec
    if run.model.vocab_size == 0:
        run.model.vocab_size = spec.vocab_size
    frames = run.data.window_frames * spec.tokens_per_frame
    if not run.model.sliding_window and frames > run.model.context:
        raise UserError(f"data.window_frames: {run.data.window_frames} frames of {spec.tokens_per_frame} tokens "
                        f"({frames}) do not fit model.context={run.model.context}; lower it or raise the context")
    return TokenTransformer(run.model)


def build_datamodule(run: RunConfig) -> GymTokensDataModule:
    return GymTokensDataModule(run.data, seed=run.seed, cache_dir=run.paths.cache_dir)


def build_module(run: RunConfig, net: nn.Module, run_config: dict) -> TokenModule:
    spec = read_recorded(run.data).spec
    smoothed = run.module.soft_bin_fields or list(spec.ordinal_fields)
    unknown = sorted(set(smoothed) - set(spec.ordinal_fields))
    if unknown:
        raise UserError(f"module.soft_bin_fields: {', '.join(unknown)} are not fields of this dataset's declaration "
                        f"(fields: {', '.join(spec.ordinal_fields)})")
    return TokenModule(net, dataclasses.replace(run.module, soft_bin_fields=smoothed), run_config, spec)


def callbacks(run: RunConfig) -> list:
    return []  # evaluate draws this task's pictures


def export(module, run: RunConfig, out_dir: Path, name: str, tolerance: float, metrics: dict | None):
    return export_gym_tokens(module.inference_net, run, module.run_config, module.export_extras, module.spec,
                             out_dir, name, tolerance, metrics)


TASK = Task(
    name="gym_tokens",
    build_net=build_net,
    build_datamodule=build_datamodule,
    build_module=build_module,
    callbacks=callbacks,
    export=export,
    evaluate=evaluate.run,
)
