"""The dream-agent study's table and learning curves from its runs (runs/<name>/curve.json, result.json).

    .venv/bin/python experiments/dream_agent/report.py        # writes results.md and results.png here
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
WHAT = {
    "flappy_dream": "PPO in the dream (models/flappy), 300k steps",
    "flappy_dream_1m": "PPO in the dream (models/flappy), 1M steps",
    "flappy_real_300k": "PPO in the real game, 300k steps (the dream agent's steps)",
    "flappy_real_1m": "PPO in the real game, 1M steps",
    "flappy_real_1860k": "PPO in the real game, 1.86M steps (the world model's training frames)",
    "breakout_dream": "PPO in the dream (models/breakout)",
    "breakout_real": "PPO in the real simulator",
}


def main() -> None:
    runs = sorted(p for p in (HERE / "runs").iterdir() if (p / "curve.json").is_file())
    rows = ["| run | task | trained in | steps | real games | real mean score | median | max | random player's "
            "mean | last training-episode return |", "|---|---|---|---|---|---|---|---|---|---|"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        curve = json.loads((run / "curve.json").read_text())
        result = json.loads((run / "result.json").read_text()) if (run / "result.json").is_file() else None
        task = "breakout" if run.name.startswith("breakout") else "flappy"
        ax = axes[0 if task == "flappy" else 1]
        ax.plot([p["steps"] for p in curve], [p["real_mean_score"] for p in curve], marker="o",
                label=run.name, linestyle="--" if "dream" in run.name else "-")
        last_return = next((p["train_return_mean"] for p in reversed(curve) if p["train_return_mean"] is not None),
                           None)
        if result:
            g, rnd = result["real_games"], result["random_player"]
            rows.append(f"| {WHAT.get(run.name, run.name)} | {task} | {result['world']} | {result['steps']:,} | "
                        f"{g['episodes']} | {g['mean_score']:.2f} | {g['median_score']:.1f} | {g['max_score']} | "
                        f"{rnd['mean_score']:.2f} | {last_return:.1f} |")
        else:
            p = curve[-1]
            rows.append(f"| {WHAT.get(run.name, run.name)} (unfinished: last curve point) | {task} | "
                        f"{'dream' if 'dream' in run.name else 'real'} | {p['steps']:,} | 20 | "
                        f"{p['real_mean_score']:.2f} | {p['real_median_score']:.1f} | | | {last_return:.1f} |")
    for ax, title in zip(axes, ("Flappy: pipes passed in the real game", "Breakout: bricks in the real simulator"),
                         strict=True):
        ax.set(xlabel="PPO steps (in the world it trains in)", ylabel="mean real-game score", title=title)
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=110)
    (HERE / "results.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
