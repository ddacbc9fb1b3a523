"""Sweep jobs that fail: each leaves `failed.json` in its directory, and the failures are listed when the sweep ends.

`train.hydra_main` calls `record_failure` for a job that raised under `-m` (the sweep goes on);
`ReportFailures` (a Hydra callback, `hydra.callbacks.report_failures` in conf/train.yaml) logs them at the end.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from worldmodels.core.errors import UserError

log = logging.getLogger("worldmodels.core.sweep")

FAILED = "failed.json"


def failure_message(err: BaseException) -> str:
    """One line for a job's error: a UserError's own message, else the exception's type and message."""
    return " ".join((str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}").split())


def record_failure(job_dir: Path, err: BaseException) -> Path:
    """Write `<job_dir>/failed.json` = {"error": "<one line>"} for a job that raised."""
    message = failure_message(err)
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    path = job_dir / FAILED
    path.write_text(json.dumps({"error": message}, indent=2) + "\n")
    return path


def read_failure(job_dir: Path) -> str | None:
    """The error a job recorded in its `failed.json`, or None when it has none."""
    path = Path(job_dir) / FAILED
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return str(data.get("error") or "unknown error") if isinstance(data, dict) else str(data)
    except (OSError, ValueError) as err:
        return f"unknown error (unreadable {FAILED}: {err})"


def failed_jobs(sweep_dir: Path) -> dict[str, str]:
    """{job directory name: error} for every job of a sweep that left a `failed.json`."""
    return {path.parent.name: read_failure(path.parent) for path in sorted(Path(sweep_dir).glob(f"*/{FAILED}"))}


class ReportFailures(Callback):
    """At the end of a sweep, log which jobs failed and why (their `failed.json`)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failures = failed_jobs(sweep_dir)
        if failures:
            log.error("%d job(s) of the sweep failed (%s):", len(failures), sweep_dir)
            for job, error in failures.items():
                log.error("  job %s: %s", job, error)
