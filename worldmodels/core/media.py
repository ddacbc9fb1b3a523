"""Media helpers every task uses: labelled frame grids and sending a saved picture to the W&B logger."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.loggers import WandbLogger
from PIL import Image, ImageDraw

SCALE = 3  # nearest-neighbour upscaling so single pixels stay visible
LABEL_HEIGHT = 14
GAP = 2


def labelled_grid(rows: list[list[np.ndarray]], labels: list[str], scale: int = SCALE) -> Image.Image:
    """Tile uint8 (H, W, 3) frames into a grid with a text label above each column."""
    h, w = rows[0][0].shape[:2]
    cell_w, cell_h = w * scale + GAP, h * scale + GAP
    image = Image.new("RGB", (cell_w * len(labels), LABEL_HEIGHT + cell_h * len(rows)), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    for c, label in enumerate(labels):
        draw.text((c * cell_w + 2, 1), label, fill=(230, 230, 230))
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            tile = Image.fromarray(frame).resize((w * scale, h * scale), Image.NEAREST)
            image.paste(tile, (c * cell_w, LABEL_HEIGHT + r * cell_h))
    return image



def log_media(trainer: L.Trainer, key: str, path: Path) -> None:
    """Send a saved PNG (as an image) or GIF (as a video) to the W&B logger, if there is one.

    Other loggers have nothing to do: the file already sits in the run directory.
    """

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            import wandb  # heavy (~2 s to import): only runs with a W&B logger get here

            item = wandb.Video(str(path), format="gif") if path.suffix == ".gif" else wandb.Image(str(path))
            logger.experiment.log({key: item, "trainer/global_step": trainer.global_step})
