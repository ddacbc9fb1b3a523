"""Export a gym_tokens Transformer: Flappy's KV-cache decode graph and prefill graph, and a manifest with the token
spec its declaration made, the resolved fields, the game (the Minari dataset) and real start contexts.

    python -m worldmodels.export outputs/gym_tokens/<run>/checkpoints/last.ckpt       (the entry point)

Nothing is written unless PyTorch and onnxruntime decode the same frames from a real start context (greedy, random
actions; Flappy's `flappy_parity`) with every call's logits within the tolerance.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from torch import nn

from worldmodels.core.config import RunConfig
from worldmodels.core.files import write_atomic
from worldmodels.core.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_FORMAT_VERSION,
    OPSET,
    ExportError,
    git_commit,
    metadata_props,
    portable_config,
    write_manifest,
)
from worldmodels.flappy.export import decode_graph_keys, flappy_parity
from worldmodels.flappy.tokens import TokenSpec
from worldmodels.flappy.transformer import export_onnx

PARITY_FRAMES = 40  # frames decoded on PyTorch and onnxruntime before an export is accepted


def export_gym_tokens(net: nn.Module, run: RunConfig, run_config: dict, extras: dict, spec: TokenSpec,
                      out_dir: str | Path, name: str = "gym_tokens", tolerance: float = 1e-4,
                      metrics: dict | None = None) -> tuple[Path, Path, float]:
    """Write `<name>.onnx` (the per-token decode graph), `<name>.prefill.onnx` and `<name>.json` into `out_dir`."""
    contexts = extras.get("start_contexts")
    if not contexts:
        raise ExportError("a gym_tokens export needs real start contexts from held-out episodes; the checkpoint has "
                          "none (no held-out episode is longer than the context, or it was not trained by "
                          "python -m worldmodels.train task=gym_tokens)")
    out_dir = Path(out_dir)
    net = copy.deepcopy(net).float().cpu().eval()
    slide_frames = run.module.decoding.slide_frames
    frames = run.callbacks.onnx_export.parity_frames or PARITY_FRAMES
    with tempfile.TemporaryDirectory() as tmp:
        decode_tmp, prefill_tmp = Path(tmp) / "decode.onnx", Path(tmp) / "prefill.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(net, decode_tmp, prefill_tmp, dynamic_batch=False)
        max_diff, same = flappy_parity(net, decode_tmp, prefill_tmp, np.asarray(contexts[0]), frames,
                                       slide_frames, spec=spec)
        if not (max_diff <= tolerance and same):
            raise ExportError(f"ONNX decoding differs from PyTorch over {frames} frames: max |logit diff| "
                              f"{max_diff:.3g} (tolerance {tolerance:g}), identical tokens: {same}; nothing was "
                              "written")
        decode_model, prefill_model = onnx.load(str(decode_tmp)), onnx.load(str(prefill_tmp))
    cfg = run.model
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_FORMAT_VERSION,
        "task": "gym_tokens",
        "name": name,
        "onnx": f"{name}.onnx",
        "prefill_onnx": f"{name}.prefill.onnx",
        "opset": OPSET,
        **decode_graph_keys(cfg, spec.vocab_size),
        "token_spec": spec.to_json(),
        "fields": list(extras.get("fields", [])),
        "game": {"source": "minari", "dataset_id": run.data.dataset_id, "observation_key": run.data.observation_key},
        "decoding": {"context": cfg.context, "sliding_window": cfg.sliding_window, "slide_frames": slide_frames,
                     "temperature": run.module.decoding.temperature,
                     "rules": "worldmodels/flappy/decoding/rules.py; every slot is greedy (the spec has no pipes, so "
                              "nothing is sampled and temperature is unused)"},
        "start_contexts": [list(map(int, c)) for c in contexts],
        "model": {**asdict(cfg), "parameters": sum(p.numel() for p in net.parameters())},
        "parity": {"max_abs_diff": max_diff, "identical_tokens": same, "frames": frames, "tolerance": tolerance,
                   "runtime": f"onnxruntime {ort.__version__}"},
        "git_commit": git_commit(),
        "metrics": metrics or {},
        "training_config": portable_config(run_config),
    }
    props = metadata_props(manifest, "token_spec")
    onnx.helper.set_model_props(decode_model, props)
    onnx.helper.set_model_props(prefill_model, {**props, "worldmodels.graph": "prefill"})
    onnx_path, manifest_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    write_atomic(onnx_path, decode_model.SerializeToString())
    write_atomic(out_dir / f"{name}.prefill.onnx", prefill_model.SerializeToString())
    write_manifest(manifest_path, manifest)
    return onnx_path, manifest_path, max_diff
