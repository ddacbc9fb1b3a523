"""Training progress as a person reads it: one bar over the run's steps at a terminal, and plain log lines without one.

Our data are endless streams, so a run has one epoch and `max_steps` steps: Lightning's bars count batches per epoch
(`Epoch 0/-2`, no total). `StepProgressBar` counts optimizer steps out of `max_steps` (starting where a resumed run
left off). When stderr is not a terminal (a log file, a CI job, a joblib sweep) a bar's carriage returns make
unreadable logs, so `StepLog` writes a line every tenth of the run instead.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

log = logging.getLogger("worldmodels.train")


def progress_callbacks(enabled: bool, stream: Any = None) -> list[L.Callback]:
    """What shows progress: a step bar at a terminal, log lines otherwise, nothing when disabled."""
    if not enabled:
        return []
    stream = stream if stream is not None else sys.stderr
    return [StepProgressBar()] if stream.isatty() else [StepLog()]


class StepProgressBar(TQDMProgressBar):
    """tqdm over optimizer steps (`global_step` of `max_steps`), with the logged metrics as its postfix."""

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps if trainer.max_steps > 0 else None)
        bar.n = bar.initial = trainer.global_step  # a resumed run continues its count
        bar.set_description("train")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        step = trainer.global_step
        if self._should_update(step, self.train_progress_bar.total or 0):
            self.train_progress_bar.n = step
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))  # refreshes the bar


class StepLog(L.Callback):
    """`step 400/4000 (10%), 12.5 steps/s, 4m48s left, train/loss 0.123` every tenth of the run, and at its end."""

    def __init__(self, lines: int = 10):
        self.lines = lines
        self.start: tuple[float, int] | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = (time.monotonic(), trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        step, total = trainer.global_step, trainer.max_steps
        every = max(1, total // self.lines) if total > 0 else 100
        if step % every and step != total:
            return
        began, first = self.start or (time.monotonic(), 0)
        rate = (step - first) / max(time.monotonic() - began, 1e-9)
        parts = [f"step {step}/{total} ({100 * step / total:.0f}%)" if total > 0 else f"step {step}",
                 f"{rate:.1f} steps/s"]
        if total > 0 and rate > 0:
            parts.append(f"{duration(max(total - step, 0) / rate)} left")
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            parts.append(f"train/loss {float(loss):.4g}")
        log.info(", ".join(parts))


def duration(seconds: float) -> str:
    """`1h02m`, `4m48s`, `12s`."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
