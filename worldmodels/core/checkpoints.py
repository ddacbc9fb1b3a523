"""Checkpoints that a crash cannot tear: Lightning's checkpoint writer with `worldmodels.core.files.write_with`.

Lightning's own `TorchCheckpointIO` writes through fsspec's local transaction, which puts the temporary file under
`$TMPDIR` and moves it into place: when `$TMPDIR` is another filesystem (a tmpfs, say) the move is a plain copy onto
`last.ckpt`, and nothing is fsynced. Here the temporary file sits in the checkpoint's own folder, is fsynced, renamed
onto the target, and the folder fsynced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from worldmodels.core.files import write_with


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves by `write_with` (beside the target, fsync, rename); loads as Lightning does."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        write_with(Path(path), lambda f: torch.save(checkpoint, f))
