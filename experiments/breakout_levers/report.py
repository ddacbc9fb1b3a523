"""Study: which lever makes the Breakout dream keep the ball? The lever rows (`train.sh`, the same budget each) and
the learning curves of the two long runs (their periodic checkpoints), all on the same `evaluate`.

    .venv/bin/python experiments/breakout_levers/report.py [--games N] [--no-eval]

For each row or curve point whose checkpoint exists (a row's `last.ckpt`, or a long run's `stepNNNNNN.ckpt` under
`outputs/breakout_levers/<run>/checkpoints/`) and that has no `evals/<name>.eval.json` yet, it exports the checkpoint
with `python -m worldmodels.export` and evaluates the export (`python -m worldmodels.evaluate --games N`, 16 per
player by default). A `one_ball` row exports the same checkpoint with `model.one_ball=true` written into its stored
config (decoding only: training does not read it). Then it writes results.md and results.png from every summary in
evals/ (the previous shipped model's is `evals/previous_breakout_fast.eval.json`, made with `--games 16` like the rest).

The fine-tunes (`train.sh game4_ft game8_ft game4_ft2`) and the 8-frame recipe from scratch (`train.sh game8`) are
evaluated the same way at the steps `FINE_TUNES` names; game4_ft's and game8_ft's step 0, the model they start
from, is
    .venv/bin/python -m worldmodels.evaluate <bf77902's models/breakout>.onnx --games 16 \
        --out evals/ft_start_0.eval.json
and their oracles `ceiling.py --context 4` and `--context 8` (`evals/ceiling_<k>_frames_from8.json`).
"""

from __future__ import annotations

import argparse
import json
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
    "messy_warm_4000": ("+ messy data + every row at the sampler's warm start (step 4,000 of a 10,000-step run)",
                        64_000),
    "messy_palette_warm_4000": ("+ messy data + palette head + every row at the warm start (step 4,000 of 10,000)",
                                64_000),
    "messy_palette_warm_one_ball_4000": ("messy_palette_warm_4000 decoded with one ball (model.one_ball)", 64_000),
    "messy_warm_10000": ("messy_warm, the whole 10,000-step run", 160_000),
    "messy_palette_warm_10000": ("messy_palette_warm, the whole 10,000-step run", 160_000),
    "messy_palette_warm_one_ball_10000": ("messy_palette_warm_10000 decoded with one ball", 160_000),
    "messy_palette_warm_events_one_ball_4000": ("messy_palette_warm_one_ball on event-rich rows "
                                                "(data.event_keep=0.1; step 4,000 of 10,000)", 64_000),
    "messy_palette_warm_events_one_ball_10000": ("messy_palette_warm_events, the whole 10,000-step run, one ball",
                                                 160_000),
}
# The long runs (train.sh's 10,000-step rows, a checkpoint every 500): each curve name -> (run folder, decoded with
# one ball, the steps evaluated). The one-ball curves are the full learning curves; plain decoding is evaluated at
# the rows' steps only (an evaluation takes 4-7 minutes on this machine).
CURVE_STEPS = (1000, 2000, 4000, 7000, 10000)
ROW_STEPS = (1000, 4000, 10000)
LONG_RUNS = {"messy_warm": ("messy_warm", False, ROW_STEPS),
             "messy_palette_warm": ("messy_palette_warm", False, ROW_STEPS),
             "messy_palette_warm_one_ball": ("messy_palette_warm", True, CURVE_STEPS),
             "messy_palette_warm_events": ("messy_palette_warm_events", False, (1000,)),
             "messy_palette_warm_events_one_ball": ("messy_palette_warm_events", True, CURVE_STEPS)}
