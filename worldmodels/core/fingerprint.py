"""Test instrumentation, not a user feature: what each DDP rank trained, as hashes, for tests/core/test_ddp.py.

Registered only when the environment variable `WORLDMODELS_DUMP_WEIGHTS=<dir>` is set (see `debug_callbacks`).
Each rank `k` then writes `<dir>/rank<k>.json` when fit ends:

    {"rank": k, "world_size": 2, "global_step": 2,
     "initial": sha256 of the module's state_dict at fit start (after DDP has synced the ranks),
     "final": sha256 of the module's state_dict at fit end,
     "data_rank": the rank the DataModule seeded its streams with,
     "first_batch": sha256 of the first training batch this rank saw}

so a test can check that every rank ran, that all ranks ended with the same weights, that training changed them,
and that each rank drew its own data. Nothing else reads these files; a normal run never writes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import lightning as L
import torch

ENV_VAR = "WORLDMODELS_DUMP_WEIGHTS"


def tensor_sha256(named: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order: equal iff the tensors are equal."""
    digest = hashlib.sha256()
    for name in sorted(named):
        value = named[name]
        if not isinstance(value, torch.Tensor):
            continue
        value = value.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


class RankFingerprint(L.Callback):
    """Writes `<out_dir>/rank<k>.json` on every rank at fit end (see the module docstring)."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.record: dict = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record = {"rank": trainer.global_rank, "world_size": trainer.world_size,
                       "initial": tensor_sha256(pl_module.state_dict())}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if "first_batch" not in self.record:
            self.record["first_batch"] = tensor_sha256(batch)
            self.record["data_rank"] = getattr(trainer.datamodule, "rank", None)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record.update(global_step=trainer.global_step, final=tensor_sha256(pl_module.state_dict()))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.record, indent=1) + "\n")


def debug_callbacks() -> list[L.Callback]:
    """`[RankFingerprint]` when `WORLDMODELS_DUMP_WEIGHTS` is set, else nothing."""
    out_dir = os.environ.get(ENV_VAR)
    return [RankFingerprint(Path(out_dir))] if out_dir else []
