"""The Flappy episode cache under crashes and concurrency: builders killed outright (kill -9), two runs that need
the same new cache, a manifest edited by hand, and the writes reaching the disk.

Episodes come from the scripted HeuristicPolicy (`policy="heuristic"`), so nothing trains.

    python -m pytest tests/flappy/test_cache_safety.py
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import worldmodels
from worldmodels.core.errors import UserError
from worldmodels.flappy import collector
from worldmodels.flappy.collector import CollectorConfig, ensure_episodes

CFG = CollectorConfig(policy="heuristic", episodes=12, max_frames=100, workers=0, val_fraction=0.25)
SEED = 3
PACKAGE_ROOT = Path(worldmodels.__file__).resolve().parent.parent
# A builder in its own process, to be killed: its recording workers (mode "record") or the builder itself while
# writing the store (mode "write") touch a file named by their pid in `marks`, then stall. The patches are at the
# top level because spawned workers import this file too (as __mp_main__).
BUILDER = """
import dataclasses, json, os, sys, time
from pathlib import Path
from worldmodels.flappy import collector, episodes

mode, cache_dir, marks = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def stall(directory=None, *args):
    if directory is not None:
        (directory / "tokens.npy").write_bytes(bytes(1 << 16))
    (marks / str(os.getpid())).touch()
    time.sleep(60)

if mode == "record":
    collector._Recorder.__call__ = lambda self, chunk: stall()
else:
    episodes.write_episodes = stall

if __name__ == "__main__":
    cfg = collector.CollectorConfig(**json.loads(sys.argv[4]))
    collector.ensure_episodes(cfg, cache_dir, int(sys.argv[5]))
