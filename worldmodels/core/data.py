"""DataModules for each task, on one shared shape: batches come from seeded streams of whole batches.

`StreamDataModule` holds what both tasks do the same way: a training stream whose `generation` moves on with the
global step (a resumed run continues with fresh games or windows instead of replaying them), and validation and
test sets rebuilt from the same seeds every time (so every validation scores the same examples, each rank its own).
A task implements `_stream(stream_id, generation, max_batches)` and, when an export needs more than the
weights, `export_extras()`.
"""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, IterableDataset

TRAIN, VAL, TEST, EVAL = 0, 1, 2, 3  # stream ids: disjoint seeds / draws


class StreamDataModule(L.LightningDataModule):
    def __init__(self, cfg, seed: int = 0):
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.generation = 0

    def _stream(self, stream: int, generation: int, max_batches: int | None) -> IterableDataset:
        raise NotImplementedError

    @property
    def rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._stream(TRAIN, self.generation, None), batch_size=None,
                          num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._stream(VAL, 0, self.cfg.val_batches), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self._stream(TEST, 0, self.cfg.val_batches), batch_size=None)

    def export_extras(self) -> dict:
        """Small JSON-able facts an export needs besides the weights; the module keeps them in its checkpoint."""
        return {}

    def state_dict(self) -> dict:
        step = self.trainer.global_step if self.trainer is not None else 0
        return {"generation": self.generation + step}

    def load_state_dict(self, state: dict) -> None:
        self.generation = int(state["generation"])
