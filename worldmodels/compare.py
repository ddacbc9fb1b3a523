"""Compare finished runs: one Markdown table and one plot of their final metrics against what was swept.

    python -m worldmodels.compare multirun/breakout/<date_time>                   # every job of a sweep
    python -m worldmodels.compare outputs/breakout/<run_a> outputs/breakout/<run_b> --metrics val/loss val/psnr
    python -m worldmodels.compare multirun/breakout/<date_time> --sort val/psnr --descending --out reports/

A run is a directory holding `summary.json` (its final metrics, written by `worldmodels.train`) and Hydra's
`.hydra/overrides.yaml`; a sweep directory (`-m`) holds numbered job directories. Jobs that failed (a `failed.json`,
or no `summary.json`) are listed with their error, never dropped. Writes `compare.md` (one row per run: the run,
the overrides that differ between runs, the metrics; by default every metric the finished runs share) and
`compare.png` (each metric against the swept parameter when exactly one numeric parameter varies, else one bar per
run) into `--out` (default: the sweep directory, or the current directory). The plot leaves out what tells the runs
nothing (unless `--metrics` names it): bookkeeping (`global_step`, learning rates) and metrics equal in every run.
The metric the runs optimized (`optimized_metric` of their `.hydra/config.yaml`, lower is better unless their sweeper's
`direction` is `maximize`) is marked, in the table's heading and on its panel, with its best run.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.run_identity import overrides_dict
from worldmodels.core.sweep import (
    OVERRIDES,
    SUMMARY,
    best_value,
    is_run,
    job_dirs,
    job_result,
    maximizes,
)

CONFIG, HYDRA_CONFIG = ".hydra/config.yaml", ".hydra/hydra.yaml"
MISSING = "-"
# Not worth a panel: counters and the learning-rate schedule (train/lr, LearningRateMonitor's lr-AdamW/pg1, ...).
BOOKKEEPING = re.compile(r"(global_step|step|epoch|lr-.*|.*/lr)")
BEST_COLOR = "tab:red"


@dataclass
class Run:
    dir: Path
    overrides: dict[str, str] = field(default_factory=dict)  # key -> value, as given on the command line
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # None: finished
    optimized: str | None = None  # the run's optimized_metric, None when it has no readable config
    maximize: bool = False  # its sweeper maximized it

    @property
    def ok(self) -> bool:
        return self.error is None


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories in `paths`: each path is a run, or a sweep whose job directories are runs."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise UserError(f"{path}: no such directory")
        if is_run(path):
            found.append(path)
            continue
        jobs = job_dirs(path)  # a sweep
        if jobs:
            found.extend(jobs)
        elif (path / ".hydra").is_dir():
            found.append(path)  # a single run that never wrote its summary
        else:
            raise UserError(f"{path}: no runs found (a run directory holds {SUMMARY}; "
                            "a sweep directory holds numbered job directories)")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise UserError("no runs found")
    return unique


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_run(path: Path) -> Run:
    """A run's overrides, metrics and, if it did not finish, why."""
    run = Run(path)
    overrides = path / OVERRIDES
    if overrides.is_file():
        try:
            run.overrides = overrides_dict(OmegaConf.to_container(OmegaConf.load(overrides)) or [])
        except Exception as err:  # noqa: BLE001 (a broken file must not hide the run)
            run.error = f"unreadable {OVERRIDES}: {_one_line(err)}"
    run.metrics, error = job_result(path)
    if error is not None:
        run.error = _one_line(error)
    try:
        if (path / CONFIG).is_file():
            optimized = OmegaConf.load(path / CONFIG).get("optimized_metric")
            run.optimized = None if optimized is None else str(optimized)
        if (path / HYDRA_CONFIG).is_file():
            run.maximize = maximizes(OmegaConf.select(OmegaConf.load(path / HYDRA_CONFIG), "hydra.sweeper.direction"))
    except Exception:  # noqa: BLE001 (an unreadable config only loses the marking)
        run.optimized = None
    return run


def objective(runs: list[Run]) -> tuple[str, bool] | None:
    """The metric the finished runs optimized and whether higher is better; None when they name none or differ."""
    named = {(r.optimized, r.maximize) for r in runs if r.ok and r.optimized}
    return named.pop() if len(named) == 1 else None


def best_run(runs: list[Run], metric: str, maximize: bool) -> Run | None:
    """The finished run with the best finite `metric`, None when no run has one."""
    best = best_value({i: r.metrics[metric] for i, r in enumerate(runs) if r.ok and metric in r.metrics}, maximize)
    return None if best is None else runs[best]


