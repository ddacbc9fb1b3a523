"""The Breakout denoiser and its tensor contract (`docs/design.md`, contract 1). Plain torch, export-friendly ops.

Input: 4 + 3K + N channels at 64x64 for K context frames (`model.context_frames`, 4 unless set) and N actions
(19 for Breakout's K = 4 and N = 3 actions), in this order:
    noisy next frame RGB (3) | context frames oldest -> newest (K x 3) | one plane per action (N) | sigma (1)
Breakout's planes are noop/left/right; a `task=gym_pixels` model has one per action of its environment, and its
manifest says how many (`num_actions`).
Output: the clean next frame RGB (3) in [-1, 1].  Frames map to tensors as `x / 127.5 - 1`.

Two nets keep that contract (`model=tiny_denoiser` | `model=fast_denoiser`):
- TinyDenoiser, the seed's: residual blocks of dilated 3x3 convs, all at full resolution (~20 GFLOP a call).
- FastDenoiser: a small U-Net (full, half and quarter resolution, skips added) that predicts the change from the
  newest context frame, so an untrained net already copies the last frame; ~50x fewer FLOPs than the seed's.

    python -c "from worldmodels.breakout.denoiser import *; print(conv_flops(FastDenoiser(FastDenoiserConfig())))"
"""

from __future__ import annotations

import torch
from torch import nn

from worldmodels.breakout.config import DenoiserConfig, FastDenoiserConfig
from worldmodels.breakout.sim import (
    BALL,
    BALL_SIZE,
    BRICK_COLS,
    BRICK_HEIGHT,
    BRICK_PITCH_X,
    BRICK_PITCH_Y,
    BRICK_ROWS,
    BRICK_TOP,
    BRICK_WIDTH,
    FRAME_SIZE,
    NUM_ACTIONS,
    PADDLE,
    PADDLE_HEIGHT,
    PADDLE_WIDTH,
    PADDLE_Y,
    PALETTE,
)


def base_channels(context_frames: int) -> int:
    """Input channels before the action planes: the noisy frame, `context_frames` frames and sigma."""
    return 3 + 3 * context_frames + 1


def latest_channels(context_frames: int) -> slice:
    """The newest context frame's channels in the input."""
    return slice(3 * context_frames, 3 + 3 * context_frames)


