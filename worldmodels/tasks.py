"""What each task is made of: its net, DataModule, LightningModule and media callbacks, built from a RunConfig.

train.py, export.py and evaluate.py go through here, so adding a task means adding one branch per builder.
Checkpoints carry their resolved config, so `load_checkpoint` rebuilds the module with no Hydra composition.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import nn

from worldmodels.config import RunConfig, validate
from worldmodels.errors import UserError
from worldmodels.modules.core import CHECKPOINT_KEY, WorldModelModule


def build_net(run: RunConfig) -> nn.Module:
    if run.model.name in ("tiny_denoiser", "fast_denoiser"):
        from worldmodels.nets.denoiser import build_denoiser

        return build_denoiser(run.model)
    if run.model.name == "token_transformer":
        from worldmodels.data.flappy_tokens import SPEC
        from worldmodels.nets.transformer import TokenTransformer

        if run.model.vocab_size == 0:
            run.model.vocab_size = SPEC.vocab_size
        return TokenTransformer(run.model)
    raise UserError(f"model.name: no builder for {run.model.name!r}")


def build_datamodule(run: RunConfig) -> L.LightningDataModule:
    if run.data.name == "breakout":
        from worldmodels.data.breakout import BreakoutDataModule

        return BreakoutDataModule(run.data, seed=run.seed)
    if run.data.name == "flappy":
        from worldmodels.data.flappy import FlappyDataModule

        return FlappyDataModule(run.data, seed=run.seed)
    raise UserError(f"data.name: no builder for {run.data.name!r}")


def build_module(run: RunConfig, run_config: dict) -> WorldModelModule:
    net = build_net(run)
    if run.module.name == "diffusion":
        from worldmodels.modules.diffusion import DiffusionModule

        return DiffusionModule(net, run.module, run_config)
    if run.module.name == "tokens":
        from worldmodels.modules.tokens import TokenModule

        return TokenModule(net, run.module, run_config)
    raise UserError(f"module.name: no builder for {run.module.name!r}")


def task_callbacks(run: RunConfig) -> list[L.Callback]:
    """What the task adds to the shared callbacks: data collection (Flappy's PPO collector) and media."""
    if run.task_name == "flappy":
        from worldmodels.callbacks.media import FlappyRolloutGif
        from worldmodels.callbacks.ppo_collector import PPOCollector

        cbs: list[L.Callback] = [PPOCollector(run.data.collector, Path(run.paths.cache_dir), run.seed)]
        if run.callbacks.rollout.enabled:
            cbs.append(FlappyRolloutGif(run.callbacks.rollout, Path(run.paths.output_dir) / "media", run.seed))
        return cbs
    if run.task_name == "breakout":
        from worldmodels.callbacks.media import BreakoutRolloutGif, BreakoutSampleGrid

        out = Path(run.paths.output_dir) / "media"
        cbs = []
        if run.callbacks.samples.enabled:
            cbs.append(BreakoutSampleGrid(run.callbacks.samples, run.module.sampler, out))
        if run.callbacks.rollout.enabled:
            cbs.append(BreakoutRolloutGif(run.callbacks.rollout, run.module.sampler, run.data.policy, out, run.seed))
        return cbs
    return []


def load_checkpoint(path: str | Path) -> tuple[RunConfig, WorldModelModule]:
    """Rebuild the LightningModule a checkpoint was trained with, weights loaded, in eval mode on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise UserError(f"{path} is not a readable checkpoint ({type(err).__name__}); pick another .ckpt") from err
    if CHECKPOINT_KEY not in checkpoint:
        raise UserError(f"{path} was not written by worldmodels.train (no '{CHECKPOINT_KEY}' entry)")
    run_config = checkpoint[CHECKPOINT_KEY]["config"]
    run = validate(run_config)
    module = build_module(run, run_config)
    module.load_state_dict(checkpoint["state_dict"])
    module.export_extras = checkpoint[CHECKPOINT_KEY].get("extras", {})
    return run, module.eval()
