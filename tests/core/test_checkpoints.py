"""Checkpoints and exports that a crash cannot tear: written beside their target (never under $TMPDIR), fsynced,
renamed onto it, the folder fsynced; the run's Trainer writes its checkpoints that way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from worldmodels.core import files
from worldmodels.core.checkpoints import AtomicCheckpointIO
from worldmodels.core.config import compose_config
from worldmodels.tasks import validate


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """Every fsync and rename, in order, with $TMPDIR on a folder of its own (standing in for a tmpfs)."""
    calls = []
    tmpdir = tmp_path / "elsewhere"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    return calls, tmpdir


def test_a_checkpoint_is_written_beside_its_target_fsynced_and_renamed(recorded, tmp_path):
    calls, tmpdir = recorded
    target = tmp_path / "run" / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, target)
    assert torch.load(target, weights_only=True)["state_dict"]["w"].tolist() == [1, 1, 1]
    (kind, synced), (rename, src, dst), (kind2, folder) = calls
    assert kind == "fsync" and rename == "replace" and kind2 == "fsync"
    assert Path(src).parent == target.parent and synced == src and dst == str(target)  # same folder: atomic
    assert folder == str(target.parent)  # the rename itself made durable
    assert list(tmpdir.iterdir()) == []  # nothing went through $TMPDIR
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint({"step": 2, "bad": Unpicklable()}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_exports_and_manifests_are_written_the_same_way(recorded, tmp_path):
    calls, tmpdir = recorded
    files.write_atomic(tmp_path / "model.json", b"{}\n")
    assert [c[0] for c in calls] == ["fsync", "replace", "fsync"] and list(tmpdir.iterdir()) == []
    assert (tmp_path / "model.json").stat().st_mode & 0o777 == 0o644  # readable by the player's server


def test_the_runs_trainer_writes_checkpoints_atomically(tmp_path):
    from worldmodels.fit import build_trainer  # Lightning: only the tests that build a Trainer import it

    run = validate(compose_config(["debug=smoke"], output_dir=str(tmp_path)))
    trainer = build_trainer(run, [], logger=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


@pytest.mark.slow
def test_ctrl_c_saves_interrupted_ckpt_and_says_where(tmp_path):
    """SIGINT mid-fit, as Ctrl-C sends it: `interrupted.ckpt` is written (a whole, loadable checkpoint) and the run
    says where it is and how to resume from it."""
    import signal
    import subprocess
    import sys
    import time

    run_dir, log = tmp_path / "run", tmp_path / "output.txt"
    with open(log, "w") as out:
        # SIGINT at its default in the child: a shell's background job (as CI may run us) starts with it ignored,
        # and a Python started with SIGINT ignored never raises KeyboardInterrupt.
        proc = subprocess.Popen([sys.executable, "-m", "worldmodels.train", "debug=smoke", "logger=none",
                                 "trainer.max_steps=100000", "trainer.val_check_interval=100000",
                                 f"hydra.run.dir={run_dir}"], stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 240
            while (not list(run_dir.glob("checkpoints/step*.ckpt")) and time.monotonic() < deadline
                   and proc.poll() is None):
                time.sleep(0.2)  # a periodic checkpoint (every 2 steps under debug=smoke): training is under way
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        finally:
            proc.kill()  # never leave a 100,000-step run behind
    output = log.read_text()
    path = run_dir / "checkpoints" / "interrupted.ckpt"
    assert path.is_file(), output[-3000:]
    assert torch.load(path, weights_only=True)["global_step"] > 0
    assert f"saved {path}; resume with ckpt_path={path}" in output, output[-3000:]


def test_ctrl_c_in_the_middle_of_a_checkpoint_write_still_saves_interrupted_ckpt(tmp_path):
    """Ctrl-C while torch writes a periodic checkpoint reaches Lightning as the zip writer's RuntimeError, with the
    KeyboardInterrupt as its context: that is still an interrupt, and `interrupted.ckpt` is still written."""
    import lightning as L

    from worldmodels.core.callbacks import SaveOnInterrupt, interrupted

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            if self.global_step == 3:
                try:
                    raise KeyboardInterrupt
                except KeyboardInterrupt:  # what torch's writer does when the interrupt tears its file
                    raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos 9728 vs 9622")  # noqa: B904
            return self.w(batch).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    path = tmp_path / "interrupted.ckpt"
    trainer = L.Trainer(max_steps=10, callbacks=[SaveOnInterrupt(path)], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    with pytest.raises(RuntimeError, match="unexpected pos"):
        trainer.fit(Tiny(), torch.utils.data.DataLoader(torch.ones(16, 2), batch_size=1))
    assert torch.load(path, weights_only=True)["global_step"] == 3
    assert not interrupted(RuntimeError("disk full"))  # other failures are not interrupts: no interrupted.ckpt
