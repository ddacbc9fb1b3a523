"""Build every part of a run from its validated config, fit, test, and return the metric a sweep optimizes.

`worldmodels.train` is the command line: it composes and checks the config (light: Hydra and the schemas) and only
then imports this module, which pulls in torch and Lightning (~8 s on a 2-core machine), so that `--help`, `--cfg`
and a typo answer in about a second. Everything a run writes goes under its own directory (`outputs/<task>/<stamp>/`):
checkpoints/, media/, export/, the logger's files and summary.json.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf

from worldmodels.core.callbacks import OnnxExport, SaveOnInterrupt
from worldmodels.core.checkpoints import AtomicCheckpointIO
from worldmodels.core.config import RunConfig
from worldmodels.core.errors import UserError
from worldmodels.core.fingerprint import debug_callbacks
from worldmodels.core.loggers import build_logger
from worldmodels.core.progress import StepProgressBar, progress_callbacks
from worldmodels.tasks import build_datamodule, build_module, check_resume, export_module, task_callbacks, validate

log = logging.getLogger("worldmodels.train")
# Lightning advertises a cloud logger on every run; the advert says nothing about this run.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "litlogger" not in r.getMessage())
# `import lightning` gives the "lightning" logger a console handler of its own, and its records still reach the root
# logger's handlers (Hydra's console and train.log): every Lightning line came twice. Where the root has handlers,
# they are enough.
if logging.getLogger().hasHandlers():
    logging.getLogger("lightning").handlers.clear()


def build_callbacks(run: RunConfig) -> list[L.Callback]:
    out = Path(run.paths.output_dir)
    ckpt = run.callbacks.checkpoint
    callbacks: list[L.Callback] = [
        # Written atomically by AtomicCheckpointIO (the Trainer's plugin): a crash never leaves a torn file.
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
    callbacks += progress_callbacks(run.trainer.enable_progress_bar)  # a step bar at a terminal, else log lines
    callbacks += debug_callbacks()  # test instrumentation, only with WORLDMODELS_DUMP_WEIGHTS set
    return callbacks


def build_trainer(run: RunConfig, callbacks: list[L.Callback], logger) -> L.Trainer:
    """The run's Trainer: step-based (our data are streams), checkpoints by AtomicCheckpointIO, no model summary
    (its FLOPs column reads 0 for our nets; `train` logs the parameter count)."""
    t = run.trainer
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
        precision=t.precision, max_steps=t.max_steps, val_check_interval=t.val_check_interval,
        check_val_every_n_epoch=None, limit_val_batches=run.data.val_batches, limit_test_batches=run.data.val_batches,
        gradient_clip_val=t.gradient_clip_val, log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=any(isinstance(c, StepProgressBar) for c in callbacks), enable_model_summary=False,
        deterministic=t.deterministic, default_root_dir=run.paths.output_dir, callbacks=callbacks, logger=logger,
        num_sanity_val_steps=0, plugins=[AtomicCheckpointIO()],
    )


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

    trainer = build_trainer(run, callbacks, logger)
    t = run.trainer
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
