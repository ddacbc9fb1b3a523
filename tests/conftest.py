"""Shared fixtures: one real `debug=smoke` training run per task and session, used by the artifact tests.

Tests that train, sweep, run DDP or start Chromium carry the `slow` marker (`make test-fast` leaves them out);
a test that asks for a training run's fixture without it fails at collection, so the fast subset stays fast.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Caches (PPO policies, recorded episodes) go to a throwaway folder, never into the checkout.
os.environ["WORLDMODELS_CACHE"] = tempfile.mkdtemp(prefix="worldmodels-test-cache-")


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m <args>` as a user would, with no W&B API key (so W&B goes offline by itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["WANDB_SILENT"] = "true"
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def load_experiment_script(*parts: str):
    """Import a study's script, `experiments/<parts...>`, as a module (the studies are not a package)."""
    path = ROOT.joinpath("experiments", *parts)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: on a busy 2-core machine a second intra-op thread makes them much slower, not faster."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The directory of a finished `python -m worldmodels.train debug=smoke` run (W&B logger, offline)."""
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    result = run_cli("worldmodels.train", "debug=smoke", "logger=wandb", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def flappy_smoke_run(tmp_path_factory) -> Path:
    """The directory of a finished `python -m worldmodels.train task=flappy debug=smoke` run (CSV logger)."""
    run_dir = tmp_path_factory.mktemp("flappy-smoke") / "run"
    result = run_cli("worldmodels.train", "task=flappy", "debug=smoke", "logger=csv", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def pixels_smoke_run(tmp_path_factory) -> Path:
    """The directory of a finished `python -m worldmodels.train task=gym_pixels debug=smoke` run (CartPole-v1, the
    task's default env; short episodes so that collecting them takes a second)."""
    run_dir = tmp_path_factory.mktemp("pixels-smoke") / "run"
    result = run_cli("worldmodels.train", "task=gym_pixels", "debug=smoke", "logger=csv", "data.train_episodes=8",
                     "data.val_episodes=2", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


TRAINING_FIXTURES = {"smoke_run", "flappy_smoke_run", "pixels_smoke_run"}


def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError(f"these tests train (they use {', '.join(sorted(TRAINING_FIXTURES))}) but are not "
                                f"marked @pytest.mark.slow: {', '.join(unmarked)}")
