"""Benchmarks (not tests): tables of ratios against a baseline measured in the same run, and the machine they ran on.

    python -m worldmodels.bench                     # both tables
    python -m worldmodels.bench --only sim          # simulator rows/s: vectorized vs one game at a time
    python -m worldmodels.bench --only train --train-steps 40 experiment=breakout_cpu
    python -m worldmodels.bench --only decode [--flappy-onnx outputs/flappy/<run>/export/flappy.onnx]
    python -m worldmodels.bench --only denoiser [--breakout-onnx models/breakout/breakout.onnx ...]
    python -m worldmodels.bench --only dream        # dream env steps/s at N = 1, 16, 64 against the real games
    python -m worldmodels.bench --seed-denoiser-out /tmp/seed_scale   # the seed-scale net for the bench page

`sim`: rows/s (one row = one game step + its rendered frame) of one vectorized BreakoutSim of N games against a
Python loop over N one-game simulators. `train`: training samples/s of a short real fit and the share of wall time
the training loop spent waiting for the next batch, with rows made in the main process and in a worker process.
`decode`: Flappy token decoding with onnxruntime (1 thread) at a full 384-token context, one game played by a
scripted pilot: the frame graph (one call per frame, when the export has one) and the KV-cache decode graph (one
call per token) against a full recompute (the prefill graph over the whole window for every token), the frame
graph's passes per frame over `--decode-tokens` (default 10,000), and the cost per token of a `--long-tokens` game
(default 100,000) against 1,000-token games (the cost must not grow). Without `--flappy-onnx` a randomly
initialised default-size model is exported first: its per-token speed is a trained model's, its passes per frame
are not.
`dream`: env steps/s of the dream envs (`worldmodels.dream`: the single FlappyDream-v0 and the vector dreams at
N = `--dream-sizes`, default 1, 16, 64) against the real game's env (FlappyBird-v0; the Breakout simulator's
BreakoutEnv) in the same run.
`denoiser`: one Breakout denoiser call (batch 1) in PyTorch and in onnxruntime with 1 and 2 threads, with its
convolution GFLOP, for the seed-scale TinyDenoiser (width 96, 14 blocks, exported here with random weights: the
baseline) and each `--breakout-onnx` (repeatable; default the shipped models/breakout), each with its speed-up
against the baseline and the one-step dream frames/s (the browser's bench page measures the same in WASM).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["sim", "train", "decode", "denoiser", "dream"], default=None)
    parser.add_argument("--games", type=int, default=256, help="games in the vectorized simulator")
    parser.add_argument("--steps", type=int, default=200, help="simulator steps for the vectorized run")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps per configuration")
    parser.add_argument("--flappy-onnx", default=None, help="an exported flappy.onnx for the decode benchmark")
    parser.add_argument("--breakout-onnx", action="append", default=[],
                        help="an exported breakout.onnx for the denoiser benchmark (repeat for several; default: "
                             "models/breakout/breakout.onnx)")
    parser.add_argument("--denoiser-calls", type=int, default=30, help="timed denoiser calls per runtime")
    parser.add_argument("--decode-tokens", type=int, default=10_000, help="timed tokens per decoder")
    parser.add_argument("--long-tokens", type=int, default=100_000,
                        help="tokens of the long game whose cost per token is compared with 1,000-token games")
    parser.add_argument("--dream-flappy", default="models/flappy/flappy.json", help="the Flappy export to dream in")
    parser.add_argument("--dream-breakout", default="models/breakout/breakout.json",
                        help="the Breakout export to dream in")
    parser.add_argument("--dream-sizes", default="1,16,64", help="vector env sizes N, comma-separated")
    parser.add_argument("--dream-steps", type=int, default=400, help="timed dream env steps per row (about)")
    parser.add_argument("overrides", nargs="*", default=["experiment=breakout_cpu"],
                        help="Hydra overrides for the training benchmark")
    parser.add_argument("--seed-denoiser-out", type=Path, default=None,
                        help="write the seed-scale TinyDenoiser (random weights) with a manifest like the shipped "
                             "Breakout model's into this folder, for the browser's bench page, and exit")
    args = parser.parse_args(argv)
    from worldmodels import benchmarks as b  # torch, Lightning and both tasks: ~10 s that --help skips

    if args.seed_denoiser_out:
        args.seed_denoiser_out.mkdir(parents=True, exist_ok=True)
        like = json.loads(Path("models/breakout/breakout.json").read_text())
        print(f"wrote {b.seed_denoiser_onnx(args.seed_denoiser_out, like)}")
        return
    print(f"machine: {b.machine()}\n")
    if args.only in (None, "sim"):
        rows = b.bench_sim(args.games, args.steps)
        base = rows[0][1]
        print(f"{'simulator':<36}{'rows/s':>12}{'vs loop':>10}")
        for name, rate in rows:
            print(f"{name:<36}{rate:>12,.0f}{rate / base:>9.1f}x")
        print()
    if args.only in (None, "train"):
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        rows = b.bench_train(args.overrides, args.train_steps)
        base = rows[0][1]
        print(f"training ({' '.join(args.overrides)})")
        print(f"{'rows made in':<36}{'samples/s':>12}{'vs main':>10}{'data wait':>12}")
        for name, rate, wait in rows:
            print(f"{name:<36}{rate:>12.1f}{rate / base:>9.2f}x{wait:>11.1%}")
        print()
    if args.only in (None, "decode"):
        r = b.bench_decode(args.flappy_onnx, args.decode_tokens, args.long_tokens)
        token, frame = r["per_token"], r["per_frame"]
        cache = "ring cache (sliding window)" if r["ring"] else "ordered window"
        print(f"flappy decode, onnxruntime 1 thread, {r['context']}-token {cache}, {token['tokens']:,} tokens per "
              f"game ({token['slides']} window slides), weights: {r['weights']}")
        print(f"{'':<48}{'tokens/s':>12}{'frames/s':>10}{'vs recompute':>14}")
        rows = [("full recompute (prefill graph per token)", r["recompute"])]
        runs = [("KV cache, 1 call per token", token)] + ([("frame graph, 1 call per frame", frame)] if frame else [])
        for label, run in runs:
            rows += [(f"{label}: first 1,000", run["first"]), (f"{label}: last 1,000", run["last"]),
                     (f"{label}: mean", run["mean"])]
        for name, rate in rows:
            print(f"{name:<48}{rate:>12,.0f}{rate / 10:>10,.0f}{rate / r['recompute']:>13.1f}x")
        if frame:
            print(f"frame graph vs 1 call per token (mean): {frame['mean'] / token['mean']:.2f}x; "
                  f"{frame['passes_per_frame']:.2f} passes a frame; frames: "
                  f"{'identical' if r['identical'] else 'DIFFERENT'}")
        label = "frame graph" if frame else "1 call per token"
        print(f"{label}, a {r['long_tokens']:,}-token game against five 1,000-token games: cost per token "
              f"{r['growth']['per_token_s']:.2f}x, per model call {r['growth']['per_call_s']:.2f}x")
        print()
    if args.only in (None, "denoiser"):
        rows = b.bench_denoiser(args.breakout_onnx or ["models/breakout/breakout.onnx"], args.denoiser_calls)
        runtimes = ("PyTorch", "onnxruntime 1 thread", "onnxruntime 2 threads")
        print("breakout denoiser, batch 1: ms per call and speed-up against the seed-scale net in this run")
        print(f"{'model':<44}{'GFLOP':>7}" + "".join(f"{r:>24}" for r in runtimes) + f"{'fps@1 (ORT 2)':>15}")
        base = rows[0]
        for row in rows:
            cells = "".join(f"{row[r]:>13.2f} ms {base[r] / row[r]:>6.1f}x" for r in runtimes)
            print(f"{row['model'][-44:]:<44}{row['gflop']:>7.2f}{cells}{1000 / row[runtimes[2]]:>15.1f}")
        print()
    if args.only in (None, "dream"):
        sizes = tuple(int(n) for n in args.dream_sizes.split(","))
        tables = b.bench_dream(args.dream_flappy, args.dream_breakout, sizes, args.dream_steps)
        for task, rows in tables.items():
            base = rows[0][1]
            print(f"{task} env steps/s, onnxruntime 1 thread, against the real game in this run")
            print(f"{'env':<36}{'steps/s':>12}{'vs real':>10}")
            for name, rate in rows:
                print(f"{name:<36}{rate:>12,.0f}{rate / base:>9.3f}x")
            print()

if __name__ == "__main__":
    main()