CONTEXT_FRAMES = 4  # the default context (`model.context_frames`), and the one `task=gym_pixels` takes
BASE_CHANNELS = base_channels(CONTEXT_FRAMES)  # 16: the noisy frame, the context and sigma, before the action planes
INPUT_CHANNELS = BASE_CHANNELS + NUM_ACTIONS  # 19, Breakout's with the default context
OUTPUT_CHANNELS = 3
PALETTE_PRIOR = 1.0  # palette head: score handicap per unit of squared distance from the newest frame's colour
PALETTE_TIE = 1e-3  # palette head: scores this close are a tie that float rounding may break either way
INPUT_NAME, OUTPUT_NAME = "input", "pred"  # ONNX names, shared with the web player


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
    """Fully convolutional x0-predictor: (N, 4 + 3K + A, H, W) -> (N, 3, H, W) in [-1, 1], A = num_actions."""

    def __init__(self, cfg: DenoiserConfig, num_actions: int = NUM_ACTIONS):
        super().__init__()
        self.num_actions, self.context_frames = num_actions, cfg.context_frames
        self.stem = nn.Conv2d(base_channels(cfg.context_frames) + num_actions, cfg.width, 3, padding=1)
        self.blocks = nn.Sequential(
            *[ResidualBlock(cfg.width, cfg.dilations[i % len(cfg.dilations)]) for i in range(cfg.blocks)]
        )
        self.head = nn.Conv2d(cfg.width, OUTPUT_CHANNELS, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))  # (N, width, H, W)
        return torch.tanh(self.head(nn.functional.silu(h)))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class FastDenoiser(nn.Module):
    """U-Net x0-predictor: (N, 4 + 3K + A, H, W) -> (N, 3, H, W) in [-1, 1], H and W divisible by 2**(levels - 1).

    Encoder: a 3x3 stem, then per level residual blocks and a stride-2 conv down to the next; decoder: a stride-2
    transposed conv up, the encoder's features of that level added, residual blocks. The head's output is added to
    the newest context frame and clamped: the net learns what changes (ball, paddle, bricks), the rest is copied.
    """

    def __init__(self, cfg: FastDenoiserConfig, num_actions: int = NUM_ACTIONS):
        super().__init__()
        w, levels = cfg.widths, len(cfg.widths)
        self.num_actions, self.context_frames = num_actions, cfg.context_frames
        self.latest = latest_channels(cfg.context_frames)
        self.stem = nn.Conv2d(base_channels(cfg.context_frames) + num_actions, w[0], 3, padding=1)
        def stage(level: int) -> nn.Sequential:
            return nn.Sequential(*[ResidualBlock(w[level], 1) for _ in range(cfg.blocks[level])])

        self.encode = nn.ModuleList(stage(i) for i in range(levels - 1))
        self.down = nn.ModuleList(nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1) for i in range(levels - 1))
        self.middle = nn.Sequential(*[ResidualBlock(w[-1], cfg.dilations[j % len(cfg.dilations)])
                                      for j in range(cfg.blocks[-1])])
        self.up = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in range(levels - 1))
        self.decode = nn.ModuleList(stage(i) for i in range(levels - 1))
        self.output, self.one_ball, self.layout = cfg.output, cfg.one_ball, cfg.layout
        self.head = nn.Conv2d(w[0], len(PALETTE) if cfg.output == "palette" else OUTPUT_CHANNELS, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # starts as "copy the newest frame"
        nn.init.zeros_(self.head.bias)
        # The palette in model units (P, 3): what the palette head's scores pick from.
        self.register_buffer("palette", torch.from_numpy(PALETTE).float() / 127.5 - 1.0, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output == "palette":  # each pixel is the colour with the best score
            logits = self.logits(x)
            if self.layout:
                classes = layout_classes(logits)
            else:
                classes = one_ball_classes(logits) if self.one_ball else logits.argmax(dim=1)
            return self.palette[classes].permute(0, 3, 1, 2)  # (N, 3, H, W)
        return (x[:, self.latest] + self.features(x)).clamp(-1.0, 1.0)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Palette head: (N, P, H, W) scores of the palette's colours; the newest frame's own colour starts ahead
        (minus the squared distance to each colour, times PALETTE_PRIOR), so an untrained net copies it."""
        latest = x[:, self.latest]  # (N, 3, H, W)
        distance = ((latest[:, None] - self.palette[None, :, :, None, None]) ** 2).sum(2)  # (N, P, H, W)
        return self.features(x) - PALETTE_PRIOR * distance

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's output: the RGB change (rgb) or the palette scores before the prior (palette)."""
        h = self.stem(x)
        skips = []
        for i, down in enumerate(self.down):
            h = self.encode[i](h)
            skips.append(h)
            h = down(nn.functional.silu(h))
        h = self.middle(h)
        for i in reversed(range(len(self.up))):
            h = self.decode[i](self.up[i](nn.functional.silu(h)) + skips[i])
        return self.head(nn.functional.silu(h))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def one_ball_classes(logits: torch.Tensor) -> torch.Tensor:
    """Palette scores (N, P, H, W) -> colour indices (N, H, W) with at most one ball, a BALL_SIZE square.

    Every pixel takes its best colour other than the ball's, and the ball is drawn over them (`ball_square`).
    """
    classes = logits[:, :BALL].argmax(dim=1)  # the best colour but the ball's (the ball is the palette's last)
    ball = logits.softmax(dim=1)[:, BALL:BALL + 1]
    return torch.where(ball_square(ball), torch.full_like(classes, BALL), classes)


def ball_square(ball: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool: the pixels of the one ball a frame's ball probability (N, 1, H, W) draws, or none.

    Each square's ball probability (softmax) is averaged over its pixels in the frame (squares run one past the
    bottom and right edges, where a ball leaving the frame shows in part), and the ball is drawn on the square with
    the largest mean, if the frame's ball probability adds up to more than half of that square's pixels in the frame.
    """
    n, _, height, width = ball.shape
    edge = (0, BALL_SIZE - 1, 0, BALL_SIZE - 1)  # squares by their top-left pixel, past the bottom and right edges
    total = nn.functional.avg_pool2d(nn.functional.pad(ball, edge), BALL_SIZE, stride=1)  # (N, 1, H, W)
    inside = nn.functional.avg_pool2d(nn.functional.pad(torch.ones_like(ball[:1]), edge), BALL_SIZE, stride=1)
    corner = (total / inside).flatten(1).argmax(dim=1)  # (N,): the square with the most ball per pixel shown
    pixels = (inside.flatten(1)[0][corner] * BALL_SIZE * BALL_SIZE)  # (N,): that square's pixels in the frame
    present = ball.flatten(1).sum(dim=1) > 0.5 * pixels  # (N,)
    at = (torch.arange(height * width, device=ball.device)[None] == corner[:, None]) & present[:, None]
    at = at.float().view(n, 1, height, width)
    return nn.functional.max_pool2d(nn.functional.pad(at, (BALL_SIZE - 1, 0, BALL_SIZE - 1, 0)), BALL_SIZE,
                                    stride=1)[:, 0] > 0.5


def layout_classes(logits: torch.Tensor) -> torch.Tensor:
    """Palette scores (N, P, 64, 64) -> colour indices (N, 64, 64) in the game's own layout (`model.layout`).

    Each brick of the grid is whole, in its row's colour, where that colour's mean probability (softmax) over the
    brick's pixels is above a half, else gone; the paddle is one PADDLE_WIDTH run on its rows, at the left edge
    whose run has the most paddle probability; the one ball (`ball_square`) is drawn over them; every other pixel
    is background. So a frame holds only what the simulator can render: no brick in part or out of its cell, no
    second or broken paddle, no stray colour.
    """
    n = logits.shape[0]
    prob = logits.softmax(dim=1)
    band_rows = BRICK_ROWS * BRICK_PITCH_Y
    band = prob[:, 1:1 + BRICK_ROWS, BRICK_TOP:BRICK_TOP + band_rows]  # (N, colour, band y, x)
    # (N, colour, brick row, y in cell, brick column, x in cell); each row keeps its own colour's probability.
    cells = band.reshape(n, BRICK_ROWS, BRICK_ROWS, BRICK_PITCH_Y, BRICK_COLS, BRICK_PITCH_X)
    own = (cells * torch.eye(BRICK_ROWS, device=logits.device).view(1, BRICK_ROWS, BRICK_ROWS, 1, 1, 1)).sum(dim=1)
    whole = own[:, :, :BRICK_HEIGHT, :, :BRICK_WIDTH].mean(dim=(2, 4)) > 0.5  # (N, brick row, brick column)
    row_colour = torch.arange(1, 1 + BRICK_ROWS, device=logits.device).view(1, BRICK_ROWS, 1, 1, 1)
    on_brick = torch.zeros(BRICK_PITCH_Y, BRICK_PITCH_X, dtype=torch.bool, device=logits.device)
    on_brick[:BRICK_HEIGHT, :BRICK_WIDTH] = True
    drawn = whole[:, :, None, :, None] & on_brick[None, None, :, None, :]  # (N, row, y in cell, column, x in cell)
    bricks = torch.where(drawn, row_colour, torch.zeros_like(row_colour)).reshape(n, band_rows, FRAME_SIZE)

    paddle = prob[:, PADDLE:PADDLE + 1, PADDLE_Y:PADDLE_Y + PADDLE_HEIGHT]  # (N, 1, rows, 64)
    runs = nn.functional.avg_pool2d(paddle, (PADDLE_HEIGHT, PADDLE_WIDTH), stride=1).flatten(1)  # (N, lefts)
    left = runs.argmax(dim=1, keepdim=True)  # (N, 1)
    x = torch.arange(FRAME_SIZE, device=logits.device)[None]
    row = torch.where((x >= left) & (x < left + PADDLE_WIDTH), PADDLE, 0)  # (N, 64)
    paddle_rows = row[:, None].expand(n, PADDLE_HEIGHT, FRAME_SIZE)

    def empty(rows: int) -> torch.Tensor:
        return torch.zeros(n, rows, FRAME_SIZE, dtype=torch.long, device=logits.device)

    below = PADDLE_Y - BRICK_TOP - band_rows
    classes = torch.cat([empty(BRICK_TOP), bricks.long(), empty(below), paddle_rows.long(),
                         empty(FRAME_SIZE - PADDLE_Y - PADDLE_HEIGHT)], dim=1)
    return torch.where(ball_square(prob[:, BALL:BALL + 1]), torch.full_like(classes, BALL), classes)


def build_denoiser(cfg: DenoiserConfig | FastDenoiserConfig | dict, num_actions: int = NUM_ACTIONS) -> nn.Module:
    """The net a model config (or a manifest's `model` dict) names, with `num_actions` action planes."""
    if isinstance(cfg, dict):
        fields = {k: v for k, v in cfg.items() if k != "parameters"}
        cfg = {"tiny_denoiser": DenoiserConfig, "fast_denoiser": FastDenoiserConfig}[fields["name"]](**fields)
    return (TinyDenoiser if cfg.name == "tiny_denoiser" else FastDenoiser)(cfg, num_actions)


def conv_flops(net: nn.Module, height: int = FRAME_SIZE, width: int = FRAME_SIZE) -> int:
    """Floating-point operations (2 x multiply-adds) of the convolutions in one batch-1 call: what dominates."""
    total = 0

    def count(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):  # every input pixel feeds k*k outputs per output channel
            per_output = module.in_channels * module.kernel_size[0] * module.kernel_size[1] // (
                module.stride[0] * module.stride[1])
        total += 2 * per_output * output.numel()

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            net(torch.zeros(1, base_channels(net.context_frames) + net.num_actions, height, width))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def frames_to_tensor(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    return frames.movedim(-1, -3).float() / 127.5 - 1.0


def tensor_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3), rounding as floor(v + 0.5) like the web player."""
    return torch.floor((x.clamp(-1, 1) + 1.0) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8).movedim(-3, -1)


def denoiser_input(noisy: torch.Tensor, context: torch.Tensor, action: torch.Tensor,
                   sigma: torch.Tensor, num_actions: int = NUM_ACTIONS) -> torch.Tensor:
    """Assemble the (4 + 3K + num_actions)-channel input (19 for Breakout's K = 4).

    noisy (N, 3, H, W), context (N, K, 3, H, W) oldest first, action (N,) int in [0, num_actions), sigma (N,).
    """
    n, _, h, w = noisy.shape
    k = context.shape[1]
    planes = nn.functional.one_hot(action.long(), num_actions).to(noisy.dtype)  # (N, A)
    return torch.cat(
        [
            noisy,
            context.reshape(n, 3 * k, h, w),
            planes[:, :, None, None].expand(n, num_actions, h, w),
            sigma.to(noisy.dtype)[:, None, None, None].expand(n, 1, h, w),
        ],
        dim=1,
    )  # (N, 4 + 3K + A, H, W)
