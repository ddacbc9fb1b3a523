"""The learning curve of gym_tokens runs: their validation rows from `logger=csv` (`<run>/csv/metrics.csv`).

    python experiments/cartpole_tokens/curve.py outputs/gym_tokens/<run>/csv/metrics.csv [more runs ...]
"""

from __future__ import annotations

import csv
import sys

COLUMNS = ("val/loss", "val/ce", "val/acc1_cart_x", "val/acc1_cart_v", "val/acc1_pole_angle", "val/acc1_pole_v",
           "val/done_recall")


def main(paths: list[str]) -> None:
    if not paths:
        sys.exit(__doc__)
    print("| run | step | " + " | ".join(c.removeprefix("val/") for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("val/loss"):
                    cells = [f"{float(row[c]):.4f}" if row.get(c) else "-" for c in COLUMNS]
                    print(f"| {path} | {int(row['step']) + 1} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
