"""The run's logger: W&B (offline by itself when no API key is configured), CSV, or none; files go under the run
directory. Also the W&B parts the export and `evaluate` share: the model artifact and the evaluation's run.

A W&B run's id is chosen here, before the run starts, and written into the run config the module's checkpoints and
the export's manifest carry (`logger.id`, and `logger.group` when a sweep set one): resuming from a checkpoint
(`ckpt_path=`) continues that W&B run, offline too, and `evaluate --wandb` links its run to the training run.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, WandbLogger

from worldmodels.core.config import CHECKPOINT_KEY, RunConfig, read_checkpoint
from worldmodels.core.errors import UserError
from worldmodels.core.run_identity import hydra_job_config, is_multirun, swept_keys, wandb_run_identity

log = logging.getLogger("worldmodels.train")

# The manifest facts a model artifact carries as metadata (the rest is in its files).
ARTIFACT_FACTS = ("task", "name", "format_version", "opset", "git_commit", "model", "parity", "metrics")


def build_logger(run: RunConfig, run_config: dict):
    """W&B (offline by itself when no API key is configured), CSV, or none; files go under the run directory.

    For W&B, `run_config` (the dict the module was built with, so its checkpoints and export record them) gets
    the run's id and group under `logger`."""
    out = Path(run.paths.output_dir)
    if run.logger.name == "none":
        return False
    if run.logger.name == "csv":
        return CSVLogger(save_dir=str(out), name="csv", version="")
    import wandb  # heavy (~2 s to import): only the runs that log to W&B pay for it
    from wandb.sdk.lib.runid import generate_id  # W&B (~2 s to import): only runs that log to it pay

    offline = wandb_offline(run.logger.mode)
    if offline:
        log.info("logger: W&B offline (%s); sync later with `wandb sync %s/wandb/offline-*`",
                 "logger.mode=offline" if run.logger.mode == "offline" else "no API key configured", out)
    hydra_cfg = hydra_job_config()
    identity = wandb_run_identity(run, hydra_cfg, swept_keys(hydra_cfg))  # group by sweep, name by swept overrides
    run_id = run.logger.id
    if run_id is None and run.ckpt_path is not None:
        if is_multirun(hydra_cfg):  # every job of the sweep would log into the one run
            log.info("logger: each job of a sweep starts its own W&B run, not the run of %s", run.ckpt_path)
        elif (resumed := resumed_wandb_run(run.ckpt_path)).get("id"):
            run_id, identity["group"] = resumed["id"], identity["group"] or resumed.get("group")
            log.info("logger: W&B run %s continues, the run of %s", run_id, run.ckpt_path)
    run_id = run_id or generate_id()
    run_config["logger"].update(id=run_id, group=identity["group"])
    shown = {"group": identity["group"], "run name": identity["name"], "tags": identity["tags"], "id": run_id}
    log.info("logger: W&B %s", ", ".join(f"{k} {v}" for k, v in shown.items() if v is not None))
    logger = WandbLogger(project=run.logger.project, save_dir=str(out), id=run_id, config=run_config,
                         job_type="train", settings=wandb.Settings(quiet=True), **wandb_mode(run.logger.mode, offline),
                         **identity)
    # Lightning passes `anonymous=None`, which wandb warns about on every run ("has no effect").
    logger._wandb_init.pop("anonymous", None)
    return logger


def resumed_wandb_run(ckpt_path: str) -> dict:
    """`{"id", "group"}` of the W&B run a checkpoint was trained in (empty when it was not logged to W&B)."""
    stored = read_checkpoint(ckpt_path, mmap=True)[CHECKPOINT_KEY]["config"].get("logger") or {}
    return {k: stored[k] for k in ("id", "group") if stored.get(k)}


def wandb_mode(mode: str, offline: bool) -> dict:
    """`wandb.init`'s mode: offline, or online when asked for; otherwise unset, so WANDB_MODE still rules. Not
    Lightning's `offline=True`, which sets WANDB_MODE for the whole process (every later W&B run in it too)."""
    return {"mode": "offline"} if offline else {"mode": "online"} if mode == "online" else {}


def wandb_offline(mode: str) -> bool:
    """`logger.mode` (auto | online | offline) resolved. auto: offline when wandb's own mode (WANDB_MODE, `wandb
    offline`) is offline, or when it is online but wandb finds no credentials for its server."""
    if mode != "auto":
        return mode == "offline"
    from wandb.sdk import wandb_setup  # W&B (~2 s to import): only runs that log to it pay

    own = wandb_setup.singleton().settings.mode
    if own not in ("online", "run"):  # offline, or disabled / shared: wandb's choice stands
        return own in ("offline", "dryrun")
    return not wandb_api_key_configured()


