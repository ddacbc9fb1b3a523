"""Draw Flappy Bird frames from the visible state alone (numpy; no pygame, no sprites), e.g. from model tokens.

    frames = render_tokens(tokens)                                       # tokens (F*10,) or (F, 9|10) -> uint8 frames
    side_by_side_gif(real_tokens, model_tokens, "rollout.gif", fps=15)   # real | model, labelled

Everything is placed from `GEOMETRY` (the renderer the browser uses reads the same numbers from the token spec's
JSON): sky, both pipes of each visible slot (top pipe above `gap_y - pipe_gap / 2`, bottom pipe from
`gap_y + pipe_gap / 2` down to the ground, `pipe_width` wide from `pipe_x`), the ground below `ground_y`, and the
bird as a `bird_width` x `bird_height` box at (`bird_x`, `bird_y`). Hidden slots are not drawn; a done frame gets a
red border. Pixel edges are `floor(px * scale + 0.5)`, the project's one rounding rule.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from worldmodels.data.flappy_tokens import SPEC
from worldmodels.games.flappy import GEOMETRY, FlappyState

SKY = (112, 197, 206)
PIPE = (83, 160, 40)
GROUND = (222, 216, 149)
BIRD = (250, 200, 40)
DEATH = (220, 30, 30)
DEATH_BORDER = 3  # px of red border on a done frame, at any scale
LABEL_HEIGHT = 14


def _px(value: float, scale: float) -> int:
    return math.floor(value * scale + 0.5)


def _fill(image: np.ndarray, x0: float, x1: float, y0: float, y1: float, scale: float, colour) -> None:
    """Paint the screen rectangle [x0, x1) x [y0, y1) (screen px), clipped to the image."""
    h, w = image.shape[:2]
    left, right = max(0, _px(x0, scale)), min(w, _px(x1, scale))
    top, bottom = max(0, _px(y0, scale)), min(h, _px(y1, scale))
    if left < right and top < bottom:
        image[top:bottom, left:right] = colour


def render_frame(state: FlappyState, geometry: dict = GEOMETRY, scale: float = 0.5) -> np.ndarray:
    """uint8 (H, W, 3), H = round(screen_height * scale), W = round(screen_width * scale)."""
    g = geometry
    image = np.empty((_px(g["screen_height"], scale), _px(g["screen_width"], scale), 3), np.uint8)
    image[:] = SKY
    for visible, x, gap in zip(state.visible, state.pipe_x, state.gap_y, strict=True):
        if not visible:
            continue
        right = x + g["pipe_width"]
        _fill(image, x, right, 0, gap - g["pipe_gap"] / 2, scale, PIPE)
        _fill(image, x, right, gap + g["pipe_gap"] / 2, g["ground_y"], scale, PIPE)
    _fill(image, 0, g["screen_width"], g["ground_y"], g["screen_height"], scale, GROUND)
    _fill(image, g["bird_x"], g["bird_x"] + g["bird_width"], state.bird_y, state.bird_y + g["bird_height"], scale,
          BIRD)
    if state.done:
        image[:DEATH_BORDER], image[-DEATH_BORDER:] = DEATH, DEATH
        image[:, :DEATH_BORDER], image[:, -DEATH_BORDER:] = DEATH, DEATH
    return image


def render_tokens(tokens, geometry: dict = GEOMETRY, scale: float = 0.5) -> list[np.ndarray]:
    """One frame per token frame: tokens (F*10,), (F, 10) or (F, 9) as `SPEC.decode_episode` reads them."""
    states, _ = SPEC.decode_episode(tokens)
    return [render_frame(state, geometry, scale) for state in states]


def side_by_side_gif(real_tokens, model_tokens, path: str | Path, fps: int = 15, scale: float = 0.5) -> Path:
    """Write a GIF of real | model frames, labelled. The shorter side holds its last frame (e.g. a model that died
    early) until the longer one ends. Returns the path."""
    real, model = render_tokens(real_tokens, scale=scale), render_tokens(model_tokens, scale=scale)
    if not real or not model:
        raise ValueError(f"side_by_side_gif: need frames on both sides (got {len(real)} real, {len(model)} model)")
    h, w = real[0].shape[:2]
    images = []
    for t in range(max(len(real), len(model))):
        image = Image.new("RGB", (2 * w + 2, LABEL_HEIGHT + h), (40, 40, 40))
        draw = ImageDraw.Draw(image)
        for column, (label, frames) in enumerate((("real", real), ("model", model))):
            image.paste(Image.fromarray(frames[min(t, len(frames) - 1)]), (column * (w + 2), LABEL_HEIGHT))
            draw.text((column * (w + 2) + 2, 1), f"{label} {min(t, len(frames) - 1)}", fill=(230, 230, 230))
        images.append(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
