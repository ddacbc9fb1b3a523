"""Files a crash cannot tear: written to a temporary file beside the target, fsynced, renamed, the folder fsynced.

The temporary file lives in the target's own folder, never under `$TMPDIR`: a rename is atomic only within one
filesystem (across two it is a copy onto the target). Used for exports, manifests and checkpoints
(`worldmodels.core.checkpoints`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (skipped where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    _fsync_and_close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file that is already written and closed to the disk."""
    _fsync_and_close(os.open(path, os.O_RDONLY))


def _fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_with(path: Path, write: Callable[[BinaryIO], None], mode: int = 0o644) -> None:
    """`write(file)` into a temporary file in `path`'s folder, fsync it, rename it onto `path`, fsync the folder.
    A crash leaves the old file or the new one, never a torn one; a failed write leaves no temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600; exports and checkpoints are meant to be read by other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """`data` into `path` by `write_with`."""
    write_with(path, lambda f: f.write(data))
