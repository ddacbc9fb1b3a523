"""Compare finished runs: one Markdown table and one plot of their final metrics against what was swept.

    python -m worldmodels.compare multirun/breakout/<date_time>                   # every job of a sweep
    python -m worldmodels.compare outputs/breakout/<run_a> outputs/breakout/<run_b> --metrics val/loss val/psnr
    python -m worldmodels.compare multirun/breakout/<date_time> --sort val/psnr --descending --out reports/

A run is a directory holding `summary.json` (its final metrics, written by `worldmodels.train`) and Hydra's
`.hydra/overrides.yaml`; a sweep directory (`-m`) holds numbered job directories. Jobs that failed (a `failed.json`,
or no `summary.json`) are listed with their error, never dropped. Writes `compare.md` (one row per run: the run,
the overrides that differ between runs, the metrics; by default every metric the finished runs share) and
`compare.png` (each metric against the swept parameter when exactly one numeric parameter varies, else one bar per
run) into `--out` (default: the sweep directory, or the current directory).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.run_identity import overrides_dict
from worldmodels.core.sweep import FAILED, read_failure

SUMMARY, OVERRIDES = "summary.json", ".hydra/overrides.yaml"
MISSING = "-"


@dataclass
class Run:
    dir: Path
    overrides: dict[str, str] = field(default_factory=dict)  # key -> value, as given on the command line
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # None: finished

    @property
    def ok(self) -> bool:
        return self.error is None


def _is_run(path: Path) -> bool:
    return (path / SUMMARY).is_file() or (path / FAILED).is_file()


def _job_order(path: Path) -> tuple:
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, path.name)


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories in `paths`: each path is a run, or a sweep whose job directories are runs."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise UserError(f"{path}: no such directory")
        if _is_run(path):
            found.append(path)
            continue
        # A sweep: numbered job directories (even those that died before writing anything), or any that are runs.
        jobs = sorted((p for p in path.iterdir() if p.is_dir() and (p.name.isdigit() or _is_run(p)
                                                                     or (p / ".hydra").is_dir())), key=_job_order)
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
    if (path / SUMMARY).is_file():
        try:
            summary = json.loads((path / SUMMARY).read_text())
            run.metrics = {k: float(v) for k, v in summary["metrics"].items() if isinstance(v, (int, float))}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            run.error = f"unreadable {SUMMARY}: {_one_line(err)}"
    elif run.error is None:
        run.error = f"no {SUMMARY} (still running, killed, or crashed before the end)"
    failure = read_failure(path)
    if failure is not None:
        run.error = _one_line(failure)
    return run


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


def plot(runs: list[Run], swept: list[str], metrics: list[str], path: Path, title: str) -> None:
    """Each metric against the one numeric swept parameter (points, and a line through the mean per value), or
    one bar per finished run."""
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
        if param:
            xs = [_number(r.overrides[param]) for r in have]
            ys = [r.metrics[metric] for r in have]
            ax.scatter(xs, ys, s=18, zorder=3)
            means = {x: sum(y for x2, y in zip(xs, ys, strict=True) if x2 == x) / xs.count(x) for x in set(xs)}
            ax.plot(sorted(means), [means[x] for x in sorted(means)], zorder=2)
            positive = [x for x in xs if x > 0]
            if positive and len(positive) == len(xs) and max(positive) / min(positive) >= 100:
                ax.set_xscale("log")
            ax.set_xlabel(param)
        else:
            labels = [",".join(f"{k}={r.overrides.get(k, MISSING)}" for k in swept) or r.dir.name for r in have]
            ax.bar(range(len(have)), [r.metrics[metric] for r in have])
            ax.set_xticks(range(len(have)), labels, rotation=30 if len(have) > 3 else 0, ha="right", fontsize=7)
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
    failed = [",".join(f"{k}={r.overrides.get(k, MISSING)}" for k in swept) or r.dir.name for r in runs if not r.ok]
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
    if out is None:
        sweeps = [p for p in paths if not _is_run(p)]
        out = sweeps[0] if len(paths) == 1 and sweeps else Path.cwd()
    out.mkdir(parents=True, exist_ok=True)
    failed = sum(not r.ok for r in runs)
    title = ", ".join(str(p) for p in paths)
    table = markdown_table(runs, swept, chosen, out)
    text = [f"# {len(runs)} runs compared ({failed} failed)", "", f"From: {title}", ""]
    if sort:
        text += [f"Sorted by {sort} ({'highest' if descending else 'lowest'} first).", ""]
    text += [table]
    md = out / "compare.md"
    md.write_text("\n".join(text))
    print(table, end="")
    png: Path | None = out / "compare.png"
    if chosen and any(r.ok for r in runs):
        plot(runs, swept, chosen, png, title)
    else:
        png = None
        print("no run finished: nothing to plot")
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