def wandb_api_key_configured() -> bool:
    """Whether `wandb.init` would find credentials for the server it talks to (`WANDB_BASE_URL`, or the host of
    `wandb login --host`): WANDB_API_KEY, an identity token file, the netrc entry for that host (NETRC or ~/.netrc),
    or an api_key setting. wandb's own resolution, without prompting and without a network call."""
    from wandb.errors import AuthenticationError  # W&B (~2 s to import): only runs that log to it pay
    from wandb.sdk import wandb_setup  # W&B (~2 s to import): only runs that log to it pay
    from wandb.sdk.lib import wbauth  # W&B (~2 s to import): only runs that log to it pay

    settings = wandb_setup.singleton().settings
    try:
        host = wbauth.HostUrl(settings.base_url, app_url=settings.app_url)
        auth = wbauth.authenticate_session(host=host, source="worldmodels", prompt=False, update_session=False)
    except (AuthenticationError, ValueError) as err:  # a malformed key, or a base URL wandb refuses
        raise UserError(f"logger: W&B credentials for {settings.base_url}: {err} (run `wandb login`, or "
                        f"logger.mode=offline)") from None
    return auth is not None and auth.host.is_same_url(host)


def export_graphs(manifest: dict) -> list[str]:
    """The graph files an export's manifest names (`onnx`, and Flappy's `prefill_onnx`, `frame_onnx`)."""
    return [v for v in manifest.values() if isinstance(v, str) and v.endswith(".onnx")]


def model_artifact(manifest_path: Path, run_id: str):
    """The export beside `manifest_path` (its graphs and manifest) as a draft W&B artifact `<task>-<run id>` of
    type "model", the manifest's key facts as metadata. The same files give the same digest: `evaluate` links its
    run to the version the training run logged by rebuilding it."""
    import wandb  # W&B (~2 s to import): only runs that log to it pay

    manifest = json.loads(Path(manifest_path).read_text())
    metadata = {k: manifest[k] for k in ARTIFACT_FACTS if k in manifest}
    metadata["graphs"] = export_graphs(manifest)
    artifact = wandb.Artifact(f"{manifest['task']}-{run_id}", type="model", metadata=metadata)
    artifact.add_file(str(manifest_path))
    for graph in metadata["graphs"]:
        artifact.add_file(str(Path(manifest_path).with_name(graph)))
    return artifact


def flat_summary(result: dict, prefix: str = "") -> dict[str, Any]:
    """An evaluation's JSON as W&B summary keys: nested dicts joined with '/' (`rollout/model/8/psnr`)."""
    out = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out.update(flat_summary(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def log_evaluation(result_path: Path, model_path: Path, run: RunConfig, run_config: dict, project: str | None,
                   arguments: dict) -> str:
    """Log an evaluation's JSON (`result_path`) to a new W&B run (job_type "evaluate", offline when wandb finds no
    credentials) under `<result folder>/wandb/`: the results as its summary, the JSON as a file. It joins the
    training run's project and group, records the training run's id in its config, and (online, for an export)
    uses the model artifact the training run logged. Returns a line saying where the run went."""
    import wandb  # W&B (~2 s to import): only runs that log to it pay

    trained = run_config.get("logger") or {}
    training_id = trained.get("id") if trained.get("name") == "wandb" else None
    offline = wandb_offline("auto")
    config = {"task": run.task_name, "training_run": training_id, **arguments}  # arguments: model, out, seed, ...
    wb_run = wandb.init(project=project or run.logger.project, group=trained.get("group"), job_type="evaluate",
                        tags=[run.task_name, "evaluate"], config=config, dir=str(result_path.parent),
                        settings=wandb.Settings(quiet=True), **wandb_mode("auto", offline))
    try:
        wb_run.summary.update(flat_summary(json.loads(result_path.read_text())))
        # A copy in the run's files folder: `save` of a file outside it would link to a file a later run overwrites.
        wb_run.save(shutil.copy(result_path, wb_run.dir), base_path=wb_run.dir, policy="now")
        if training_id and model_path.suffix == ".onnx" and not offline:
            wb_run.use_artifact(model_artifact(model_path.with_suffix(".json"), training_id))
        where = (f"W&B run {wb_run.id} (offline: `wandb sync {Path(wb_run.dir).parent}`)" if offline
                 else f"W&B run {wb_run.url}")
    finally:
        wb_run.finish()
    return where
