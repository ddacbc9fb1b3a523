"""`trainer=ddp` end to end: two CPU processes (gloo) train a few steps of the Breakout smoke run together.

Lightning starts the second rank by re-running the command; it must share rank 0's run directory, train the same
weights on its own data, and leave every artifact to rank 0. Each rank reports what it trained through the test-only
`worldmodels.core.fingerprint` hook (WORLDMODELS_DUMP_WEIGHTS). Flappy's episode cache is recorded by rank 0
alone while the other ranks wait.
"""

from __future__ import annotations

import csv
import json

import pytest
import torch

from tests.conftest import run_cli
from worldmodels.core.fingerprint import ENV_VAR, tensor_sha256
from worldmodels.flappy import collector
from worldmodels.flappy.config import CollectorConfig, FlappyDataConfig
from worldmodels.flappy.data import FlappyDataModule
from worldmodels.flappy.episodes import CacheError

STEPS = 2


@pytest.mark.slow
def test_ddp_two_cpu_ranks_train_the_same_weights_and_only_rank_zero_writes(tmp_path, monkeypatch):
    run_dir, ranks_dir = tmp_path / "run", tmp_path / "ranks"
    monkeypatch.setenv(ENV_VAR, str(ranks_dir))
    result = run_cli("worldmodels.train", "debug=smoke", "trainer=ddp", "trainer.accelerator=cpu",
                     "trainer.devices=2", "trainer.precision=32-true", "logger=csv", f"trainer.max_steps={STEPS}",
                     f"hydra.run.dir={run_dir}", cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stdout + result.stderr

    # Both ranks ran, ended on the same weights, and those are trained weights, not the initial ones.
    reports = {p.name: json.loads(p.read_text()) for p in ranks_dir.iterdir()}
    assert sorted(reports) == ["rank0.json", "rank1.json"]
    rank0, rank1 = reports["rank0.json"], reports["rank1.json"]
    for rank, report in enumerate((rank0, rank1)):
        assert (report["rank"], report["world_size"], report["global_step"]) == (rank, 2, STEPS)
        assert report["data_rank"] == rank  # the DataModule seeds its streams with the DDP rank
    assert rank0["initial"] == rank1["initial"]
    assert rank0["final"] == rank1["final"]
    assert rank0["final"] != rank0["initial"]
    assert rank0["first_batch"] != rank1["first_batch"]  # each rank trains on its own games
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == STEPS
    assert tensor_sha256(checkpoint["state_dict"]) == rank0["final"]

    # One run directory, every artifact in it once, from rank 0. Rank 1 adds only its own Hydra text log
    # (Lightning re-runs it with hydra.job.name=train_ddp_process_1 and hydra.output_subdir=null).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranks", "run"]
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and ".hydra" not in p.parts)
    assert files == [
        "checkpoints/last.ckpt", f"checkpoints/step{STEPS:06d}.ckpt",
        "csv/metrics.csv",
        "export/breakout.json", "export/breakout.onnx",
        f"media/rollout_step{STEPS:06d}.gif", f"media/samples_step{STEPS:06d}.png",
        "summary.json",
        "train.log", "train_ddp_process_1.log",
    ]
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    with open(run_dir / "csv" / "metrics.csv") as f:
        train_rows = [row for row in csv.DictReader(f) if row["train/loss"]]
    assert [int(row["step"]) for row in train_rows] == list(range(STEPS))  # each step logged once
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"]["global_step"] == STEPS and "test/loss" in summary["metrics"]


def test_flappy_collector_records_on_rank_zero_only(tmp_path, monkeypatch):
    """Lightning calls `prepare_data` on rank 0 only and `setup` on every rank after a barrier: rank 0 records the
    episode cache, the other ranks load it and never record it."""
    cfg = CollectorConfig(policy="heuristic", episodes=12, max_frames=120, workers=0, eval_episodes=1,
                          val_fraction=0.25)
    data = FlappyDataConfig(batch_size=4, window_frames=10, val_batches=1, collector=cfg)
    events = []
    record = collector.record_episodes
    monkeypatch.setattr(collector, "record_episodes", lambda *a: events.append("record") or record(*a))

    def rank(prepare: bool) -> FlappyDataModule:
        datamodule = FlappyDataModule(data, seed=0, cache_dir=tmp_path)
        if prepare:
            datamodule.prepare_data()
        datamodule.setup("fit")
        return datamodule

    with pytest.raises(CacheError):  # rank 1 alone, no cache yet: it fails instead of recording
        rank(prepare=False)
    assert events == []
    rank0, rank1 = rank(prepare=True), rank(prepare=False)
    assert events == ["record"]
    assert rank0.store.directory == rank1.store.directory
    assert rank0.export_extras()["start_contexts"] == rank1.export_extras()["start_contexts"]
