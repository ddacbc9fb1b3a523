"""The learning curve of an atari_breakout run: train loss and held-out one-step PSNR (model vs copy-last) by step.

    python experiments/atari_breakout/curve.py outputs/gym_pixels/<run>/csv/metrics.csv --out curve.png

Reads the run's CSV log (`logger=csv`); prints the validation rows as a markdown table and writes the plot.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", type=Path, help="the run's csv/metrics.csv")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("curve.png"))
    args = parser.parse_args()
    rows = list(csv.DictReader(args.metrics.open()))
    train = [(int(r["step"]), float(r["train/loss"])) for r in rows if r.get("train/loss")]
    val = [(int(r["step"]), float(r["val/loss"]), float(r["val/psnr"]), float(r["val/psnr_copy_last"]))
           for r in rows if r.get("val/psnr")]
    print("| step | val loss | val PSNR model (dB) | val PSNR copy-last (dB) |\n|---|---|---|---|")
    for step, loss, psnr, copy in val:
        print(f"| {step} | {loss:.5f} | {psnr:.2f} | {copy:.2f} |")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(*zip(*train, strict=True), lw=0.6)
    left.set(xlabel="step", ylabel="train loss", yscale="log", title="training loss")
    steps = [v[0] for v in val]
    right.plot(steps, [v[2] for v in val], "o-", label="model")
    right.plot(steps, [v[3] for v in val], "s--", label="copy last frame")
    right.set(xlabel="step", ylabel="PSNR (dB)", title="held-out one-step PSNR")
    right.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