def swept_keys(runs: list[Run]) -> list[str]:
    """The override keys whose values differ between runs (a key missing in some runs counts as differing)."""
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides))
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def choose_metrics(runs: list[Run], wanted: list[str] | None) -> list[str]:
    finished = [r for r in runs if r.ok]
    known = sorted(set().union(*(r.metrics for r in runs))) if runs else []
    if wanted:
        unknown = [m for m in wanted if m not in known]
        if unknown:
            raise UserError(f"unknown metric {unknown[0]!r} (the runs logged: {', '.join(known) or 'nothing'})")
        return list(dict.fromkeys(wanted))
    if not finished:
        return []
    common = sorted(set.intersection(*(set(r.metrics) for r in finished)))
    if not common:
        raise UserError(f"the finished runs share no metric; pick some with --metrics (logged: {', '.join(known)})")
    return common


def plot_metrics(runs: list[Run], metrics: list[str], optimized: str | None) -> list[str]:
    """The metrics worth a panel: not bookkeeping (`BOOKKEEPING`) and not the same in every finished run (when two or
    more logged it); the optimized metric always, first."""
    finished = [r for r in runs if r.ok]

    def constant(metric: str) -> bool:
        values = [r.metrics[metric] for r in finished if metric in r.metrics]
        return len(values) > 1 and math.isclose(min(values), max(values), rel_tol=1e-9, abs_tol=1e-12)

    shown = [m for m in metrics if m != optimized and not (BOOKKEEPING.fullmatch(m) or constant(m))]
    return [optimized, *shown] if optimized in metrics else shown


def sort_runs(runs: list[Run], metric: str | None, descending: bool) -> list[Run]:
    if metric is None:
        return runs

    def key(r: Run) -> tuple:
        value = r.metrics.get(metric, math.nan) if r.ok else math.nan
        missing = math.isnan(value)
        return (missing, 0.0 if missing else (-value if descending else value))

    return sorted(runs, key=key)


def _fmt(value: float | None) -> str:
    if value is None:
        return MISSING
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.5g}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _label(path: Path, base: Path) -> str:
    for root in (base, Path.cwd()):
        try:
            return str(path.relative_to(root.resolve())) or "."
        except ValueError:
            pass
    return str(path)


def markdown_table(runs: list[Run], swept: list[str], metrics: list[str], base: Path) -> str:
    header = ["run", *swept, *metrics, "status"]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    for r in runs:
        values = [_fmt(r.metrics.get(m)) for m in metrics]
        status = "ok" if r.ok else f"failed: {r.error}"
        row = [_label(r.dir, base), *(r.overrides.get(k, MISSING) for k in swept), *values, status]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def numeric_parameter(runs: list[Run], swept: list[str]) -> str | None:
    """The swept key to put on the x axis: the only one that varies, with a number in every finished run."""
    finished = [r for r in runs if r.ok]
    if len(swept) != 1 or not finished:
        return None
    (key,) = swept
    return key if all(_number(r.overrides.get(key)) is not None for r in finished) else None


def _run_label(run: Run, swept: list[str]) -> str:
    return ",".join(f"{k}={run.overrides.get(k, MISSING)}" for k in swept) or run.dir.name


