"""The Breakout denoiser and its tensor contract (DESIGN.md contract 1). Plain torch, export-friendly ops only.

Input: 19 channels at 64x64, in this order:
    noisy next frame RGB (3) | context frames oldest -> newest (4 x 3) | action planes noop/left/right (3) | sigma (1)
Output: the clean next frame RGB (3), tanh, in [-1, 1].  Frames map to tensors as `x / 127.5 - 1`.

    python -c "from worldmodels.nets.denoiser import *; print(TinyDenoiser(DenoiserConfig()).num_parameters())"
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

CONTEXT_FRAMES = 4
NUM_ACTIONS = 3
INPUT_CHANNELS = 3 + 3 * CONTEXT_FRAMES + NUM_ACTIONS + 1  # 19
OUTPUT_CHANNELS = 3
INPUT_NAME, OUTPUT_NAME = "input", "pred"  # ONNX names, shared with the web player


@dataclass
class DenoiserConfig:
    """TinyDenoiser shape. The defaults are the seed model (~2.34M parameters)."""

    name: str = "tiny_denoiser"
    width: int = 96  # channels in every residual block
    blocks: int = 14  # residual blocks of two dilated 3x3 convolutions
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # cycled over the blocks

    def validate(self, key: str) -> None:
        from worldmodels.config import require

        require(self.width > 0, f"{key}.width", f"must be > 0 (got {self.width})")
        require(self.blocks > 0, f"{key}.blocks", f"must be > 0 (got {self.blocks})")
        require(len(self.dilations) > 0 and all(d > 0 for d in self.dilations), f"{key}.dilations",
                f"must be a non-empty list of positive ints (got {self.dilations})")


class ResidualBlock(nn.Module):
    """x + conv(silu(conv(silu(x)))), both convs 3x3 with the same dilation and 'same' padding."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        # Zero-init the last conv so every block starts as the identity: deep stacks train from step one.
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(nn.functional.silu(self.conv1(nn.functional.silu(x))))


class TinyDenoiser(nn.Module):
    """Fully convolutional x0-predictor: (N, 19, H, W) -> (N, 3, H, W) in [-1, 1]."""

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.stem = nn.Conv2d(INPUT_CHANNELS, cfg.width, 3, padding=1)
        self.blocks = nn.Sequential(
            *[ResidualBlock(cfg.width, cfg.dilations[i % len(cfg.dilations)]) for i in range(cfg.blocks)]
        )
        self.head = nn.Conv2d(cfg.width, OUTPUT_CHANNELS, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))  # (N, width, H, W)
        return torch.tanh(self.head(nn.functional.silu(h)))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def frames_to_tensor(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    return frames.movedim(-1, -3).float() / 127.5 - 1.0


def tensor_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3), rounding as floor(v + 0.5) like the web player."""
    return torch.floor((x.clamp(-1, 1) + 1.0) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8).movedim(-3, -1)


def denoiser_input(noisy: torch.Tensor, context: torch.Tensor, action: torch.Tensor,
                   sigma: torch.Tensor) -> torch.Tensor:
    """Assemble the 19-channel input.

    noisy (N, 3, H, W), context (N, 4, 3, H, W) oldest first, action (N,) int in {0, 1, 2}, sigma (N,) float.
    """
    n, _, h, w = noisy.shape
    planes = nn.functional.one_hot(action.long(), NUM_ACTIONS).to(noisy.dtype)  # (N, 3)
    return torch.cat(
        [
            noisy,
            context.reshape(n, 3 * CONTEXT_FRAMES, h, w),
            planes[:, :, None, None].expand(n, NUM_ACTIONS, h, w),
            sigma.to(noisy.dtype)[:, None, None, None].expand(n, 1, h, w),
        ],
        dim=1,
    )  # (N, 19, H, W)