"""


def start_builder(tmp_path: Path, mode: str, cfg: CollectorConfig) -> tuple[subprocess.Popen, Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "builder.py"
    script.write_text(BUILDER)
    args = [mode, str(tmp_path / "cache"), str(marks), json.dumps(dataclasses.asdict(cfg)), str(SEED)]
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}  # the code under test, not whatever is installed
    return subprocess.Popen([sys.executable, str(script), *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL), marks


def wait_for_marks(marks: Path, count: int, builder: subprocess.Popen, timeout: float = 60) -> list[int]:
    """The pids of the first `count` processes that reached the stall."""
    deadline = time.monotonic() + timeout
    while len(pids := [int(p.name) for p in marks.iterdir()]) < count:
        assert builder.poll() is None, f"the builder exited ({builder.returncode}) before stalling"
        assert time.monotonic() < deadline, f"only {len(pids)} of {count} processes stalled in {timeout} s"
        time.sleep(0.05)
    return pids


def running(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie nobody reaped has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill(builder: subprocess.Popen) -> None:
    builder.send_signal(signal.SIGKILL)
    builder.wait()


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")


@needs_proc
def test_recording_workers_exit_when_their_builder_is_killed(tmp_path):
    builder, marks = start_builder(tmp_path, "record", dataclasses.replace(CFG, episodes=256, workers=2))
    workers = []
    try:
        workers = wait_for_marks(marks, 2, builder)
        kill(builder)
        deadline = time.monotonic() + 2.0
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.02)
        alive = [pid for pid in workers if running(pid)]
        assert not alive, f"workers {alive} still run 2 s after their builder was killed"
    finally:
        kill(builder)
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_what_a_builder_killed_while_writing_left_is_removed_by_the_next_build(tmp_path):
    builder, marks = start_builder(tmp_path, "write", CFG)
    try:
        wait_for_marks(marks, 1, builder)
    finally:
        kill(builder)
    left = list((tmp_path / "cache" / "flappy").glob(".episodes-*.tmp-*"))
    assert len(left) == 1 and (left[0] / "tokens.npy").is_file()

    store = ensure_episodes(CFG, tmp_path / "cache", SEED)
    assert store.num_episodes == CFG.episodes
    assert not left[0].exists()


def test_leftovers_of_dead_builders_go_those_of_a_live_builder_stay(tmp_path, caplog):
    folder = ensure_episodes(CFG, tmp_path, SEED).directory.parent
    this_cache = ensure_episodes(CFG, tmp_path, SEED).directory.name
    dead = [folder / f".{this_cache}.tmp-k1ll3d", folder / f".{this_cache}.old-0badf00d",
            folder / ".episodes-0123456789abcdef.tmp-n3v3r"]  # a config that is never built again
    live = folder / ".episodes-fedcba9876543210.tmp-bu1ld1"
    for path in [*dead, live]:
        path.mkdir()
        (path / "tokens.npy").write_bytes(bytes(1024))
    with open(folder / "episodes-fedcba9876543210.lock", "a") as lock:  # that cache's builder is still at work
        fcntl.flock(lock, fcntl.LOCK_EX)
        with caplog.at_level(logging.INFO, logger=collector.__name__):
            ensure_episodes(CFG, tmp_path, SEED, build=False)  # a mere load
        assert [path for path in dead if path.exists()] == []
        assert (live / "tokens.npy").is_file()
        assert str(dead[0]) in caplog.text and "did not finish" in caplog.text
    ensure_episodes(CFG, tmp_path, SEED)  # its builder has gone (the kernel drops a dead process's lock)
    assert not live.exists()


def test_two_runs_that_need_one_new_cache_record_it_once(tmp_path, monkeypatch, caplog):
    """Two threads stand for two runs: each opens the lock file itself, and flock locks open files, not
    processes, so the second waits for the first exactly as another process would."""
    recorders, recording, record = [], threading.Event(), collector.record_episodes

    def slow_record(*args):
        recorders.append(threading.current_thread().name)
        recording.set()
        time.sleep(1.0)  # long enough that the second run asks while the first one records
        return record(*args)

    monkeypatch.setattr(collector, "record_episodes", slow_record)
    stores, errors = {}, []

    def run() -> None:
        try:
            stores[threading.current_thread().name] = ensure_episodes(CFG, tmp_path, SEED)
        except Exception as err:  # a thread's exception would vanish; the assertions below show it
            errors.append(err)

    runs = [threading.Thread(target=run, name=name) for name in ("first", "second")]
    with caplog.at_level(logging.INFO, logger=collector.__name__):
        runs[0].start()
        assert recording.wait(30)
        runs[1].start()
        for thread in runs:
            thread.join(60)
    assert errors == [] and set(stores) == {"first", "second"}
    assert recorders == ["first"]
    assert stores["second"].directory == stores["first"].directory
    assert "waiting for its lock" in caplog.text and "episodes: cached" in caplog.text


def _val_changed(manifest: dict) -> None:
    val = manifest["val_episodes"]
    train = sorted(set(range(manifest["episodes"])) - set(val))
    manifest["val_episodes"] = sorted([*val[1:], train[0]])  # still valid ids: only the checksum can tell


def _scores_changed(manifest: dict) -> None:
    manifest["ppo_scores"] = {"mean_score": 99.0}


@pytest.mark.parametrize("edit", [_val_changed, _scores_changed], ids=["val_episodes", "ppo_scores"])
def test_an_edited_manifest_stops_with_one_line_naming_the_file_and_the_fix(tmp_path, edit):
    directory = ensure_episodes(CFG, tmp_path, SEED).directory
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    with pytest.raises(UserError) as raised:
        ensure_episodes(CFG, tmp_path, SEED)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message and f"delete {directory}" in message
    assert json.loads(path.read_text()) == manifest, "the edited store was rebuilt over"


def test_a_finished_cache_reached_the_disk_before_and_after_its_rename(tmp_path, monkeypatch):
    synced, fsync = set(), os.fsync

    def recording_fsync(fd: int) -> None:
        stat = os.fstat(fd)
        synced.add((stat.st_dev, stat.st_ino))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    directory = ensure_episodes(CFG, tmp_path, SEED).directory
    wanted = [*directory.iterdir(), directory, directory.parent]  # inodes survive the rename
    assert [p.name for p in wanted if (p.stat().st_dev, p.stat().st_ino) not in synced] == []