def plot(runs: list[Run], swept: list[str], metrics: list[str], path: Path, title: str,
         goal: tuple[str, bool] | None = None) -> None:
    """Each metric against the one numeric swept parameter (points, and a line through the mean per value), or
    one bar per finished run. `goal` = (the optimized metric, higher is better): its panel is framed and titled as
    such, and its best run drawn in `BEST_COLOR`."""
    import matplotlib  # heavy (~1 s to import): only the plot pays for it, not the table

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use, so the headless backend is the one loaded

    finished = [r for r in runs if r.ok]
    param = numeric_parameter(runs, swept)
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    bar_width = max(3.6, 0.5 * len(finished) + 1.5)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * (3.6 if param else bar_width), rows * 3.0), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, metrics, strict=False):
        have = [r for r in finished if metric in r.metrics]
        best = best_run(have, *goal) if goal and metric == goal[0] else None
        if param:
            xs = [_number(r.overrides[param]) for r in have]
            ys = [r.metrics[metric] for r in have]
            ax.scatter(xs, ys, s=18, zorder=3)
            means = {x: sum(y for x2, y in zip(xs, ys, strict=True) if x2 == x) / xs.count(x) for x in set(xs)}
            ax.plot(sorted(means), [means[x] for x in sorted(means)], zorder=2)
            if best is not None:
                x, y = _number(best.overrides[param]), best.metrics[metric]
                ax.scatter([x], [y], s=90, marker="*", color=BEST_COLOR, zorder=4)
                ax.annotate(f"best: {_fmt(y)}", (x, y), textcoords="offset points", fontsize=7, color=BEST_COLOR,
                            xytext=(6, -12 if goal[1] else 6))  # inside the axes: the best is at its top or bottom
            positive = [x for x in xs if x > 0]
            if positive and len(positive) == len(xs) and max(positive) / min(positive) >= 100:
                ax.set_xscale("log")
            ax.set_xlabel(param)
        else:
            labels = [_run_label(r, swept) for r in have]
            bars = ax.bar(range(len(have)), [r.metrics[metric] for r in have])
            if best is not None:
                bars[have.index(best)].set_color(BEST_COLOR)
            ax.set_xticks(range(len(have)), labels, rotation=30 if len(have) > 3 else 0, ha="right", fontsize=7)
        if goal and metric == goal[0]:
            ax.set_title(f"{metric}: optimized ({'higher' if goal[1] else 'lower'} is better)", fontsize=9,
                         color=BEST_COLOR, fontweight="bold")
            for spine in ax.spines.values():
                spine.set_edgecolor(BEST_COLOR)
                spine.set_linewidth(2)
        else:
            ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
    failed = [_run_label(r, swept) for r in runs if not r.ok]
    fig.suptitle(title + (f"  (failed: {'; '.join(failed)})" if failed else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compare(paths: list[Path], out: Path | None = None, metrics: list[str] | None = None,
            sort: str | None = None, descending: bool = False) -> tuple[Path, Path | None]:
    """Write `compare.md` and `compare.png` for the runs in `paths`; returns their paths (no plot: None)."""
    run_dirs = find_runs(paths)
    runs = [read_run(p) for p in run_dirs]
    chosen = choose_metrics(runs, metrics)
    if sort is not None and sort not in set().union(*(r.metrics for r in runs)):
        raise UserError(f"--sort: unknown metric {sort!r} (the runs logged: "
                        f"{', '.join(sorted(set().union(*(r.metrics for r in runs)))) or 'nothing'})")
    runs = sort_runs(runs, sort, descending)
    swept = swept_keys(runs)
    goal = objective(runs)
    if out is None:
        sweeps = [p for p in paths if not is_run(p)]
        out = sweeps[0] if len(paths) == 1 and sweeps else Path.cwd()
    out.mkdir(parents=True, exist_ok=True)
    failed = sum(not r.ok for r in runs)
    title = ", ".join(str(p) for p in paths)
    table = markdown_table(runs, swept, chosen, out)
    text = [f"# {len(runs)} runs compared ({failed} failed)", "", f"From: {title}", ""]
    best = best_run(runs, *goal) if goal else None
    if goal:
        text += [f"Optimized: {goal[0]} ({'higher' if goal[1] else 'lower'} is better)"
                 + (f"; best: {_label(best.dir, out)} ({_fmt(best.metrics[goal[0]])})." if best else "."), ""]
    if sort:
        text += [f"Sorted by {sort} ({'highest' if descending else 'lowest'} first).", ""]
    text += [table]
    md = out / "compare.md"
    md.write_text("\n".join(text))
    print(table, end="")
    panels = chosen if metrics else plot_metrics(runs, chosen, goal[0] if goal else None)
    png: Path | None = out / "compare.png"
    if panels and any(r.ok for r in runs):
        plot(runs, swept, panels, png, title, goal)
    else:
        png = None
        print("no run finished: nothing to plot" if not any(r.ok for r in runs) else
              "the runs differ in no plotted metric: nothing to plot (pick some with --metrics)")
    print(f"wrote {md}" + (f" and {png}" if png else ""))
    return md, png


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="a sweep directory (multirun/...) or run directories")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="metrics to show and plot (default: every metric the finished runs share)")
    parser.add_argument("--sort", default=None, help="sort the runs by this metric (lowest first)")
    parser.add_argument("--descending", action="store_true", help="with --sort: highest first")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for compare.md and compare.png (default: the sweep directory, or the cwd)")
    args = parser.parse_args(argv)
    metrics = [m for item in args.metrics for m in item.split(",") if m] if args.metrics else None
    compare(args.paths, args.out, metrics, args.sort, args.descending)


if __name__ == "__main__":
    main()
