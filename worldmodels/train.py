"""Train a world model: compose the config, check it, then build each part and fit (`worldmodels.fit`).

    python -m worldmodels.train task=breakout                       # seed-scale denoiser, default trainer
    python -m worldmodels.train experiment=breakout_cpu             # ~20 minutes on a 2-core CPU
    python -m worldmodels.train debug=smoke                         # seconds: every artifact, tiny everything
    python -m worldmodels.train ckpt_path=outputs/.../last.ckpt     # resume: step, optimizer, data stream
    python -m worldmodels.train -m model.width=32,64                # sweep (hydra/launcher=joblib: in parallel)
    python -m worldmodels.train -m sweep=breakout_optuna            # Optuna search (conf/sweep/)

This module imports no torch or Lightning: `--help`, `--cfg job` and bad input answer before they would load.
Everything a run writes goes under its own directory (`outputs/<task>/<stamp>/`): checkpoints/, media/, export/,
the logger's files and summary.json.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from worldmodels.core.config import compose_config, config_dir
from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.sweep import failure_message, record_failure
from worldmodels.tasks import check_resume, validate

log = logging.getLogger("worldmodels.train")


def train(cfg: DictConfig) -> float:
    """`worldmodels.fit.train`, imported when a run really starts."""
    from worldmodels.fit import train as fit_train  # torch + Lightning: ~8 s that --help, --cfg and typos skip

    return fit_train(cfg)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def hydra_main(cfg: DictConfig) -> float:
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        return one_line_errors(train)(cfg)
    # In a sweep one failed job must not end the others: record it, tell the sweeper it scored +inf, go on.
    # worldmodels.core.sweep.ReportSweep lists the failed jobs when the sweep ends.
    try:
        return train(cfg)
    except Exception as err:  # noqa: BLE001 (any failure of one job)
        record_failure(Path(HydraConfig.get().runtime.output_dir), err)
        log.error("job failed: %s", failure_message(err),
                  exc_info=not isinstance(err, UserError))  # the traceback goes to the job's train.log
        return float("inf")


def check_overrides(argv: list[str]) -> None:
    """Compose and validate once before Hydra runs, so that bad input stops with one line naming the key
    (`error: <key>: <problem>`) before Hydra makes the run's directory: a bad override or config (unknown key, wrong
    type: the schemas check both while composing, `compose_config`'s ConfigError), a value out of range
    (`validate`), a `ckpt_path` that is no checkpoint of this task (`check_resume`)."""
    if any(a in ("-m", "--multirun", "--help", "-h", "--hydra-help", "--info", "-c", "--cfg") or
           a.startswith("--") for a in argv):
        return  # sweeps and Hydra's own flags: each job is still validated by `validate`
    overrides = [a for a in argv if not a.startswith("-")]
    cfg = compose_config(overrides)
    if is_sweep(overrides):
        return  # a sweep set by override: its jobs' values come from the sweeper, each is checked by `train`
    run = validate(cfg)
    check_resume(run)


def config_groups(conf: Path) -> dict[str, list[str]]:
    """conf/'s groups and their options (`model: fast_denoiser, tiny_denoiser`), nested ones as `a/b`; Hydra's own
    (`hydra/...`) are left to `--hydra-help`."""
    groups = {}
    for folder in sorted(p for p in conf.rglob("*") if p.is_dir()):
        group = folder.relative_to(conf).as_posix()
        options = sorted(f.stem for f in folder.glob("*.yaml"))
        if options and group.split("/")[0] != "hydra":
            groups[group] = options
    return groups


def print_help(overrides: list[str]) -> None:
    """`--help`: the usage lines, conf/'s groups and the composed config. Hydra's own help lists the same groups but
    rebuilds its config repository for each of them (~5 s here, most of it copying the registered schemas)."""
    config = OmegaConf.to_yaml(compose_config(overrides))  # a bad override stops here, before any output
    print("Train a world model (a Hydra app: override any key as key=value, pick a config with group=option).\n")
    print("\n".join(line for line in (__doc__ or "").splitlines() if line.startswith("    python -m")) + "\n")
    print("== Config groups ==")
    for group, options in config_groups(config_dir()).items():
        print(f"{group}: {', '.join(options)}")
    print("\n== Config ==  (every key can be overridden; --cfg job prints it alone, --hydra-help Hydra's flags)")
    print(config, end="")


def main() -> None:
    argv = sys.argv[1:]
    if any(a in ("--help", "-h") for a in argv):
        one_line_errors(print_help)([a for a in argv if not a.startswith("-")])
        return
    one_line_errors(check_overrides)(argv)
    hydra_main()


def cli() -> None:
    """The command (`python -m worldmodels.train`, `worldmodels-train`): `main`, then, for a single run, an exit that
    skips the interpreter's teardown of torch's and Lightning's modules (~2.5 s on a 2-core machine, a sixth of a
    smoke run). By then the run has written and closed everything; the atexit handlers still run and the streams
    are flushed. A sweep exits as usual: joblib's worker pool shuts down in the interpreter's own order."""
    main()
    if is_sweep(sys.argv[1:]):
        return
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def is_sweep(argv: list[str]) -> bool:
    return any(a in ("-m", "--multirun") or a.replace(" ", "").lower() == "hydra.mode=multirun" for a in argv)


if __name__ == "__main__":
    cli()
