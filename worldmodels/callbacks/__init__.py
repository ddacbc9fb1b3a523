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
    """Ctrl-C during fit writes `interrupted.ckpt` (atomically, like every Lightning checkpoint) before exiting."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.state.fn == "fit":
            trainer.save_checkpoint(self.path)
