"""Frame metrics: PSNR and the objects a player cares about, read from pixels by their colours.

Ball and paddle errors are in pixels; a predicted frame with no ball where the true frame has one counts in
`ball_missing` (the share of such frames), not in `ball_err_px`, so a blurred-away ball cannot look precise.
"""

from __future__ import annotations

import numpy as np
import torch

from worldmodels.breakout.sim import ball_position, brick_grid, paddle_x

MODEL, COPY, TRUE = "model", "copy last frame", "true simulator"  # the evaluation's predictors
MAX_PSNR = 100.0  # identical frames: reported as this instead of infinity so means stay finite


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample PSNR in dB of (N, C, H, W) tensors in [-1, 1] (peak-to-peak 2)."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(4.0 / mse.clamp_min(4.0 * 10 ** (-MAX_PSNR / 10)))).clamp(max=MAX_PSNR)


def frame_psnr(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame PSNR in dB of uint8 (N, H, W, 3) frames."""
    mse = ((pred.astype(np.float64) - target.astype(np.float64)) ** 2).reshape(len(pred), -1).mean(1)
    with np.errstate(divide="ignore"):
        return np.minimum(10 * np.log10(255.0**2 / mse), MAX_PSNR)


def frame_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """PSNR, ball/paddle position errors and brick-grid accuracy of predicted vs true uint8 (N, H, W, 3) frames."""
    ball_pred, ball_true = ball_position(pred), ball_position(target)
    true_has_ball = ~np.isnan(ball_true[:, 0])
    both = true_has_ball & ~np.isnan(ball_pred[:, 0])
    paddle_pred, paddle_true = paddle_x(pred), paddle_x(target)
    paddle_both = ~np.isnan(paddle_pred) & ~np.isnan(paddle_true)
    ball_err = np.linalg.norm(ball_pred[both] - ball_true[both], axis=1)
    paddle_err = np.abs(paddle_pred - paddle_true)[paddle_both]
    return {
        "psnr": float(frame_psnr(pred, target).mean()),
        "ball_err_px": float(ball_err.mean()) if both.any() else float("nan"),
        "ball_missing": float((true_has_ball & ~both).sum() / max(1, true_has_ball.sum())),
        "paddle_err_px": float(paddle_err.mean()) if paddle_both.any() else float("nan"),
        "paddle_missing": float(1 - paddle_both.sum() / max(1, (~np.isnan(paddle_true)).sum())),
        "brick_acc": float((brick_grid(pred) == brick_grid(target)).mean()),
    }
