"""A run's identity in W&B: its group, tags and name, from the sweep it belongs to and the overrides it swept.

Under `python -m worldmodels.train -m ...` every job of one sweep gets the same W&B group (the sweep directory's
name), the tags `<task>` and `<experiment>`, and a run name made of its swept overrides (`model.width=16`), so the
W&B UI groups, filters and labels a sweep's runs without any set-up. `logger.group`, `logger.run_name` and
`logger.tags` (conf/logger/wandb.yaml) override or extend each part. `python -m worldmodels.compare` reads the same
overrides back from the run directories.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

TAG_MAX = 64  # W&B rejects longer tags
NAME_MAX = 128  # W&B's limit for a group; run names are kept as short


def hydra_job_config() -> DictConfig | None:
    """The `hydra` node of the running job, or None outside a Hydra run (tests, notebooks, `train(cfg)`)."""
    return HydraConfig.get() if HydraConfig.initialized() else None


def is_multirun(hydra_cfg: Any) -> bool:
    mode = _get(hydra_cfg, "mode")
    return getattr(mode, "name", str(mode)).upper().endswith("MULTIRUN")


def override_key(override: str) -> str:
    """`model.width` from `model.width=16`, `+model.extra=1`, `~model.x` or `++a.b=c`."""
    return override.split("=", 1)[0].lstrip("+~")


def overrides_dict(overrides: Iterable[str]) -> dict[str, str]:
    """Hydra's override strings as {key: value} (a deletion `~key` maps to `~`)."""
    out = {}
    for o in overrides:
        key, _, value = str(o).partition("=")
        out[override_key(key)] = "~" if key.startswith("~") and not value else value
    return out


def swept_keys(hydra_cfg: Any) -> set[str] | None:
    """The keys a multirun sweeps (`model.width` for `model.width=8,16`), read from the sweep's `multirun.yaml`.

    None when this is not a multirun or the sweep left no readable `multirun.yaml` (a sweeper other than Hydra's
    basic one): the caller then keeps every override.
    """
    if hydra_cfg is None or not is_multirun(hydra_cfg):
        return None
    sweep_dir = Path(str(_get(hydra_cfg, "sweep", "dir") or ""))
    cwd = _get(hydra_cfg, "runtime", "cwd")
    master = (Path(str(cwd)) / sweep_dir if cwd else sweep_dir) / "multirun.yaml"
    try:
        cfg = OmegaConf.load(master)
        overrides = [str(o) for o in OmegaConf.select(cfg, "hydra.overrides.task", default=[]) or []]
        params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
        overrides += [f"{k}={v}" for k, v in params.items()]
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # a missing or foreign multirun.yaml only costs the short run name
        return None
    return {p.key_or_group for p in parsed if p.is_sweep_override()}


def wandb_run_identity(run: Any, hydra_cfg: Any, swept: Collection[str] | None = None) -> dict[str, Any]:
    """`group`, `name` and `tags` for `WandbLogger` (pure: no W&B, no files).

    `run` is the validated RunConfig (its `task_name` and `logger`); `hydra_cfg` the job's `hydra` node
    (`hydra_job_config()`), or None outside Hydra; `swept` the swept keys (`swept_keys()`), None if unknown.
    Under `-m`: group = the sweep directory's name, name = the job's swept overrides (all of its overrides when
    `swept` is unknown; `job<num>` when it has none). A single run: no group, W&B's own name.
    Tags: the task, the experiment (if one was picked), then `logger.tags`. Set `logger.group` or `logger.run_name`
    to use your own.
    """
    group = name = None
    tags = [run.task_name]
    if hydra_cfg is not None:
        experiment = _get(hydra_cfg, "runtime", "choices", "experiment")
        if experiment:
            tags.append(str(experiment))
        if is_multirun(hydra_cfg):
            group = Path(str(_get(hydra_cfg, "sweep", "dir") or "")).name or None
            name = _job_name(hydra_cfg, swept)
    tags = list(dict.fromkeys(t[:TAG_MAX] for t in [*tags, *run.logger.tags]))
    group = run.logger.group or group
    name = run.logger.run_name or name
    return {"group": group[:NAME_MAX] if group else None, "name": name[:NAME_MAX] if name else None, "tags": tags}


def _job_name(hydra_cfg: Any, swept: Collection[str] | None) -> str:
    overrides = [str(o) for o in (_get(hydra_cfg, "overrides", "task") or [])]
    if swept is not None:
        sep = _get(hydra_cfg, "job", "config", "override_dirname", "item_sep") or ","
        name = sep.join(o for o in overrides if override_key(o) in swept)
    else:
        name = str(_get(hydra_cfg, "job", "override_dirname") or "")
    return name or f"job{_get(hydra_cfg, 'job', 'num')}"


def _get(node: Any, *keys: str) -> Any:
    """node.a.b.c for a DictConfig or a dict, None where a key is missing."""
    for key in keys:
        if node is None:
            return None
        try:
            node = node.get(key) if hasattr(node, "get") else getattr(node, key, None)
        except Exception:
            return None
    return node
