"""Study: Flappy trained on PPO-only episodes versus the full mix with bad policies, judged on the full mix's
held-out episodes (so under bad players too). Reads the two `evaluate` summaries and writes results.md/results.png.

    .venv/bin/python experiments/flappy_data_mix/report.py     # after the commands in this folder's README
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = {"full mix (flappy_cpu)": HERE / "full_mix.eval.json", "PPO only": HERE / "ppo_only.eval.json"}
POLICIES = ("ppo", "noisy_ppo", "give_up", "random", "do_nothing", "all")
ROWS = (("rollout", "deaths_within_1", "deaths predicted within +-1 frame", "{:.2f}"),
        ("rollout", "phantom_death_rate", "phantom-death rate", "{:.2f}"),
        ("rollout", "drift_horizon_mean", "drift horizon (mean frames)", "{:.1f}"),
        ("teacher_forced", "acc_bird_y", "teacher-forced bird_y exact", "{:.3f}"),
        ("teacher_forced", "acc_done", "teacher-forced done exact", "{:.4f}"))


def main() -> None:
    results = {name: json.loads(path.read_text()) for name, path in RUNS.items()}
    lines = ["| metric | training data | " + " | ".join(POLICIES) + " |", "|---|---|" + "---|" * len(POLICIES)]
    for part, key, label, fmt in ROWS:
        for name, r in results.items():
            cells = [fmt.format(r[part][p][key]) if p in r[part] else "-" for p in POLICIES]
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    x = np.arange(len(POLICIES))
    for ax, (part, key, label, _) in zip(axes, ROWS[:3], strict=True):
        for i, (name, r) in enumerate(results.items()):
            ax.bar(x + (i - 0.5) * 0.4, [r[part][p][key] for p in POLICIES], 0.4, label=name)
        ax.set_xticks(x, POLICIES, rotation=30, fontsize=8)
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle("held-out episodes of the full mix, by the policy that played them", fontsize=10)
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=110)
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()
