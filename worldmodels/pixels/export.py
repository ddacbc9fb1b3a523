"""Export a gym_pixels denoiser: Breakout's ONNX contract with N action planes, plus what a fully dreamed game needs.

ONNX: `input [N, 16 + A, S, S] -> pred [N, 3, S, S]`, A = the game's actions (`frame.actions` names them,
`num_actions` counts them, the `action` block of `input_layout` has A channels). The manifest also carries `game`
(the env id, frame skip and sticky actions, or the Minari dataset) and `start_frames`: real held-out starts, each 4
frames side by side as a base64 PNG, from which the browser's dream begins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from worldmodels.breakout.denoiser import (
    BASE_CHANNELS,
    CONTEXT_FRAMES,
    OUTPUT_CHANNELS,
    denoiser_input,
    frames_to_tensor,
)
from worldmodels.breakout.export import breakout_manifest, export_denoiser
from worldmodels.core.config import RunConfig
from worldmodels.core.errors import UserError
from worldmodels.pixels.data import png_frames


def parity_inputs(starts: np.ndarray, num_actions: int, seed: int = 0) -> torch.Tensor:
    """Real start frames at several noise levels and every action, plus random planes."""
    generator = torch.Generator().manual_seed(seed)
    context = frames_to_tensor(torch.from_numpy(starts[:4]))  # (4, 4, 3, S, S)
    n, size = len(context), context.shape[-1]
    sigma = torch.tensor([0.02, 0.1, 0.5, 1.0])[:n]
    noisy = context[:, -1] + sigma[:, None, None, None] * torch.randn(context[:, -1].shape, generator=generator)
    action = torch.arange(n) % num_actions
    real = denoiser_input(noisy, context, action, sigma, num_actions)
    random = torch.randn((2, BASE_CHANNELS + num_actions, size, size), generator=generator)
    return torch.cat([real, random])


def pixels_manifest(run: RunConfig, run_config: dict, name: str, parameters: int, max_diff: float, tolerance: float,
                    metrics: dict | None, extras: dict) -> dict:
    manifest = breakout_manifest(run, run_config, name, parameters, max_diff, tolerance, metrics)
    size, names = run.data.frame_size, list(extras["action_names"])
    channels = BASE_CHANNELS + len(names)
    manifest.update(
        task="gym_pixels",
        inputs=[{"name": manifest["inputs"][0]["name"], "shape": ["N", channels, size, size], "dtype": "float32"}],
        outputs=[{"name": manifest["outputs"][0]["name"], "shape": ["N", OUTPUT_CHANNELS, size, size],
                  "dtype": "float32"}],
        num_actions=len(names),
        game=extras["game"],
        start_frames=list(extras["start_frames"]),
    )
    manifest["frame"] = {**manifest["frame"], "height": size, "width": size, "actions": names}
    manifest["input_layout"] = [{**block, "channels": len(names)} if block["name"] == "action" else block
                                for block in manifest["input_layout"]]
    return manifest


def export_pixels(net: nn.Module, run: RunConfig, run_config: dict, extras: dict, out_dir: str | Path,
                  name: str = "gym_pixels", tolerance: float = 1e-4, metrics: dict | None = None):
    if not extras.get("start_frames"):
        raise UserError("this checkpoint carries no start frames (export_extras); it was not trained by "
                        "python -m worldmodels.train task=gym_pixels")
    starts = np.stack([png_frames(s) for s in extras["start_frames"]])
    if starts.shape[1] != CONTEXT_FRAMES:
        raise UserError(f"start frames hold {starts.shape[1]} frames, not {CONTEXT_FRAMES}")
    inputs = parity_inputs(starts, len(extras["action_names"]))
    return export_denoiser(net, inputs, Path(out_dir), name, tolerance, lambda parameters, max_diff:
                           pixels_manifest(run, run_config, name, parameters, max_diff, tolerance, metrics, extras))
