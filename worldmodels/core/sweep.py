"""Sweep jobs (`python -m worldmodels.train -m ...`): their folders, failures, output and the end-of-sweep report.

- `train.hydra_main` calls `record_failure` for a job that raised under `-m`: the job leaves `failed.json` and the
  sweep goes on.
- `LabelJobOutput` (a Hydra callback, `hydra.callbacks.label_job_output` in conf/train.yaml) starts every line a job
  writes with `[job <num>] `, so that the interleaved output of jobs run in parallel (`hydra/launcher=joblib`) can be
  told apart. Single runs are left as they are.
- `ReportSweep` (`hydra.callbacks.report_sweep`) lists the failed jobs when the sweep ends, then one closing line:
  `sweep done: 3 jobs, 1 failed; best val/loss = 0.123 (job 1: model.width=16) in multirun/.../1`.

A job's folder holds `.hydra/` (its config and overrides), `summary.json` (final metrics) when it finished and
`failed.json` when it raised; `python -m worldmodels.compare` reads the same files.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from worldmodels.core.errors import UserError
from worldmodels.core.run_identity import is_multirun, override_key, swept_keys

log = logging.getLogger("worldmodels.core.sweep")

FAILED = "failed.json"
SUMMARY = "summary.json"
OVERRIDES = ".hydra/overrides.yaml"


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


def read_metrics(job_dir: Path) -> dict[str, float]:
    """The numbers in a run's `summary.json` (`{"metrics": {...}}`). Raises OSError when it has none, ValueError,
    KeyError, TypeError or AttributeError when the file is not such a summary."""
    summary = json.loads((Path(job_dir) / SUMMARY).read_text())
    return {k: float(v) for k, v in summary["metrics"].items() if isinstance(v, (int, float))}


def is_run(path: Path) -> bool:
    """A run's folder: it has a summary or a recorded failure."""
    return (path / SUMMARY).is_file() or (path / FAILED).is_file()


