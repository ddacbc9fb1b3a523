"""The benchmark command's denoiser table: the seed-scale baseline is measured in the same run as the models."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli
from worldmodels.benchmarks import bench_denoiser

pytestmark = pytest.mark.slow  # every test benchmarks the smoke run's export


def test_denoiser_bench_rates_models_against_the_seed_scale_net(smoke_run):
    onnx = str(smoke_run / "export" / "breakout.onnx")
    rows = bench_denoiser([onnx], calls=3)
    base, mine = rows
    assert base["model"].startswith("seed-scale") and base["gflop"] == pytest.approx(19.18, abs=0.01)
    assert mine["model"] == onnx and 0 < mine["gflop"] < 0.1  # the smoke net: width 8, 2 blocks
    for runtime in ("PyTorch", "onnxruntime 1 thread", "onnxruntime 2 threads"):
        assert 0 < mine[runtime] < base[runtime]  # 200x fewer FLOPs: faster however noisy the machine


def test_denoiser_bench_command_prints_speed_ups(smoke_run):
    result = run_cli("worldmodels.bench", "--only", "denoiser", "--denoiser-calls", "3", "--breakout-onnx",
                     str(smoke_run / "export" / "breakout.onnx"))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    baseline = next(line for line in lines if line.startswith("seed-scale"))
    assert baseline.count("1.0x") == 3  # the baseline against itself
    mine = next(line for line in lines if "export/breakout.onnx" in line)
    speedups = [float(cell[:-1]) for cell in mine.split() if re.fullmatch(r"\d+(\.\d+)?x", cell)]
    assert len(speedups) == 3 and all(s > 1 for s in speedups), mine
