"""What a sweep prints, without running one (tests/core/test_sweeps.py runs real ones): the closing line that names
the best job, and the `[job N]` label on every line a job writes."""

from __future__ import annotations

import io
import logging
import math
import sys

import pytest
from omegaconf import OmegaConf

from tests.core.test_compare import make_run
from worldmodels.core.sweep import LabelJobOutput, LabelledStream, ReportSweep, sweep_summary


@pytest.fixture
def sweep(tmp_path):
    """Jobs 0-1 finished (val/loss 0.5 and 0.25), 2 scored NaN, 3 failed, 4 died without a word."""
    root = tmp_path / "multirun" / "widths"
    for num, (width, loss) in enumerate([(8, 0.5), (16, 0.25), (32, math.nan)]):
        make_run(root / str(num), ["debug=smoke", f"model.width={width}"], {"val/loss": loss, "val/psnr": width})
    make_run(root / "3", ["debug=smoke", "model.width=-3"], error="model.width: must be > 0 (got -3)")
    make_run(root / "4", ["debug=smoke", "model.width=64"])
    return root


def test_closing_line_names_the_best_job(sweep):
    assert sweep_summary(sweep, "val/loss", keys={"model.width"}) == (
        f"sweep done: 5 jobs, 2 failed; best val/loss = 0.25 (job 1: model.width=16) in {sweep / '1'}")
    assert sweep_summary(sweep, "val/psnr", maximize=True).endswith(
        f"best val/psnr = 32 (job 2: debug=smoke,model.width=32) in {sweep / '2'}")  # swept keys unknown: all
    assert sweep_summary(sweep, "test/loss") == (
        "sweep done: 5 jobs, 2 failed; no finished job logged a finite test/loss")


def test_report_reads_the_metric_and_direction_from_the_sweep_config(sweep, caplog):
    config = OmegaConf.create({"optimized_metric": "val/psnr",
                               "hydra": {"mode": "MULTIRUN", "sweep": {"dir": str(sweep)},
                                         "sweeper": {"direction": "maximize"}}})
    with caplog.at_level(logging.INFO, logger="worldmodels.core.sweep"):
        ReportSweep().on_multirun_end(config)
    assert [r.getMessage() for r in caplog.records] == [
        f"2 job(s) of the sweep failed ({sweep}):",
        "  job 3: model.width: must be > 0 (got -3)",
        "  job 4: no summary.json (still running, killed, or crashed before the end)",
        f"sweep done: 5 jobs, 2 failed; best val/psnr = 32 (job 2: debug=smoke,model.width=32) in {sweep / '2'}",
    ]


def test_labelled_stream_starts_every_line_with_the_label():
    out = io.StringIO()
    stream = LabelledStream(out)
    stream.write("before\n")
    stream.label = "[job 3] "
    stream.write("one\ntwo")
    stream.write(" more\n\n\rbar 50%\rbar 100%\n")
    stream.label = ""
    stream.write("after\n")
    assert out.getvalue() == "before\n[job 3] one\n[job 3] two more\n\n\r[job 3] bar 50%\r[job 3] bar 100%\nafter\n"


def test_jobs_label_logging_tracebacks_and_prints_and_single_runs_do_not(monkeypatch):
    stdout, stderr = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    handler = logging.StreamHandler(sys.stdout)  # as Hydra's job logging makes it, before the job's callbacks run
    logger = logging.getLogger("tests.sweep_report")
    logger.addHandler(handler)
    try:
        single = OmegaConf.create({"hydra": {"mode": "RUN", "job": {"num": "???"}}})
        LabelJobOutput().on_job_start(single)
        logger.warning("single run")
        job = OmegaConf.create({"hydra": {"mode": "MULTIRUN", "job": {"num": 3}}})
        LabelJobOutput().on_job_start(job)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("job failed")
        print("a print", file=sys.stderr)
        LabelJobOutput().on_job_end(job, job_return=None)
        logger.warning("the sweep's own line")
    finally:
        logger.removeHandler(handler)
    lines = stdout.getvalue().splitlines()
    assert lines[0] == "single run" and lines[-1] == "the sweep's own line"
    assert len(lines) > 4 and all(line.startswith("[job 3] ") for line in lines[1:-1]), lines
    assert lines[-2] == "[job 3] ValueError: boom"
    assert stderr.getvalue() == "[job 3] a print\n"