def job_order(path: Path) -> tuple:
    """Numbered job folders by number, then any others by name."""
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, path.name)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """A sweep's job folders: the numbered ones (even those that died before writing anything) and any that are
    runs or hold Hydra's `.hydra/`, in job order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    jobs = (p for p in sweep_dir.iterdir() if p.is_dir() and (p.name.isdigit() or is_run(p) or (p / ".hydra").is_dir()))
    return sorted(jobs, key=job_order)


def job_result(job_dir: Path) -> tuple[dict[str, float], str | None]:
    """(its final metrics, None) for a job that finished; ({}, why) for one that recorded a failure, left no
    `summary.json` or an unreadable one."""
    failure = read_failure(job_dir)
    if failure is not None:
        return {}, failure
    try:
        return read_metrics(job_dir), None
    except FileNotFoundError:
        return {}, f"no {SUMMARY} (still running, killed, or crashed before the end)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return {}, f"unreadable {SUMMARY}: {err}"


def failed_jobs(sweep_dir: Path) -> dict[str, str]:
    """{job folder name: why} for every job of a sweep that did not finish (`job_result`)."""
    errors = {job.name: job_result(job)[1] for job in job_dirs(sweep_dir)}
    return {name: error for name, error in errors.items() if error is not None}


def maximizes(direction: Any) -> bool:
    """Whether a sweeper's `direction` (Optuna's `minimize` / `maximize`, a string or its enum) asks for the highest
    value; no direction (Hydra's basic sweeper) means lower is better."""
    if OmegaConf.is_list(direction) or isinstance(direction, (list, tuple)):
        direction = direction[0] if len(direction) else None  # one objective: train returns one number
    return str(getattr(direction, "name", direction)).lower() == "maximize"


def best_value(values: dict[Any, float], maximize: bool) -> Any:
    """The key of the best finite value (the lowest, or the highest when `maximize`), None when there is none."""
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    if not finite:
        return None
    return (max if maximize else min)(finite, key=finite.__getitem__)


def _job_overrides(job_dir: Path, keys: set[str] | None) -> str:
    """The job's overrides that the sweep varied (`model.width=16`), all of them when `keys` is None."""
    try:
        overrides = [str(o) for o in OmegaConf.to_container(OmegaConf.load(job_dir / OVERRIDES)) or []]
    except Exception:  # noqa: BLE001 (a missing or broken file only shortens the line)
        return ""
    return ",".join(o for o in overrides if keys is None or override_key(o) in keys)


def sweep_summary(sweep_dir: Path, metric: str, maximize: bool = False, keys: set[str] | None = None) -> str:
    """The closing line of a sweep: how many jobs ran and failed, and the best job by `metric` with the swept
    overrides (`keys`) it ran with and its folder. A job failed when it did not finish (`job_result`)."""
    sweep_dir = Path(sweep_dir)
    jobs = job_dirs(sweep_dir)
    values: dict[Path, float] = {}
    failed = 0
    for job in jobs:
        metrics, error = job_result(job)
        failed += error is not None
        if metric in metrics:
            values[job] = metrics[metric]
    head = f"sweep done: {len(jobs)} job{'s' * (len(jobs) != 1)}, {failed} failed"
    best = best_value(values, maximize)
    if best is None:
        return f"{head}; no finished job logged a finite {metric}"
    overrides = _job_overrides(best, keys)
    return (f"{head}; best {metric} = {values[best]:.5g} (job {best.name}{': ' + overrides if overrides else ''}) "
            f"in {sweep_dir / best.name}")


class ReportSweep(Callback):
    """At the end of a sweep, log which jobs did not finish and why (`job_result`), then the closing line
    (`sweep_summary`) for the config's `optimized_metric`, in the direction its sweeper optimizes."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failures = failed_jobs(sweep_dir)
        if failures:
            log.error("%d job(s) of the sweep failed (%s):", len(failures), sweep_dir)
            for job, error in failures.items():
                log.error("  job %s: %s", job, error)
        metric = str(config.optimized_metric)
        maximize = maximizes(OmegaConf.select(config, "hydra.sweeper.direction", default=None))
        log.info("%s", sweep_summary(sweep_dir, metric, maximize, swept_keys(config.hydra)))


class LabelledStream:
    """A text stream that starts each line with `label` while one is set; everything else is the wrapped stream's.

    A line gets the label when its first character is written (after a newline, or a carriage return: progress
    bars redraw their line), so empty lines stay empty and a line belongs to the job that started it."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.label = ""
        self._line_start = True

    def write(self, text: str) -> int:
        if not self.label:
            self._line_start = text[-1:] in ("\n", "\r") if text else self._line_start
            return self.stream.write(text)
        out = []
        for char in text:
            if self._line_start and char not in "\r\n":
                out.append(self.label)
                self._line_start = False
            out.append(char)
            if char in "\r\n":
                self._line_start = True
        self.stream.write("".join(out))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...: the wrapped stream's
        if name == "stream":  # not set yet (an instance being copied): no endless recursion
            raise AttributeError(name)
        return getattr(self.stream, name)


def label_output(label: str) -> None:
    """From now on, start every line this process writes to stdout or stderr with `label` ("" for none).

    `sys.stdout` and `sys.stderr` become `LabelledStream`s once per process and stay so (Lightning's, W&B's and our
    logging handlers keep the stream they found); the console handlers made before (Hydra's job logging, configured
    before a job's callbacks run) are pointed at them."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = [h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers
                if isinstance(h, logging.StreamHandler)]
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, LabelledStream):
            stream = LabelledStream(stream)
            setattr(sys, name, stream)
            for handler in handlers:
                if handler.stream is stream.stream:
                    handler.setStream(stream)
        stream.label = label


class LabelJobOutput(Callback):
    """Under `-m`, start every line a job writes to stdout or stderr with `[job <num>] `: log records (with their
    tracebacks), Lightning's and W&B's messages, warnings and prints alike. Jobs that the joblib launcher runs side by
    side write to one terminal; this tells their lines apart. The job's own `train.log` is left as it is."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_multirun(config.hydra):
            label_output(f"[job {config.hydra.job.num}] ")

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if is_multirun(config.hydra):
            label_output("")  # the sweep's own lines (the launcher's, the closing report) carry no job
