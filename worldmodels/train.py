"""Train a world model: compose the config, build each part, fit, test, return the metric a sweep optimizes.

    python -m worldmodels.train task=breakout                       # seed-scale denoiser, default trainer
    python -m worldmodels.train experiment=breakout_cpu             # ~20 minutes on a 2-core CPU
    python -m worldmodels.train debug=smoke                         # seconds: every artifact, tiny everything
    python -m worldmodels.train ckpt_path=outputs/.../last.ckpt     # resume: step, optimizer, data stream
    python -m worldmodels.train -m model.width=32,64                # sweep (hydra/launcher=joblib: in parallel)
    python -m worldmodels.train -m sweep=breakout_optuna            # Optuna search (conf/sweep/)

Everything a run writes goes under its own directory (`outputs/<task>/<time>/`): checkpoints/, media/, export/,
the logger's files and summary.json.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf

from worldmodels.core.callbacks import OnnxExport, SaveOnInterrupt
from worldmodels.core.config import RunConfig, compose_config, config_dir
from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.fingerprint import debug_callbacks
from worldmodels.core.run_identity import hydra_job_config, swept_keys, wandb_run_identity
from worldmodels.core.sweep import failure_message, record_failure
from worldmodels.tasks import build_datamodule, build_module, check_resume, export_module, task_callbacks, validate

log = logging.getLogger("worldmodels.train")
# Lightning advertises a cloud logger on every run; the advert says nothing about this run.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "litlogger" not in r.getMessage())


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


def build_callbacks(run: RunConfig) -> list[L.Callback]:
    out = Path(run.paths.output_dir)
    ckpt = run.callbacks.checkpoint
    callbacks: list[L.Callback] = [
        # Lightning writes checkpoints to a temporary file and renames it, so a crash never leaves a torn one.
        ModelCheckpoint(dirpath=out / "checkpoints", filename="step{step:06d}", auto_insert_metric_name=False,
                        every_n_train_steps=ckpt.every_n_train_steps, save_top_k=ckpt.save_top_k, save_last=True),
        SaveOnInterrupt(out / "checkpoints" / "interrupted.ckpt"),
        *task_callbacks(run),
    ]
    if run.logger.name != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if run.callbacks.onnx_export.enabled:
        def export(module, out_dir, tolerance, metrics):
            return export_module(module, run, out_dir, tolerance=tolerance, metrics=metrics)

        callbacks.append(OnnxExport(run.callbacks.onnx_export, export, out / "export"))
    callbacks += debug_callbacks()  # test instrumentation, only with WORLDMODELS_DUMP_WEIGHTS set
    return callbacks


def refuse_ddp_in_sweep(trainer: L.Trainer) -> None:
    """Lightning's DDP starts each extra rank by re-running this command with the run's `hydra.run.dir`. Inside a
    sweep (-m) that command is the whole sweep, so each extra rank would run every job into new directories."""
    launcher = trainer.strategy.launcher
    if (isinstance(launcher, _SubprocessScriptLauncher) and launcher.num_processes > 1
            and not launcher.cluster_environment.creates_processes_externally
            and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
        raise UserError(f"trainer.devices: DDP over {launcher.num_processes} processes cannot run inside a sweep "
                        f"(-m), Lightning would re-run the whole sweep in each extra process; run DDP jobs one "
                        f"at a time without -m, or sweep with trainer.devices=1")


def train(cfg: DictConfig) -> float:
    run = validate(cfg)
    check_resume(run)  # before a single run's Hydra job too (`check_overrides`); here for each job of a sweep
    run_config = OmegaConf.to_container(cfg, resolve=True)
    run_config.pop("hydra", None)
    out = Path(run.paths.output_dir)
    log.info("run directory: %s", out)
    L.seed_everything(run.seed, workers=True, verbose=False)

    datamodule = build_datamodule(run)
    log.info("data: %s %s", type(datamodule).__name__, run.data)
    module = build_module(run, run_config)
    parameters = sum(p.numel() for p in module.net.parameters())
    log.info("model: %s with %s parameters", type(module.net).__name__, f"{parameters:,}")
    log.info("objective: %s", run.module)
    callbacks = build_callbacks(run)
    log.info("callbacks: %s", ", ".join(type(c).__name__ for c in callbacks))
    logger = build_logger(run, run_config)
    log.info("logger: %s", run.logger.name)

    t = run.trainer
    trainer = L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
        precision=t.precision, max_steps=t.max_steps, val_check_interval=t.val_check_interval,
        check_val_every_n_epoch=None, limit_val_batches=run.data.val_batches, limit_test_batches=run.data.val_batches,
        gradient_clip_val=t.gradient_clip_val, log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.enable_progress_bar, deterministic=t.deterministic, default_root_dir=str(out),
        callbacks=callbacks, logger=logger, num_sanity_val_steps=0,
    )
    log.info("trainer: %s x%s, %s, %d steps", t.accelerator, t.devices, t.precision, t.max_steps)
    refuse_ddp_in_sweep(trainer)
    trainer.fit(module, datamodule=datamodule, ckpt_path=run.ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["global_step"] = trainer.global_step
    if run.run_test:
        trainer.test(module, datamodule=datamodule, verbose=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    if trainer.is_global_zero:
        (out / "summary.json").write_text(json.dumps({"task": run.task_name, "metrics": metrics}, indent=2) + "\n")
    if run.optimized_metric not in metrics:
        raise UserError(f"optimized_metric: {run.optimized_metric!r} was not logged "
                        f"(logged: {', '.join(sorted(metrics))})")
    value = metrics[run.optimized_metric]
    log.info("%s = %.5f", run.optimized_metric, value)
    if run.logger.name == "wandb":
        import wandb  # as in build_logger: only W&B runs import it

        wandb.finish()  # close the run now, not at interpreter exit, so the next job of a sweep starts its own
    return value if math.isfinite(value) else float("inf")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def hydra_main(cfg: DictConfig) -> float:
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        return one_line_errors(train)(cfg)
    # In a sweep one failed job must not end the others: record it, tell the sweeper it scored +inf, go on.
    # worldmodels.core.sweep.ReportFailures lists the failed jobs when the sweep ends.
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
    if any(a.replace(" ", "") in ("hydra.mode=MULTIRUN", "hydra.mode=multirun") for a in overrides):
        return  # a sweep set by override: its jobs' values come from the sweeper, each is checked by `train`
    run = validate(cfg)
    check_resume(run)


def main() -> None:
    one_line_errors(check_overrides)(sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
