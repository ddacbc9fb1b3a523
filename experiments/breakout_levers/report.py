"""Study: which lever makes the Breakout dream keep the ball? The lever rows (`train.sh`, the same budget each) and
the learning curve of `experiment=breakout_game` (its periodic checkpoints), all on the same `evaluate`.

    .venv/bin/python experiments/breakout_levers/report.py [--game-run outputs/breakout_game] [--games N]

For each finished lever row (it has its end-of-fit export `outputs/breakout_levers/<row>/export/breakout.onnx`)
and, once the game run has finished, its checkpoints at steps 1,000, 2,000, 4,000 and its last, that have no
`evals/<name>.eval.json` yet, it exports the checkpoint (a row's `last.ckpt`) with `python -m worldmodels.export` and
evaluates the export (`python -m worldmodels.evaluate --games N`, 16 per player by default); then it writes
results.md and results.png from every summary in evals/ (the previous shipped model's is
`evals/previous_breakout_fast.eval.json`, made with `--games 16` like the rest).
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
ROOT = HERE.parent.parent
EVALS = HERE / "evals"
# Row -> (what it changes against the one before, trained rows); `previous_breakout_fast` is the shipped model
# this study replaces (experiment=breakout_fast, 3,000 steps of 16 one-step rows).
ROWS = {
    "previous_breakout_fast": ("the previous models/breakout: breakout_fast, 3,000 steps", 48_000),
    "fast": ("breakout_fast recipe at this budget (tracker data, 30% random keys)", 64_000),
    "messy": ("+ messy data (missed serves, moves away, restarts)", 64_000),
    "messy_noise": ("+ messy data + context noise (std up to 0.1)", 64_000),
    "messy_palette": ("+ messy data + palette head (per-pixel colour choice, cross-entropy)", 64_000),
    "messy_palette_unroll": ("messy_palette, then 500 more steps on rows unrolled over 4 steps", 96_000),
    "messy_unroll": ("+ messy data + unrolled loss over 4 steps (data.unroll=4, 1,000 steps)", 64_000),
}
CURVE_STEPS = (1000, 2000, 4000)  # the game run's checkpoints on the learning curve, with its last one
COLUMNS = (
    ("ball-kept median", lambda r: r["rollout"]["model"]["ball_kept"]["median"], "{:g}"),
    ("ball within 1.5 px @8", lambda r: r["rollout"]["model"]["horizons"]["8"]["ball_within"], "{:.3f}"),
    ("@32", lambda r: r["rollout"]["model"]["horizons"]["32"]["ball_within"], "{:.3f}"),
    ("extra ball @32", lambda r: r["rollout"]["model"]["horizons"]["32"]["extra_ball"], "{:.3f}"),
    ("ball missing @32", lambda r: r["rollout"]["model"]["horizons"]["32"]["ball_missing"], "{:.3f}"),
    ("serve right", lambda r: r["one_step"]["serve"]["model"]["ball_right"], "{:.3f}"),
    ("after paddle right", lambda r: r["one_step"]["after_paddle"]["model"]["ball_right"], "{:.3f}"),
    ("paddle bounce right", lambda r: r["one_step"]["paddle_bounce"]["model"]["ball_right"], "{:.3f}"),
    ("brick vanishes", lambda r: r["one_step"]["brick_break"]["model"]["brick_vanishes"], "{:.3f}"),
    ("flight right", lambda r: r["one_step"]["flight"]["model"]["ball_right"], "{:.3f}"),
    ("paddle into wall right", lambda r: r["one_step"]["paddle into a wall"]["model"]["paddle_right"], "{:.3f}"),
    ("PSNR @32", lambda r: r["rollout"]["model"]["horizons"]["32"]["psnr"], "{:.2f}"),
)


def evaluate(onnx: Path, out: Path, games: int) -> None:
    subprocess.run([sys.executable, "-m", "worldmodels.evaluate", str(onnx), "--games", str(games), "--out",
                    str(out)], check=True, stdout=subprocess.DEVNULL)
    print(f"evaluated {onnx} -> {out.relative_to(ROOT)}")


def export_and_evaluate(ckpt: Path, out: Path, games: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "worldmodels.export", str(ckpt), "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        evaluate(Path(tmp) / "breakout.onnx", out, games)


def evaluate_runs(game_run: Path, games: int) -> None:
    """Rows whose run has finished (its end-of-fit export exists), and the game run's curve once it has finished."""
    EVALS.mkdir(exist_ok=True)
    for row in ROWS:
        run = ROOT / "outputs" / "breakout_levers" / row
        out = EVALS / f"{row}.eval.json"
        if (run / "export" / "breakout.onnx").exists() and not out.exists():
            export_and_evaluate(run / "checkpoints" / "last.ckpt", out, games)  # exported by today's code
    if not (game_run / "export" / "breakout.onnx").exists():
        return
    ckpts = {int(re.findall(r"\d+", p.name)[0]): p for p in (game_run / "checkpoints").glob("step*.ckpt")}
    for step in sorted(s for s in ckpts if s in CURVE_STEPS or s == max(ckpts)):
        out = EVALS / f"breakout_game_{step}.eval.json"
        if not out.exists():
            export_and_evaluate(ckpts[step], out, games)