# The fine-tunes (train.sh's game4_ft and game8_ft: 6,000 steps each from the shipped 4-frame model, a checkpoint
# every 500): each name -> (run folder, the steps evaluated). Step 0 of both is the model they start from
# (`evals/ft_start_0.eval.json`: models/breakout as of bf77902, evaluated by today's evaluate). Their evaluations
# and the `ceiling_<k>_frames_from8.json` oracles score every model from frame 8 (evaluate.EVAL_CONTEXT); the rows
# and curves above were evaluated before that, from frame 4, so they compare with each other, not with these.
# game4_ft2 fine-tunes game4_ft's step 6,000 for 6,000 more (its step 0), game8_ft2 likewise game8_ft's (the shipped
# model); game8 is the 8-frame recipe from scratch.
FT_STEPS = (2000, 4000, 6000)
# The steps their start was trained for.
FT_BEFORE = {"game4_ft": 10_000, "game8_ft": 10_000, "game4_ft2": 16_000, "game8_ft2": 16_000, "game8_ft3": 22_000}
FINE_TUNES = {"game4_ft": ("game4_ft", FT_STEPS, "ft_start_0"), "game8_ft": ("game8_ft", FT_STEPS, "ft_start_0"),
              "game4_ft2": ("game4_ft2", (6000,), "game4_ft_6000"), "game8": ("game8", (4000, 10000), None),
              "game8_ft2": ("game8_ft2", (6000,), "game8_ft_6000"),
              "game8_ft3": ("game8_ft3", (2000, 4000, 6000), "game8_ft2_6000")}
# The same checkpoints decoded in the game's layout (`model.layout`: whole bricks, one paddle, one ball): each name
# -> (run folder, step); beside each, the same checkpoint's own evaluation (its fine-tune's row).
# (game8_ft3 was trained after breakout_game8 took `model.layout: true`: its own rows decode with the layout.)
LAYOUT = {"game8_ft2_6000_layout": ("game8_ft2", 6000)}


def _serve(r: dict) -> str:
    """A serve within a game; "*" where the summary predates evaluate's split and pools new games (the last life
    lost) into it."""
    right = f"{r['one_step']['serve']['model']['ball_right']:.3f}"
    return right if "new_game" in r["one_step"] else right + "*"


