"""Export a Breakout denoiser to ONNX + manifest, checked against PyTorch with onnxruntime before anything is written.

    python -m worldmodels.export outputs/breakout/<run>/checkpoints/last.ckpt     (the entry point; this is its part)

The graph is run on real game rows at several noise levels and actions plus random planes; the export fails if any
output differs from PyTorch by more than the tolerance. ONNX: `input [N, 19, 64, 64] -> pred [N, 3, 64, 64]`
(4 + 3K + 3 input channels for K context frames, `model.context_frames`).
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from worldmodels.breakout.config import BreakoutDataConfig
from worldmodels.breakout.data import BreakoutStream
from worldmodels.breakout.denoiser import (
    CONTEXT_FRAMES,
    INPUT_NAME,
    OUTPUT_CHANNELS,
    OUTPUT_NAME,
    PALETTE_TIE,
    base_channels,
    denoiser_input,
    frames_to_tensor,
)
from worldmodels.breakout.sim import ACTION_NAMES, FRAME_SIZE, NUM_ACTIONS
from worldmodels.core.config import RunConfig
from worldmodels.core.data import EVAL
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


def parity_inputs(seed: int = 0, context_frames: int = CONTEXT_FRAMES) -> torch.Tensor:
    """Inputs for the parity check: real game rows at several noise levels and actions, plus pure random planes."""
    cfg = BreakoutDataConfig(batch_size=4, games_per_worker=4)
    batch = next(iter(BreakoutStream(cfg, seed, EVAL, max_batches=1, context_frames=context_frames)))
    generator = torch.Generator().manual_seed(seed)
    target = frames_to_tensor(batch["target"])
    sigma = torch.tensor([0.02, 0.1, 0.5, 1.0])
    noisy = target + sigma[:, None, None, None] * torch.randn(target.shape, generator=generator)
    real = denoiser_input(noisy, frames_to_tensor(batch["context"]), batch["action"], sigma)
    channels = base_channels(context_frames) + NUM_ACTIONS
    random = torch.randn((2, channels, FRAME_SIZE, FRAME_SIZE), generator=generator)
    return torch.cat([real, random])  # (6, 19, 64, 64) with 4 context frames


def onnx_max_abs_diff(session: ort.InferenceSession, net: nn.Module, inputs: torch.Tensor) -> float:
    """Max |onnxruntime - PyTorch| over the outputs. A palette head picks each pixel's best-scoring colour, so a pixel
    whose two best scores are within PALETTE_TIE is a tie that float rounding may break either way: left out."""
    with torch.no_grad():
        expected = net(inputs).numpy()
        diff = np.abs(session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})[0] - expected)
        if getattr(net, "output", "rgb") == "palette":
            best = net.logits(inputs).topk(2, dim=1).values  # (N, 2, H, W)
            diff = diff * ((best[:, 0] - best[:, 1]) >= PALETTE_TIE).numpy()[:, None]
    return float(diff.max())


# The rest of the sampler's contract, stated in every manifest so a port needs nothing else (README, "The sampler").
SAMPLER_CONTRACT = {
    "sigma_plane": "raw sigma: the plane holds the noise level itself, not its log or a scaled value",
    "context": "frame-major RGB: context channels are frame 1 (oldest) R, G, B, then frame 2 R, G, B, ...",
    "noise": "standard Gaussian, one draw per pixel and channel, once per frame",
    "start": "x = newest context frame + sigma_max * noise",
    "update": "x0 = denoiser(x, sigma_i); x = x0 + (sigma_{i+1} / sigma_i) * (x - x0); the last x0 is the frame",
    "one_step": "steps = 1 calls the denoiser once, at sigma_max, and returns its x0",
    "feedback": "a dreamed frame is rounded to bytes (normalization.to_bytes) before it enters the context",
}


def breakout_manifest(run: RunConfig, run_config: dict, name: str, parameters: int, max_diff: float,
                      tolerance: float, metrics: dict | None) -> dict:
    sampler, context = run.module.sampler, run.model.context_frames
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_FORMAT_VERSION,
        "task": "breakout",
        "name": name,
        "onnx": f"{name}.onnx",
        "opset": OPSET,
        "inputs": [{"name": INPUT_NAME, "shape": ["N", base_channels(context) + NUM_ACTIONS, FRAME_SIZE, FRAME_SIZE],
                    "dtype": "float32"}],
        "outputs": [{"name": OUTPUT_NAME, "shape": ["N", OUTPUT_CHANNELS, FRAME_SIZE, FRAME_SIZE], "dtype": "float32"}],
        "frame": {"height": FRAME_SIZE, "width": FRAME_SIZE, "channels": 3, "context_frames": context,
                  "actions": list(ACTION_NAMES)},
        "input_layout": [
            {"name": "noisy_next_frame", "channels": 3},
            {"name": "context_frames", "channels": 3 * context, "order": "oldest_first"},
            {"name": "action", "channels": 3, "encoding": "one_hot_full_planes"},
            {"name": "sigma", "channels": 1, "encoding": "constant_plane"},
        ],
        "normalization": {"to_model": "x / 127.5 - 1", "to_bytes": "floor((y + 1) * 127.5 + 0.5) clamped to [0, 255]"},
        "sampler": {"kind": "warm_start_euler_x0", "schedule": "geometric", "steps": sampler.steps,
                    "sigma_max": sampler.sigma_max, "sigma_min": sampler.sigma_min, **SAMPLER_CONTRACT},
        "model": {**asdict(run.model), "parameters": parameters},
        "parity": {"max_abs_diff": max_diff, "tolerance": tolerance, "runtime": f"onnxruntime {ort.__version__}"},
        "git_commit": git_commit(),
        "metrics": metrics or {},
        "training_config": portable_config(run_config),
    }


def export_breakout(net: nn.Module, run: RunConfig, run_config: dict, out_dir: str | Path, name: str = "breakout",
                    tolerance: float = 1e-4, metrics: dict | None = None) -> tuple[Path, Path, float]:
    """Write `<name>.onnx` + `<name>.json` into out_dir after the onnxruntime parity check. Returns paths and diff."""
    inputs = parity_inputs(context_frames=run.model.context_frames)
    return export_denoiser(net, inputs, Path(out_dir), name, tolerance, lambda parameters, max_diff:
                           breakout_manifest(run, run_config, name, parameters, max_diff, tolerance, metrics))


def export_denoiser(net: nn.Module, inputs: torch.Tensor, out_dir: Path, name: str, tolerance: float,
                    make_manifest: Callable[[int, float], dict]) -> tuple[Path, Path, float]:
    """Export any denoiser: ONNX, the parity check on `inputs`, then `make_manifest(parameters, max_diff)` beside it."""
    net = copy.deepcopy(net).float().cpu().eval()  # the caller's module stays where and how it was
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
            torch.onnx.export(net, (inputs[:1],), str(raw), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}}, opset_version=OPSET,
                              dynamo=False)
        model = onnx.load(str(raw))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    max_diff = onnx_max_abs_diff(session, net, inputs)
    if not max_diff <= tolerance:
        raise ExportError(f"ONNX output differs from PyTorch by {max_diff:.3g} > tolerance {tolerance:g}; "
                          "nothing was written")
    manifest = make_manifest(sum(p.numel() for p in net.parameters()), max_diff)
    onnx.helper.set_model_props(model, metadata_props(manifest, "sampler", "normalization"))
    onnx_path, manifest_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    write_atomic(onnx_path, model.SerializeToString())
    write_manifest(manifest_path, manifest)
    return onnx_path, manifest_path, max_diff


def load_export_weights(net: nn.Module, path: str | Path) -> None:
    """Start `net` from the weights of an ONNX export of the same net (`model.init_from`).

    Every parameter is copied by name. The stem may take more context frames than the export's: its noisy-frame
    channels go first, its context channels to the newest frames, its action and sigma channels last, and the
    older frames' channels are zero, so the net computes what the export computes.
    """
    try:
        graph = onnx.load(str(path)).graph
    except Exception as err:  # protobuf raises several types for files that are not ONNX
        raise ExportError(f"{path} is not an ONNX export ({type(err).__name__}); give an exported .onnx") from None
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    own = net.state_dict()
    missing = sorted(set(own) - set(weights))
    if missing:
        raise ExportError(f"{path} is not an export of this net: it has no {', '.join(missing[:3])}")
    for key, value in own.items():
        given = torch.from_numpy(weights[key].copy())
        if key == "stem.weight" and given.shape[1] < value.shape[1]:
            given = widen_stem(given, value.shape[1])
        if given.shape != value.shape:
            raise ExportError(f"{path}: {key} is {tuple(given.shape)}, this net's is {tuple(value.shape)}; "
                              f"the export is of another net shape")
        own[key] = given
    net.load_state_dict(own)


def widen_stem(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A stem weight (out, 4 + 3k + A, 3, 3) for k context frames -> (out, channels, 3, 3) for more frames, the
    older frames at zero (`load_export_weights`)."""
    extra = channels - weight.shape[1]
    if extra % 3:
        raise ExportError(f"a stem of {weight.shape[1]} input channels cannot widen to {channels}: "
                          f"context frames come in 3 channels")
    wide = torch.zeros(weight.shape[0], channels, *weight.shape[2:], dtype=weight.dtype)
    wide[:, :3] = weight[:, :3]  # the noisy frame
    wide[:, 3 + extra:] = weight[:, 3:]  # the export's context frames (now the newest), actions and sigma
    return wide
