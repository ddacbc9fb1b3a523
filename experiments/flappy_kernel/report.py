"""Study: Flappy soft-bin kernel width x done/respawn weight. Evaluates every job of the sweep on the same held-out
episodes (those of the CPU profile's data: `evaluate --episodes-like models/flappy_cpu/flappy.json`) and writes
results.md and results.png next to this file, keeping each job's summary in evals/.

    .venv/bin/python experiments/flappy_kernel/report.py [multirun/flappy_kernel]   # after the sweep in README.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COLUMNS = (  # (part, key, header, format): evaluate's "all" row (every held-out policy together), or the job's summary
    ("summary", "val/done_recall", "done recall (teacher-forced, val)", "{:.2f}"),
    ("rollout", "deaths_within_1", "deaths within +-1 frame", "{:.2f}"),
    ("rollout", "phantom_death_rate", "phantom deaths", "{:.2f}"),
    ("rollout", "missed_death_rate", "missed deaths", "{:.2f}"),
    ("rollout", "drift_horizon_mean", "drift horizon (frames)", "{:.1f}"),
    ("teacher_forced", "acc_bird_y", "bird_y exact", "{:.3f}"),
    ("teacher_forced", "acc1_bird_y", "bird_y within 1", "{:.3f}"),
    ("teacher_forced", "acc_pipe_x", "pipe_x exact", "{:.3f}"),
    ("teacher_forced", "stable_gap_exact", "stable gap exact", "{:.3f}"),
    ("teacher_forced", "acc_done", "done exact", "{:.4f}"),
)


def swept(job: Path) -> dict[str, float]:
    """The job's swept values, from Hydra's record of its overrides."""
    import yaml

    pairs = (o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
    return {k: float(v) for k, v in pairs if k in ("module.soft_bin_width", "module.done_weight")}


def evaluate(job: Path) -> dict:
    out = HERE / "evals" / f"job{job.name}.eval.json"
    if not out.exists():
        out.parent.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "worldmodels.evaluate", str(job / "export" / "flappy.onnx"),
               "--episodes-like", str(ROOT / "models" / "flappy_cpu" / "flappy.json"), "--out", str(out)]
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, nargs="?", default=ROOT / "multirun" / "flappy_kernel")
    args = parser.parse_args()
    jobs = sorted((p for p in args.sweep.iterdir() if (p / ".hydra").is_dir()), key=lambda p: int(p.name))
    rows = []
    for job in jobs:
        if not (job / "export" / "flappy.onnx").exists():
            reason = json.loads((job / "failed.json").read_text())["error"] if (job / "failed.json").exists() \
                else "no export (unfinished?)"
            rows.append({**swept(job), "job": job.name, "error": reason})
            continue
        r = evaluate(job)
        summary = json.loads((job / "summary.json").read_text())["metrics"]
        metrics = {key: summary[key] if part == "summary" else r[part]["all"][key] for part, key, _, _ in COLUMNS}
        rows.append({**swept(job), "job": job.name, "val/loss": summary.get("val/loss"), **metrics})
    rows.sort(key=lambda r: (r["module.done_weight"], r["module.soft_bin_width"]))
    head = "| kernel width (bins) | done/respawn weight | " + " | ".join(c[2] for c in COLUMNS) + " |"
    lines = [head, "|---|---|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = ([r["error"]] + ["-"] * (len(COLUMNS) - 1)) if "error" in r else \
            [fmt.format(r[key]) for _, key, _, fmt in COLUMNS]
        lines.append(f"| {r['module.soft_bin_width']:g} | {r['module.done_weight']:g} | " + " | ".join(cells) + " |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    (HERE / "results.json").write_text(json.dumps(rows, indent=1) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    shown = [c for c in COLUMNS if c[1] in ("val/done_recall", "missed_death_rate", "drift_horizon_mean", "acc_bird_y",
                                            "stable_gap_exact")]
    fig, axes = plt.subplots(1, len(shown), figsize=(18, 3.6))
    for ax, (_, key, header, _) in zip(axes, shown, strict=True):
        for weight in sorted({r["module.done_weight"] for r in ok}):
            mine = [r for r in ok if r["module.done_weight"] == weight]
            ax.plot([r["module.soft_bin_width"] for r in mine], [r[key] for r in mine], marker="o",
                    label=f"done/respawn weight {weight:g}")
        ax.set(xlabel="soft-bin kernel width (bins; 0 = plain cross-entropy)", title=header)
        ax.set_xticks(sorted({r["module.soft_bin_width"] for r in ok}))
    axes[0].legend(fontsize=8)
    fig.suptitle("Flappy, 500 training steps per model, all held-out policies together", fontsize=10)
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=110)
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()