COLUMNS = (
    ("ball-kept median", lambda r: r["rollout"]["model"]["ball_kept"]["median"], "{:g}"),
    ("ball within 1.5 px @8", lambda r: r["rollout"]["model"]["horizons"]["8"]["ball_within"], "{:.3f}"),
    ("@32", lambda r: r["rollout"]["model"]["horizons"]["32"]["ball_within"], "{:.3f}"),
    ("extra ball @32", lambda r: r["rollout"]["model"]["horizons"]["32"]["extra_ball"], "{:.3f}"),
    ("ball missing @32", lambda r: r["rollout"]["model"]["horizons"]["32"]["ball_missing"], "{:.3f}"),
    ("paddle right @32", lambda r: r["rollout"]["model"]["horizons"]["32"]["paddle_right"], "{:.3f}"),
    ("serve right", _serve, "{}"),
    ("new game right", lambda r: r["one_step"]["new_game"]["model"]["ball_right"], "{:.3f}"),
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


def export_and_evaluate(ckpt: Path, out: Path, games: int, decode: dict | None = None) -> None:
    """`decode`: model fields (one_ball, layout) to write into a copy of the checkpoint before exporting it."""
    with tempfile.TemporaryDirectory() as tmp:
        if decode:
            ckpt = decode_copy(ckpt, Path(tmp) / ckpt.name, decode)
        subprocess.run([sys.executable, "-m", "worldmodels.export", str(ckpt), "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        evaluate(Path(tmp) / "breakout.onnx", out, games)


def decode_copy(ckpt: Path, out: Path, decode: dict) -> Path:
    """The checkpoint with `decode` (e.g. `model.one_ball: true`) in its stored config (the weights as they are)."""
    import torch  # heavy: only the rows that change the decoding need it

    from worldmodels.core.config import CHECKPOINT_KEY  # beside torch: only those rows need it

    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    checkpoint[CHECKPOINT_KEY]["config"]["model"].update(decode)
    torch.save(checkpoint, out)
    return out


def step_checkpoint(run: str, step: int) -> Path:
    return ROOT / "outputs" / "breakout_levers" / run / "checkpoints" / f"step{step:06d}.ckpt"


def evaluate_runs(games: int) -> None:
    """Every row and curve point whose checkpoint exists and that has no summary in evals/ yet."""
    EVALS.mkdir(exist_ok=True)
    todo = {}
    for row in ROWS:
        run = ROOT / "outputs" / "breakout_levers" / row
        if (run / "export" / "breakout.onnx").exists():  # a finished train.sh row, exported by today's code
            todo[row] = (run / "checkpoints" / "last.ckpt", False)
    for name, (run, one_ball, steps) in LONG_RUNS.items():
        for step in steps:
            todo[f"{name}_{step}"] = (step_checkpoint(run, step), {"one_ball": True} if one_ball else None)
    for name, (run, steps, _) in FINE_TUNES.items():
        for step in steps:
            todo[f"{name}_{step}"] = (step_checkpoint(run, step), None)  # the recipe decodes with one ball
    for name, (run, step) in LAYOUT.items():
        todo[name] = (step_checkpoint(run, step), {"layout": True})
    for name, (ckpt, decode) in todo.items():
        out = EVALS / f"{name}.eval.json"
        if ckpt.exists() and not out.exists():
            export_and_evaluate(ckpt, out, games, decode)


def curve(name: str) -> list[tuple[int, dict]]:
    start = FINE_TUNES.get(name, (None, None, None))[2]
    steps = LONG_RUNS[name][2] if name in LONG_RUNS else ((0,) if start else ()) + FINE_TUNES[name][1]

    def path(step: int) -> Path:
        return EVALS / (f"{start}.eval.json" if start and step == 0 else f"{name}_{step}.eval.json")

    found = [(step, path(step)) for step in steps]
    return [(step, json.loads(path.read_text())) for step, path in found if path.exists()]


def write_results() -> None:
    head = "| row | trained rows | " + " | ".join(c[0] for c in COLUMNS) + " |"
    lines = ["Lever rows, the same budget of trained rows (`train.sh`); pooled over the four players, "
             f"{_games()} held-out games.", "", head, "|" + "---|" * (2 + len(COLUMNS))]
    for row, (what, trained) in ROWS.items():
        path = EVALS / f"{row}.eval.json"
        if path.exists():
            r = json.loads(path.read_text())
            lines.append(f"| {row}: {what} | {trained:,} | " + " | ".join(_cell(get, f, r) for _, get, f in COLUMNS)
                         + " |")
    for context in (4, 8, 16):  # ceiling.py's oracles: rollout scores only
        ceiling = EVALS / f"ceiling_{context}_frames.json"
        if ceiling.exists():
            r = {"rollout": {"model": json.loads(ceiling.read_text())["oracle"]}}
            lines.append(f"| {context}-frame physics oracle (ceiling.py: the game's rules, the ball's state read from "
                         f"{context} context frames) | - | " + " | ".join(_cell(get, f, r) for _, get, f in COLUMNS)
                         + " |")
    copy = _any_result()
    if copy:
        lines.append("| copy last frame (one step) / frozen start frame (rollout) | - | " + " | ".join(
            _cell(get, f, _baseline(copy)) for _, get, f in COLUMNS) + " |")
    for name in LONG_RUNS:
        lines += ["", f"Learning curve of `{name}` (16 rows a step; the checkpoints of one 10,000-step run).", "",
                  head.replace("| row |", "| step |"), "|" + "---|" * (2 + len(COLUMNS))]
        for step, r in curve(name):
            lines.append(f"| {step:,} | {step * 16:,} | " + " | ".join(_cell(get, f, r) for _, get, f in COLUMNS)
                         + " |")
    lines += ["", "## Fine-tuning the shipped model with 8 context frames, and with its own 4 (the control)", "",
              "game4_ft and game8_ft start from the shipped 4-frame model (step 0; the 8-frame net's older 4 frames "
              "start at zero weight, so it starts as that model) and train 6,000 more steps of the same recipe. "
              "game4_ft2 trains game4_ft's last step for 6,000 more (22,000 steps in all); game8 is the 8-frame "
              "recipe from scratch (10,000 steps, like the shipped model). Every model here, and the oracles, is "
              "scored from frame 8 of each game, so 4- and 8-frame models predict the same frames.", "",
              head.replace("| row |", "| run, step |"), "|" + "---|" * (2 + len(COLUMNS))]
    for name in FINE_TUNES:
        for step, r in curve(name):
            cells = " | ".join(_cell(get, f, r) for _, get, f in COLUMNS)
            lines.append(f"| {name}, {step:,} | {step * 16:,} | {cells} |")
    for context in (4, 8):
        ceiling = EVALS / f"ceiling_{context}_frames_from8.json"
        if ceiling.exists():
            r = {"rollout": {"model": json.loads(ceiling.read_text())["oracle"]}}
            cells = " | ".join(_cell(get, f, r) for _, get, f in COLUMNS)
            lines.append(f"| {context}-frame physics oracle | - | {cells} |")
    lines += ["", "## Decoding in the game's layout", "",
              "The same checkpoints exported with `model.layout: true` (each brick whole or gone, one paddle of the "
              "game's width, at most one ball; decoding only), beside their own evaluation.", "",
              head.replace("| row |", "| run, step, decoding |"), "|" + "---|" * (2 + len(COLUMNS))]
    for name, (run, step) in LAYOUT.items():
        own, laid_out = EVALS / f"{run}_{step}.eval.json", EVALS / f"{name}.eval.json"
        for decoding, path in (("one ball", own), ("layout", laid_out)):
            if path.exists():
                r = json.loads(path.read_text())
                cells = " | ".join(_cell(get, f, r) for _, get, f in COLUMNS)
                lines.append(f"| {run}, {step:,}, {decoding} | {step * 16:,} | {cells} |")
    lines += ["", "serve right: the new ball after a life lost within a game; new game right: after the last life (a "
              "fresh wall, a random paddle and serve, which no frame foretells). * marks summaries evaluated before "
              "evaluate told the two apart: their serve pools both, and their new-game column is empty."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    plot()
    print((HERE / "results.md").read_text())


def _cell(get, fmt: str, r: dict) -> str:
    try:
        return fmt.format(get(r))
    except KeyError:
        return "-"


def _games() -> str:
    r = _any_result()
    return "-" if r is None else f"{r['games_per_player']} x {len(r['players'])}"


def _any_result() -> dict | None:
    paths = sorted(EVALS.glob("*.eval.json"))  # evaluate's summaries (ceiling.py's has no one-step part)
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
    axes[0].set_xlabel("rollout horizon (frames)")
    axes[0].set_ylabel("games with the ball within 1.5 px")
    axes[0].legend(fontsize=6)
    for name in (*LONG_RUNS, *FINE_TUNES):
        points, before = curve(name), FT_BEFORE.get(name, 0)  # a fine-tune's steps count on from its start's
        axes[1].plot([before + s for s, _ in points], [r["rollout"]["model"]["ball_kept"]["median"] for _, r in points],
                     "o-", label=name + (" (evaluated from frame 8)" if name in FINE_TUNES else ""))
    axes[1].set_xlabel("training steps in all (16 rows a step)")
    axes[1].set_ylabel("ball-kept horizon, median (frames)")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=16, help="held-out games per player")
    parser.add_argument("--no-eval", action="store_true", help="only rewrite results.md/png from evals/")
    args = parser.parse_args()
    if not args.no_eval:
        evaluate_runs(args.games)
    write_results()


if __name__ == "__main__":
    main()
