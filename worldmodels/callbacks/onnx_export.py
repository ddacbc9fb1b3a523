"""Export the trained model to ONNX + manifest when fit ends (rank 0 only), checked against PyTorch first."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from worldmodels.config import OnnxExportConfig, RunConfig

log = logging.getLogger(__name__)


class OnnxExport(L.Callback):
    def __init__(self, cfg: OnnxExportConfig, run: RunConfig, out_dir: Path):
        self.cfg, self.run, self.out_dir = cfg, run, Path(out_dir)
        self.paths: tuple[Path, Path] | None = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from worldmodels.export import export_module

        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        metrics["global_step"] = trainer.global_step
        onnx_path, manifest_path, max_diff = export_module(pl_module, self.run, self.out_dir,
                                                           tolerance=self.cfg.tolerance, metrics=metrics)
        self.paths = (onnx_path, manifest_path)
        log.info("exported %s (max |onnxruntime - PyTorch| = %.2e) and %s", onnx_path, max_diff, manifest_path)
