"""Study: which lever makes the Flappy dream play like the game? Closed-loop scores of scripted players, the game's
rules on every dreamed transition, and forced-gap deaths, for the previous models and along the learning curve of
`experiment=flappy_game` and `experiment=flappy_bird` (their periodic checkpoints, exported and evaluated like the
shipped model).

    .venv/bin/python experiments/flappy_closed_loop/report.py [<run folder> [--name flappy_bird] [--loop-games N]]

For each `checkpoints/step<N>.ckpt` of the run without `evals/<name>_<N>.eval.json` it exports the checkpoint
(`python -m worldmodels.export`) and evaluates the export (`python -m worldmodels.evaluate --loop-games N`, 16 by
default); then it writes results.md and results.png from every summary in evals/.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVALS = HERE / "evals"
# Earlier models, evaluated with the default flags: label -> (summary, training steps, gap_y target, bird_y target).
EARLIER = {"models/flappy_cpu": ("flappy_cpu.eval.json", 1500, "soft", "soft"),
           "previous models/flappy (flappy_fast)": ("flappy_fast.eval.json", 3000, "soft", "soft")}
# Runs with a learning curve: experiment name -> (gap_y target, bird_y target, line style).
RUNS = {"flappy_game": ("one-hot", "soft", "-"), "flappy_bird": ("one-hot", "one-hot", "--")}
SKILLS = ("good", "medium", "sloppy")
COLUMNS = (
    ("score ratio good", lambda r: r["closed_loop"]["good"]["score_ratio"], "{:.2f}"),
    ("score ratio medium", lambda r: r["closed_loop"]["medium"]["score_ratio"], "{:.2f}"),
    ("score ratio sloppy", lambda r: r["closed_loop"]["sloppy"]["score_ratio"], "{:.2f}"),
    ("new gaps legal", lambda r: r["rules"]["dream"]["new_gap_legal"], "{:.3f}"),
    ("settled gap moved (per transition)", lambda r: r["rules"]["dream"]["settled_gap_rate"], "{:.4f}"),
    ("respawn token on respawns", lambda r: r["rules"]["dream"]["respawn_token_present"], "{:.3f}"),
    ("bird rule broken", lambda r: r["rules"]["dream"]["bird_rate"], "{:.4f}"),
    ("pipe spacing broken", lambda r: r["rules"]["dream"]["pipe_spacing_rate"], "{:.4f}"),
    ("deaths w/o collision per game", lambda r: r["rules"]["dream"]["deaths_without_collision_per_game"], "{:.2f}"),
    ("collisions w/o death per game", lambda r: r["rules"]["dream"]["collisions_without_death_per_game"], "{:.2f}"),
    ("teacher-forced bird_y exact", lambda r: r["teacher_forced"]["all"]["acc_bird_y"], "{:.3f}"),
    ("forced gaps: deaths within +-1", lambda r: r["forced_rollout"]["all"]["deaths_within_1"], "{:.2f}"),
)


def evaluate_checkpoints(run: Path, name: str, loop_games: int) -> None:
    EVALS.mkdir(exist_ok=True)
    for ckpt in sorted((run / "checkpoints").glob("step*.ckpt"), key=lambda p: int(re.findall(r"\d+", p.name)[0])):
        step = int(re.findall(r"\d+", ckpt.name)[0])
        out = EVALS / f"{name}_{step}.eval.json"
        if out.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "worldmodels.export", str(ckpt), "--out", tmp], check=True)
            subprocess.run([sys.executable, "-m", "worldmodels.evaluate", str(Path(tmp) / "flappy.onnx"),
                            "--loop-games", str(loop_games), "--out", str(out)], check=True)


def rows() -> list[tuple[str, int, str, str, str | None, dict]]:
    """(label, steps, gap_y target, bird_y target, run name or None for an earlier model, summary)."""
    found = [(label, steps, gap, bird, None, json.loads((EVALS / name).read_text()))
             for label, (name, steps, gap, bird) in EARLIER.items() if (EVALS / name).exists()]
    for run, (gap, bird, _) in RUNS.items():
        curve = sorted(EVALS.glob(f"{run}_*.eval.json"), key=lambda p: int(re.findall(r"\d+", p.name)[0]))
        for path in curve:
            step = int(re.findall(r"\d+", path.name)[0])
            found.append((f"{run}, step {step:,}", step, gap, bird, run, json.loads(path.read_text())))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, nargs="?", help="a run folder of one of the experiments in RUNS")
    parser.add_argument("--name", choices=sorted(RUNS), default="flappy_game", help="the run's experiment")
    parser.add_argument("--loop-games", type=int, default=16, help="closed-loop games per skill per checkpoint")
    args = parser.parse_args()
    if args.run is not None:
        if not (args.run / "checkpoints").is_dir():
            parser.error(f"{args.run} has no checkpoints/ folder: give a training run's folder")
        evaluate_checkpoints(args.run, args.name, args.loop_games)
    table = rows()
    header = ["model", "steps", "gap_y target", "bird_y target", "games per skill", *(c[0] for c in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, steps, gap, bird, _, r in table:
        cells = [fmt.format(get(r)) for _, get, fmt in COLUMNS]
        games = r["closed_loop"]["good"]["games"]
        lines.append(f"| {label} | {steps:,} | {gap} | {bird} | {games} | " + " | ".join(cells) + " |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    earlier = [(label, steps, r) for label, steps, _, _, run, r in table if run is None]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = (("closed-loop score ratio, dream/real", [c for c in COLUMNS[:3]]),
              ("gaps and respawns", [COLUMNS[3], COLUMNS[5]]),
              ("rules broken, per transition", [COLUMNS[4], COLUMNS[6], COLUMNS[7]]))
    for ax, (title, cols) in zip(axes, panels, strict=True):
        for name, get, _ in cols:
            color = None
            for run, (_, _, style) in RUNS.items():
                curve = [(steps, r) for _, steps, _, _, of, r in table if of == run]
                if curve:
                    line, = ax.plot([s for s, _ in curve], [get(r) for _, r in curve], style, marker="o",
                                    color=color, label=f"{name} ({run})")
                    color = line.get_color()
            for label, steps, r in earlier:
                ax.scatter([steps], [get(r)], marker="x" if "cpu" in label else "s", color=color)
        if title.startswith("closed"):
            ax.axhspan(0.8, 1.25, color="green", alpha=0.1, label="target 0.8-1.25")
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training steps")
        ax.legend(fontsize=7)
    fig.suptitle("solid: experiment=flappy_game's checkpoints, dashed: flappy_bird's; x: models/flappy_cpu, "
                 "squares: previous models/flappy",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=110)
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()
