"""Reference samplers: what the browser does, in Python.

Breakout: the warm-start diffusion sampler. The next frame is close to the latest frame, so sampling starts at
`latest context frame + sigma_max * noise` (not pure noise) and walks a geometric sigma schedule down to
`sigma_min` in K denoiser calls. Each call predicts the clean frame x0; between calls the sample moves to the next
sigma along the same noise direction (a deterministic Euler step for x0-prediction):

    x_{i+1} = x0_i + (sigma_{i+1} / sigma_i) * (x_i - x0_i)

Given the same initial noise the sampler is deterministic, which is what the TypeScript port is tested against.
`denoise` is any callable (N, 19, H, W) -> (N, 3, H, W): a torch module or an onnxruntime session wrapper.

    python -m worldmodels.evaluate path/to/model.onnx     # uses these samplers
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from worldmodels.breakout.denoiser import denoiser_input, frames_to_tensor, tensor_to_frames
from worldmodels.breakout.sim import NUM_ACTIONS

Denoise = Callable[[torch.Tensor], torch.Tensor]


def sigma_schedule(steps: int, sigma_max: float, sigma_min: float) -> list[float]:
    """K noise levels from sigma_max down to sigma_min, evenly spaced in log (one step: just sigma_max)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1 (got {steps})")
    if steps == 1:
        return [float(sigma_max)]
    ratio = sigma_min / sigma_max
    return [float(sigma_max * ratio ** (i / (steps - 1))) for i in range(steps)]


@torch.no_grad()
def sample_next_frame(
    denoise: Denoise,
    context: torch.Tensor,
    action: torch.Tensor,
    steps: int,
    sigma_max: float,
    sigma_min: float,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    num_actions: int = NUM_ACTIONS,
) -> torch.Tensor:
    """Predict the next frame. context (N, 4, 3, H, W) in [-1, 1], action (N,) -> (N, 3, H, W) in [-1, 1]."""
    latest = context[:, -1]  # (N, 3, H, W)
    if noise is None:
        noise = torch.randn(latest.shape, generator=generator, dtype=latest.dtype, device=latest.device)
    sigmas = sigma_schedule(steps, sigma_max, sigma_min)
    x = latest + sigmas[0] * noise
    for i, sigma in enumerate(sigmas):
        x0 = denoise(denoiser_input(x, context, action, torch.full_like(action, sigma, dtype=x.dtype), num_actions))
        if i + 1 < len(sigmas):
            x = x0 + (sigmas[i + 1] / sigma) * (x - x0)
    return x0


@torch.no_grad()
def dream_rollout(
    denoise: Denoise,
    context_frames: torch.Tensor,
    actions: torch.Tensor,
    steps: int,
    sigma_max: float,
    sigma_min: float,
    generator: torch.Generator | None = None,
    num_actions: int = NUM_ACTIONS,
) -> torch.Tensor:
    """Autonomous rollout: the model's own frames feed its context, driven by the given actions.

    context_frames uint8 (N, 4, H, W, 3) real frames to start from, actions (T, N) -> uint8 (T, N, H, W, 3).
    Each predicted frame is rounded to bytes before it re-enters the context, as in the web player.
    """
    context = frames_to_tensor(context_frames)  # (N, 4, 3, H, W)
    frames = []
    for action in actions:
        pred = sample_next_frame(denoise, context, action, steps, sigma_max, sigma_min, generator=generator,
                                 num_actions=num_actions)
        frame = tensor_to_frames(pred)  # (N, H, W, 3)
        frames.append(frame)
        context = torch.cat([context[:, 1:], frames_to_tensor(frame)[:, None]], dim=1)
    return torch.stack(frames)
