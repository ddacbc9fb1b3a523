"""The shared training core every task's LightningModule builds on.

It owns what is the same for a pixel denoiser and a token Transformer: AdamW with warm-up + cosine decay,
optional EMA weights (used for validation, samples and export when enabled), a guard that stops the run with one
clear line when the loss stops being finite, and checkpoints that carry the resolved run config so export and
evaluate rebuild the model with no Hydra composition. A task subclass implements `compute_loss` only.

Gradient clipping and bf16 autocast are Lightning's (`trainer.gradient_clip_val`, `trainer.precision`).
"""

from __future__ import annotations

import copy
import math

import lightning as L
import torch
from torch import nn

from worldmodels.core.config import CHECKPOINT_KEY, OptimConfig
from worldmodels.core.errors import UserError


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite."""


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier on the base learning rate: linear warm-up, then cosine from 1 down to `min_ratio`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class WorldModelModule(L.LightningModule):
    """Training core: subclasses implement `compute_loss(batch, generator) -> (loss, {name: value})`."""

    def __init__(self, net: nn.Module, optim: OptimConfig, run_config: dict):
        super().__init__()
        self.net = net
        self.optim = optim
        self.run_config = run_config
        self.ema_net = copy.deepcopy(net).requires_grad_(False) if optim.ema_decay > 0 else None
        # Small JSON-able facts an export needs besides the weights (e.g. Flappy's real start contexts): the
        # DataModule's `export_extras()` at fit start, kept in every checkpoint.
        self.export_extras: dict = {}

    @property
    def inference_net(self) -> nn.Module:
        """The weights to evaluate, sample and export: the EMA copy when enabled."""
        return self.ema_net if self.ema_net is not None else self.net

    def compute_loss(self, batch, generator: torch.Generator | None = None, net: nn.Module | None = None):
        raise NotImplementedError

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, metrics = self.compute_loss(batch)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"loss became {loss.item()} at step {self.global_step}: lower module.optim.lr, "
                f"keep trainer.gradient_clip_val > 0, or resume from the last checkpoint"
            )
        size = len(next(iter(batch.values())))
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in metrics.items()}, batch_size=size)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=size)
        return loss

    def _held_out_step(self, batch, batch_idx: int, split: str) -> None:
        # A fixed generator per batch makes held-out losses comparable across validations and runs.
        generator = torch.Generator(device=self.device).manual_seed(batch_idx)
        loss, metrics = self.compute_loss(batch, generator=generator, net=self.inference_net)
        size = len(next(iter(batch.values())))
        self.log(f"{split}/loss", loss, prog_bar=split == "val", batch_size=size, sync_dist=True)
        self.log_dict({f"{split}/{k}": v for k, v in metrics.items()}, batch_size=size, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._held_out_step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._held_out_step(batch, batch_idx, "test")

    def on_fit_start(self) -> None:
        datamodule = self.trainer.datamodule
        if datamodule is not None and hasattr(datamodule, "export_extras"):
            self.export_extras.update(datamodule.export_extras())
        # seed_everything gives every DDP rank the same RNG state, so without this each rank would draw the same
        # noise levels and noise for its (different) rows; a single process keeps its stream unchanged.
        if self.trainer.world_size > 1:
            torch.manual_seed(torch.initial_seed() + 1_000_003 * self.global_rank)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.ema_net is not None:
            with torch.no_grad():
                ema, live = list(self.ema_net.parameters()), list(self.net.parameters())
                torch._foreach_lerp_(ema, live, 1.0 - self.optim.ema_decay)

    def configure_optimizers(self):
        # No weight decay on biases (1-D parameters): decaying them only shrinks offsets the model needs.
        params = [p for p in self.net.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": self.optim.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.optim.lr, betas=tuple(self.optim.betas))
        total = self.trainer.max_steps if self.trainer.max_steps > 0 else 100_000
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, self.optim.warmup_steps, total, self.optim.min_lr_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = {"format": 1, "config": self.run_config, "extras": self.export_extras}
