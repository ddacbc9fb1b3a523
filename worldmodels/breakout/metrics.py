"""Frame metrics of the Breakout evaluation: PSNR and what a player sees (`worldmodels.breakout.readout`).

A ball is "right" when the frame's ball is within 1.5 px of the true ball; a missing ball is never right (it counts
as a failure, never as a left-out frame), and in one-step scores a second ball makes the frame wrong too.
"""

from __future__ import annotations

import numpy as np
import torch

from worldmodels.breakout.readout import Objects
from worldmodels.breakout.sim import PADDLE_WIDTH

MODEL, COPY, CONSTANT = "model", "copy last frame", "constant velocity"  # the predictors scored
MAX_PSNR = 100.0  # identical frames: reported as this instead of infinity so means stay finite
BALL_RIGHT_PX = 1.5  # a ball this close to the true one is right
BALL_KEPT_PX = 3.0  # the rollout keeps the ball until it is further off than this, or missing
PADDLE_RIGHT_PX = 1.0


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample PSNR in dB of (N, C, H, W) tensors in [-1, 1] (peak-to-peak 2)."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(4.0 / mse.clamp_min(4.0 * 10 ** (-MAX_PSNR / 10)))).clamp(max=MAX_PSNR)


def frame_psnr(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame PSNR in dB of uint8 (N, H, W, 3) frames."""
    mse = ((pred.astype(np.float64) - target.astype(np.float64)) ** 2).reshape(len(pred), -1).mean(1)
    with np.errstate(divide="ignore"):
        return np.minimum(10 * np.log10(255.0**2 / mse), MAX_PSNR)


def ball_error(centre: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Distance (N,) of read ball centres (N, 2) from the true ones; infinite where the ball is missing."""
    err = np.linalg.norm(centre - truth, axis=1)
    return np.where(np.isnan(err), np.inf, err)


def paddle_right(pred: Objects, truth: Objects) -> np.ndarray:
    """bool (N,): the paddle is where the true one is (within 1 px) and as wide."""
    err = np.abs(pred.paddle - truth.paddle)
    return (np.nan_to_num(err, nan=np.inf) <= PADDLE_RIGHT_PX) & (pred.paddle_width == PADDLE_WIDTH)


def rate(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")
