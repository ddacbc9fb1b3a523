"""Progress as a person reads it: a bar over the run's steps at a terminal, plain log lines without one."""

from __future__ import annotations

import io
import logging

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

from worldmodels.core.progress import StepLog, StepProgressBar, duration, progress_callbacks


class Endless(IterableDataset):
    """A stream with no length, like our data: a run has one epoch and max_steps steps."""

    def __iter__(self):
        while True:
            yield torch.randn(4)


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(tmp_path, callbacks, steps: int = 20, progress_bar: bool = False) -> None:
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_model_summary=False,
                        enable_progress_bar=progress_bar, callbacks=callbacks, default_root_dir=tmp_path,
                        accelerator="cpu", devices=1)
    trainer.fit(Tiny(), DataLoader(Endless(), batch_size=2))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_step_bar_and_a_log_file_gets_lines():
    assert [type(c) for c in progress_callbacks(True, Terminal())] == [StepProgressBar]
    assert [type(c) for c in progress_callbacks(True, io.StringIO())] == [StepLog]
    assert progress_callbacks(False, Terminal()) == []


def test_the_bar_counts_steps_of_max_steps_not_epochs(tmp_path, capsys):
    fit(tmp_path, [StepProgressBar()], steps=20, progress_bar=True)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "20/20" in text and "train" in text, text[-500:]
    assert "Epoch" not in text and "/-" not in text  # Lightning's bar read "Epoch 0/-2" on an endless stream


def test_without_a_terminal_a_line_every_tenth_of_the_run(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="worldmodels.train"):
        fit(tmp_path, [StepLog()], steps=20)
    lines = [r.getMessage() for r in caplog.records if r.name == "worldmodels.train"]
    assert [line.split(" (")[0] for line in lines] == [f"step {s}/20" for s in range(2, 21, 2)], lines
    assert lines[-1].startswith("step 20/20 (100%), ") and "steps/s" in lines[-1] and "train/loss" in lines[-1]
    assert all("\r" not in line for line in lines)


@pytest.mark.parametrize("seconds, text", [(12.4, "12s"), (288, "4m48s"), (3720, "1h02m")])
def test_durations_read_as_a_person_writes_them(seconds, text):
    assert duration(seconds) == text
