"""`python -m worldmodels.compare`: finds the runs of a sweep, tables and plots their metrics, lists failed jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import run_cli
from worldmodels.compare import compare, find_runs, numeric_parameter, plot_metrics, read_run, swept_keys
from worldmodels.core.errors import UserError


def make_run(path: Path, overrides: list[str], metrics: dict | None = None, error: str | None = None,
             optimized: str | None = None, direction: str | None = None) -> Path:
    """A run directory as `worldmodels.train` leaves it: .hydra/overrides.yaml, summary.json and/or failed.json;
    with `optimized`, .hydra/config.yaml (its optimized_metric) and .hydra/hydra.yaml (the sweeper's direction)."""
    (path / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), path / ".hydra" / "overrides.yaml")
    if optimized is not None:
        OmegaConf.save(OmegaConf.create({"seed": 0, "optimized_metric": optimized}), path / ".hydra" / "config.yaml")
        sweeper = {"_target_": "optuna", "direction": direction} if direction else {"_target_": "basic"}
        OmegaConf.save(OmegaConf.create({"hydra": {"sweeper": sweeper}}), path / ".hydra" / "hydra.yaml")
    if metrics is not None:
        (path / "summary.json").write_text(json.dumps({"task": "breakout", "metrics": metrics}))
    if error is not None:
        (path / "failed.json").write_text(json.dumps({"error": error}))
    return path


@pytest.fixture
def sweep(tmp_path) -> Path:
    """Three finished jobs (model.width 8, 16, 32), one that failed, one that died without a word."""
    root = tmp_path / "multirun" / "widths"
    for num, (width, loss) in enumerate([(8, 0.5), (16, 0.25), (32, 0.125)]):
        metrics = {"val/loss": loss, "val/psnr": 20.0 + width, "global_step": 4}
        if num == 0:
            metrics["only/here"] = 1.0  # not shared by every run: not a default column
        make_run(root / str(num), ["debug=smoke", f"model.width={width}"], metrics)
    make_run(root / "3", ["debug=smoke", "model.width=-3"], error="model.width: must be > 0 (got -3)")
    make_run(root / "4", ["debug=smoke", "model.width=64"])
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def rows(markdown: str) -> list[list[str]]:
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table if not line.startswith("|---")]


def test_sweep_table_lists_swept_columns_metrics_and_failures(sweep):
    md, png = compare([sweep])
    assert md == sweep / "compare.md" and png == sweep / "compare.png"  # default: into the sweep directory
    header, *body = rows(md.read_text())
    assert header == ["run", "model.width", "global_step", "val/loss", "val/psnr", "status"]  # debug=smoke: same
    assert [r[0] for r in body] == ["0", "1", "2", "3", "4"]
    assert body[1] == ["1", "16", "4", "0.25", "36", "ok"]
    assert body[3][1] == "-3" and body[3][-1] == "failed: model.width: must be > 0 (got -3)"
    assert body[4][1] == "64" and body[4][-1].startswith("failed: no summary.json")
    assert body[3][2:-1] == ["-", "-", "-"]
    assert "5 runs compared (2 failed)" in md.read_text()


def test_sweep_plot_is_written(sweep):
    _, png = compare([sweep], out=sweep / "report")
    assert png.stat().st_size > 1000
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 200
    runs = [read_run(p) for p in find_runs([sweep])]
    assert numeric_parameter(runs, swept_keys(runs)) == "model.width"  # one numeric parameter: metric vs width


def red_pixels(png: Path) -> int:
    """Pixels drawn in BEST_COLOR (matplotlib's tab:red, #d62728): the marked panel's frame, title and best run."""
    with Image.open(png) as image:
        pixels = image.convert("RGB").getdata()
        return sum(abs(r - 0xD6) + abs(g - 0x27) + abs(b - 0x28) < 30 for r, g, b in pixels)


