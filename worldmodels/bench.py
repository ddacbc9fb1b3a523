"""Benchmarks (not tests): tables of ratios against a baseline measured in the same run, and the machine they ran on.

    python -m worldmodels.bench                     # both tables
    python -m worldmodels.bench --only sim          # simulator rows/s: vectorized vs one game at a time
    python -m worldmodels.bench --only train --train-steps 40 experiment=breakout_cpu

`sim`: rows/s (one row = one game step + its rendered frame) of one vectorized BreakoutSim of N games against a
Python loop over N one-game simulators. `train`: training samples/s of a short real fit and the share of wall time
the training loop spent waiting for the next batch, with rows made in the main process and in a worker process.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import lightning as L
import numpy as np
import torch


def machine() -> str:
    return (f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {np.__version__}, python {platform.python_version()}")


def bench_sim(games: int, steps: int) -> list[tuple[str, float]]:
    from worldmodels.games.breakout import BreakoutSim

    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, size=(steps, games))
    seeds = np.arange(games)

    def vectorized() -> float:
        sim = BreakoutSim(seeds)
        start = time.perf_counter()
        for t in range(steps):
            sim.step(actions[t])
            sim.render()
        return games * steps / (time.perf_counter() - start)

    def one_at_a_time() -> float:
        sims = [BreakoutSim(seeds[i:i + 1]) for i in range(games)]
        loop_steps = max(1, steps // 10)  # ten times fewer steps: the loop is that much slower
        start = time.perf_counter()
        for t in range(loop_steps):
            for i, sim in enumerate(sims):
                sim.step(actions[t, i:i + 1])
                sim.render()
        return games * loop_steps / (time.perf_counter() - start)

    vectorized()  # warm caches and allocator
    return [("one game at a time (Python loop)", one_at_a_time()), (f"vectorized, {games} games", vectorized())]


class StepTiming(L.Callback):
    """Wall time of the training steps after the first (which pays start-up costs) and the part spent waiting for
    the next batch: the gap between one step's end and the next step's start."""

    def __init__(self):
        self.wait, self.steps = 0.0, 0
        self.start = self.last_end = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.last_end is not None:
            self.wait += time.perf_counter() - self.last_end
            self.steps += 1

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.last_end = time.perf_counter()
        if self.start is None:
            self.start = self.last_end


def bench_train(overrides: list[str], train_steps: int) -> list[tuple[str, float, float]]:
    from worldmodels.config import compose_config, validate
    from worldmodels.tasks import build_datamodule, build_module

    rows = []
    for workers in (0, 1):
        with tempfile.TemporaryDirectory() as out:
            run = validate(compose_config([*overrides, f"data.num_workers={workers}"], output_dir=out))
            module = build_module(run, {})
            timing = StepTiming()
            trainer = L.Trainer(accelerator=run.trainer.accelerator, devices=1, max_steps=train_steps + 1,
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, limit_val_batches=0, callbacks=[timing],
                                default_root_dir=out)
            trainer.fit(module, datamodule=build_datamodule(run))
            elapsed = timing.last_end - timing.start
            rows.append((f"data.num_workers={workers}", run.data.batch_size * timing.steps / elapsed,
                         timing.wait / elapsed))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["sim", "train"], default=None)
    parser.add_argument("--games", type=int, default=256, help="games in the vectorized simulator")
    parser.add_argument("--steps", type=int, default=200, help="simulator steps for the vectorized run")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps per configuration")
    parser.add_argument("overrides", nargs="*", default=["experiment=breakout_cpu"],
                        help="Hydra overrides for the training benchmark")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}\n")
    if args.only in (None, "sim"):
        rows = bench_sim(args.games, args.steps)
        base = rows[0][1]
        print(f"{'simulator':<36}{'rows/s':>12}{'vs loop':>10}")
        for name, rate in rows:
            print(f"{name:<36}{rate:>12,.0f}{rate / base:>9.1f}x")
        print()
    if args.only in (None, "train"):
        import logging

        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        rows = bench_train(args.overrides, args.train_steps)
        base = rows[0][1]
        print(f"training ({' '.join(args.overrides)})")
        print(f"{'rows made in':<36}{'samples/s':>12}{'vs main':>10}{'data wait':>12}")
        for name, rate, wait in rows:
            print(f"{name:<36}{rate:>12.1f}{rate / base:>9.2f}x{wait:>11.1%}")


if __name__ == "__main__":
    main()
