"""The callbacks every task's run uses: save on Ctrl-C, and the ONNX export at the end of fit (logged as a W&B
model artifact when the run logs to W&B)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from worldmodels.core.config import OnnxExportConfig
from worldmodels.core.loggers import model_artifact

log = logging.getLogger(__name__)


def interrupted(exception: BaseException | None) -> bool:
    """Whether Ctrl-C caused `exception`. A KeyboardInterrupt raised while torch writes a checkpoint reaches
    Lightning as the RuntimeError that torch's zip writer raises on closing the half-written file ("unexpected
    pos ..."), with the KeyboardInterrupt as its context: follow the chain."""
    seen = set()
    while exception is not None and id(exception) not in seen:
        if isinstance(exception, KeyboardInterrupt):
            return True
        seen.add(id(exception))
        exception = exception.__cause__ or exception.__context__
    return False


class SaveOnInterrupt(L.Callback):
    """Ctrl-C during fit writes `interrupted.ckpt` (atomically, like every Lightning checkpoint) before exiting,
    also when it landed in the middle of a periodic checkpoint's write (see `interrupted`).

    Only rank 0 writes it. Under DDP it skips `trainer.save_checkpoint`, whose closing barrier waits for every rank:
    after Ctrl-C the other ranks may be stopped at another point or already killed by Lightning, so a barrier could
    hang instead of exiting. Plain DDP keeps the whole state on each rank, so rank 0 can write it alone.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not interrupted(exception) or trainer.state.fn != "fit":
            return
        if trainer.world_size == 1:
            trainer.save_checkpoint(self.path)
        elif trainer.is_global_zero:
            checkpoint = trainer._checkpoint_connector.dump_checkpoint()  # what save_checkpoint writes, sans barrier
            trainer.strategy.save_checkpoint(checkpoint, self.path)
        if trainer.is_global_zero:
            log.warning("interrupted at step %d: saved %s; resume with ckpt_path=%s", trainer.global_step, self.path,
                        self.path)


class OnnxExport(L.Callback):
    """Export the trained model to ONNX + manifest when fit ends (rank 0 only), checked against PyTorch first.
    `export(module, out_dir, tolerance, metrics) -> (onnx path, manifest path, max |diff|)` is the task's exporter
    (`worldmodels.tasks.export_module`); what it needs besides the weights is in `module.export_extras`.
    With a W&B logger the graphs and manifest are logged as the model artifact `<task>-<run id>` (a resumed run's
    export is its next version)."""

    def __init__(self, cfg: OnnxExportConfig, export: Callable, out_dir: Path):
        self.cfg, self.export, self.out_dir = cfg, export, Path(out_dir)
        self.paths: tuple[Path, Path] | None = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        metrics["global_step"] = trainer.global_step
        onnx_path, manifest_path, max_diff = self.export(pl_module, self.out_dir, self.cfg.tolerance, metrics)
        self.paths = (onnx_path, manifest_path)
        log.info("exported %s (max |onnxruntime - PyTorch| = %.2e) and %s", onnx_path, max_diff, manifest_path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                artifact = model_artifact(manifest_path, logger.experiment.id)
                logger.experiment.log_artifact(artifact, aliases=["latest", f"step{trainer.global_step}"])
                log.info("logged the export to W&B as the model artifact %s", artifact.name)
