"""The dream benchmark's rows: the real games first (the baseline), then every dream env, all measured."""

from __future__ import annotations

from worldmodels.benchmarks import bench_dream


def test_dream_bench_measures_every_row_against_the_real_game():
    tables = bench_dream("models/flappy/flappy.json", "models/breakout_tiny/breakout.json", sizes=(1, 2), steps=8)
    assert [name for name, _ in tables["flappy"]] == ["real FlappyBird-v0", "FlappyDream-v0 (frame graph)",
                                                     "vector dream, N = 1", "vector dream, N = 2"]
    assert [name for name, _ in tables["breakout"]] == ["real simulator (BreakoutEnv)", "vector dream, N = 1",
                                                       "vector dream, N = 2"]
    assert all(rate > 0 for rows in tables.values() for _, rate in rows)