@pytest.mark.parametrize("direction, best", [(None, "2"), ("maximize", "0")])
def test_plot_leaves_out_flat_panels_and_marks_the_optimized_metric(tmp_path, direction, best):
    """Learning rates, the step count and metrics equal in every run get no panel; the optimized metric's panel
    comes first and is marked, with its best run (the lowest loss, or the highest when the sweeper maximized)."""
    root = tmp_path / "sweep"
    for num, (width, loss) in enumerate([(8, 0.5), (16, 0.25), (32, 0.125)]):
        metrics = {"val/loss": loss, "val/psnr": 20.0 + width, "val/psnr_copy_last": 31.4, "global_step": 4,
                   "lr-AdamW/pg1": 1e-4, "lr-AdamW/pg2": 1e-4, "train/lr": 1e-4}
        make_run(root / str(num), [f"model.width={width}"], metrics, optimized="val/loss", direction=direction)
    runs = [read_run(p) for p in find_runs([root])]
    assert plot_metrics(runs, sorted(runs[0].metrics), "val/loss") == ["val/loss", "val/psnr"]

    md, png = compare([root])
    goal = "higher" if direction else "lower"
    assert f"Optimized: val/loss ({goal} is better); best: {best} (" in md.read_text()
    with Image.open(png) as image:
        assert image.size == (720, 300)  # two panels side by side (3.6 x 3 inches each at 100 dpi), not eleven
    assert red_pixels(png) > 500

    _, unmarked = compare([root], out=tmp_path / "asked", metrics=["global_step", "val/psnr"])
    with Image.open(unmarked) as image:
        assert image.size == (720, 300)  # what --metrics names is plotted, bookkeeping too
    assert red_pixels(unmarked) == 0  # the optimized metric is not among them


def test_metrics_and_sort(sweep, tmp_path):
    md, _ = compare([sweep], out=tmp_path / "out", metrics=["val/psnr"], sort="val/psnr", descending=True)
    header, *body = rows(md.read_text())
    assert header == ["run", "model.width", "val/psnr", "status"]
    assert [r[1] for r in body] == ["32", "16", "8", "-3", "64"]  # highest first, failed runs last
    assert body[0][0] == str((sweep / "2").resolve())  # outside --out and the cwd: the full path


def test_separate_runs_with_two_swept_parameters_get_a_bar_chart(tmp_path):
    a = make_run(tmp_path / "a", ["model=tiny_denoiser", "seed=1"], {"val/loss": 0.3})
    b = make_run(tmp_path / "b", ["model=other", "seed=2"], {"val/loss": 0.2})
    md, png = compare([a, b], out=tmp_path / "out")
    header, *body = rows(md.read_text())
    assert header == ["run", "model", "seed", "val/loss", "status"]
    assert {tuple(r[1:3]) for r in body} == {("tiny_denoiser", "1"), ("other", "2")}
    runs = [read_run(p) for p in (a, b)]
    assert numeric_parameter(runs, swept_keys(runs)) is None
    assert png.stat().st_size > 1000


def test_every_run_failed_still_writes_the_table(tmp_path):
    root = tmp_path / "sweep"
    make_run(root / "0", ["model.width=8"], error="boom")
    make_run(root / "1", ["model.width=16"], error="bang | pipe")
    md, png = compare([root])
    assert png is None
    text = md.read_text()
    assert "failed: boom" in text and "failed: bang \\| pipe" in text


@pytest.mark.parametrize("kwargs, message", [
    ({"metrics": ["val/los"]}, "unknown metric 'val/los' (the runs logged: global_step, only/here, val/loss"),
    ({"sort": "val/nope"}, "--sort: unknown metric 'val/nope'"),
])
def test_unknown_metric_is_one_line(sweep, kwargs, message):
    with pytest.raises(UserError) as err:
        compare([sweep], **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_no_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: no runs found"):
        compare([tmp_path / "empty"])
    with pytest.raises(UserError, match="missing: no such directory"):
        compare([tmp_path / "missing"])


@pytest.mark.parametrize("args, message", [
    (["{empty}"], "error: {empty}: no runs found"),
    (["{sweep}", "--metrics", "val/los"], "error: unknown metric 'val/los'"),
])
def test_cli_errors_are_one_line(sweep, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"empty": tmp_path / "empty", "sweep": sweep}
    result = run_cli("worldmodels.compare", *(a.format(**paths) for a in args), timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(**paths)), result.stderr


def test_cli_writes_both_files(sweep):
    result = run_cli("worldmodels.compare", str(sweep), "--metrics", "val/loss,val/psnr", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "| 1 | 16 | 0.25 | 36 | ok |" in result.stdout
    assert (sweep / "compare.md").is_file() and (sweep / "compare.png").stat().st_size > 1000
