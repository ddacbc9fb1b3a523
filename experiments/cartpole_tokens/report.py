"""The study's table from its evaluation JSONs (`evals/<row>_<set>.eval.json`, written by the README's commands).

    python experiments/cartpole_tokens/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

EVALS = Path(__file__).parent / "evals"
ROWS = {"holder": "holder", "mix": "holder + PPO"}
SETS = {"heldout": "held-out holder games", "random": "random player", "ppo": "PPO player"}
HORIZONS = ("8", "16", "64", "128")


def cell(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    print("| data | evaluated on | games | one-step error model / copy-last / constant velocity | one step every field "
          "within 1 bin | rollout error model / frozen @8 | @16 | @64 | @128 | rollout within 1 bin @8 | said done "
          "early | done at the true end |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row, data in ROWS.items():
        for name, label in SETS.items():
            path = EVALS / f"{row}_{name}.eval.json"
            if not path.is_file():
                continue
            r = json.loads(path.read_text())
            o, h = r["one_step"], r["rollout"]["by_horizon"]
            errors = " / ".join(cell(o[k]["error_share_of_range"], 4) for k in ("model", "copy_last",
                                                                                   "constant_velocity"))
            roll = [f"{cell(h[k]['error_model'], 4)} / {cell(h[k]['error_frozen'], 4)} ({h[k]['games']})"
                    if k in h and h[k]["games"] else "-" for k in HORIZONS]
            print(f"| {data} | {label} | {r['games']} | {errors} | {cell(o['model']['within_one_bin'])} | "
                  + " | ".join(roll) + f" | {cell(h['8']['within_one_bin'])} | {cell(r['rollout']['early_done'])} | "
                  f"{cell(r['rollout']['end_recall'])} ({r['rollout']['ends']}) |")


if __name__ == "__main__":
    main()