def curve() -> list[tuple[int, dict]]:
    found = [(int(re.findall(r"\d+", p.name)[0]), json.loads(p.read_text()))
             for p in EVALS.glob("breakout_game_*.eval.json")]
    return sorted(found, key=lambda item: item[0])


def write_results() -> None:
    head = "| row | trained rows | " + " | ".join(c[0] for c in COLUMNS) + " |"
    lines = ["Lever rows, the same budget of trained rows (`train.sh`); pooled over the four players, "
             f"{_games()} held-out games.", "", head, "|" + "---|" * (2 + len(COLUMNS))]
    for row, (what, trained) in ROWS.items():
        path = EVALS / f"{row}.eval.json"
        if path.exists():
            r = json.loads(path.read_text())
            lines.append(f"| {row}: {what} | {trained:,} | " + " | ".join(f.format(get(r)) for _, get, f in COLUMNS)
                         + " |")
    copy = _any_result()
    if copy:
        lines.append("| copy last frame (one step) / frozen start frame (rollout) | - | " + " | ".join(
            f.format(get(_baseline(copy))) for _, get, f in COLUMNS) + " |")
    lines += ["", "Learning curve of `experiment=breakout_game` (16 rows a step).", "",
              head.replace("| row |", "| step |"), "|" + "---|" * (2 + len(COLUMNS))]
    for step, r in curve():
        lines.append(f"| {step:,} | {step * 16:,} | " + " | ".join(f.format(get(r)) for _, get, f in COLUMNS) + " |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    plot()
    print((HERE / "results.md").read_text())


def _games() -> str:
    r = _any_result()
    return "-" if r is None else f"{r['games_per_player']} x {len(r['players'])}"


def _any_result() -> dict | None:
    paths = sorted(EVALS.glob("*.eval.json"))
    return json.loads(paths[0].read_text()) if paths else None


def _baseline(r: dict) -> dict:
    """The same result with the model's columns replaced by copy-last (one step) and the frozen start (rollout)."""
    one = {event: {"model": scores["copy last frame"]} for event, scores in r["one_step"].items()}
    for event in one:
        one[event]["model"].setdefault("brick_vanishes", 0.0 if event == "brick_break" else float("nan"))
    return {"one_step": one, "rollout": {"model": r["rollout"]["copy last frame"]}}


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for row in ROWS:
        path = EVALS / f"{row}.eval.json"
        if path.exists():
            h = json.loads(path.read_text())["rollout"]["model"]["horizons"]
            axes[0].plot([int(k) for k in h], [v["ball_within"] for v in h.values()], label=row)
    for step, r in curve()[-1:]:
        h = r["rollout"]["model"]["horizons"]
        axes[0].plot([int(k) for k in h], [v["ball_within"] for v in h.values()], "k-", lw=2,
                     label=f"breakout_game {step:,} steps")
    axes[0].set_xlabel("rollout horizon (frames)")
    axes[0].set_ylabel("games with the ball within 1.5 px")
    axes[0].legend(fontsize=7)
    steps = [s for s, _ in curve()]
    for name, key in (("ball-kept median", lambda r: r["rollout"]["model"]["ball_kept"]["median"]),):
        axes[1].plot(steps, [key(r) for _, r in curve()], "o-", label=name)
    axes[1].set_xlabel("breakout_game training step")
    axes[1].set_ylabel("ball-kept horizon, median (frames)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game-run", type=Path, default=ROOT / "outputs" / "breakout_game")
    parser.add_argument("--games", type=int, default=16, help="held-out games per player")
    parser.add_argument("--no-eval", action="store_true", help="only rewrite results.md/png from evals/")
    args = parser.parse_args()
    if not args.no_eval:
        evaluate_runs(args.game_run, args.games)
    write_results()


if __name__ == "__main__":
    main()
