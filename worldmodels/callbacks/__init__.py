"""Lightning callbacks: media (sample grids, rollout GIFs) and the ONNX export at the end of fit."""

from __future__ import annotations

from pathlib import Path

import lightning as L


def log_media(trainer: L.Trainer, key: str, path: Path) -> None:
    """Send a saved PNG (as an image) or GIF (as a video) to the W&B logger, if there is one.

    Other loggers have nothing to do: the file already sits in the run directory.
    """
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            item = wandb.Video(str(path), format="gif") if path.suffix == ".gif" else wandb.Image(str(path))
            logger.experiment.log({key: item, "trainer/global_step": trainer.global_step})


class SaveOnInterrupt(L.Callback):
    """Ctrl-C during fit writes `interrupted.ckpt` (atomically, like every Lightning checkpoint) before exiting.

    Only rank 0 writes it. Under DDP it skips `trainer.save_checkpoint`, whose closing barrier waits for every rank:
    after Ctrl-C the other ranks may be stopped at another point or already killed by Lightning, so a barrier could
    hang instead of exiting. Plain DDP keeps the whole state on each rank, so rank 0 can write it alone.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn != "fit":
            return
        if trainer.world_size == 1:
            trainer.save_checkpoint(self.path)
        elif trainer.is_global_zero:
            checkpoint = trainer._checkpoint_connector.dump_checkpoint()  # what save_checkpoint writes, sans barrier
            trainer.strategy.save_checkpoint(checkpoint, self.path)
