"""The run's logger: W&B (offline by itself when no API key is configured), CSV, or none; files go under the run
directory."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, WandbLogger

from worldmodels.core.config import RunConfig
from worldmodels.core.run_identity import hydra_job_config, swept_keys, wandb_run_identity

log = logging.getLogger("worldmodels.train")


def build_logger(run: RunConfig, run_config: dict):
    """W&B (offline by itself when no API key is configured), CSV, or none; files go under the run directory."""
    out = Path(run.paths.output_dir)
    if run.logger.name == "none":
        return False
    if run.logger.name == "csv":
        return CSVLogger(save_dir=str(out), name="csv", version="")
    import wandb  # heavy (~2 s to import): only the runs that log to W&B pay for it

    offline = run.logger.mode == "offline" or (run.logger.mode == "auto" and not wandb_api_key_configured())
    if offline:
        log.info("logger: W&B offline (no API key configured); sync later with `wandb sync %s/wandb/offline-*`", out)
    hydra_cfg = hydra_job_config()
    identity = wandb_run_identity(run, hydra_cfg, swept_keys(hydra_cfg))  # group by sweep, name by swept overrides
    log.info("logger: W&B group %s, run name %s, tags %s", identity["group"], identity["name"], identity["tags"])
    return WandbLogger(project=run.logger.project, save_dir=str(out), offline=offline, config=run_config,
                       settings=wandb.Settings(quiet=True), **identity)


def wandb_api_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
