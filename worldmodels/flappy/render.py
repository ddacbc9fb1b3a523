"""Draw Flappy Bird frames from the visible state alone (numpy; no pygame, no sprites), e.g. decoded model tokens.

    frame = render_frame(state)     # FlappyState -> uint8 (H, W, 3); from tokens: worldmodels.flappy.media

Everything is placed from `GEOMETRY` (the renderer the browser uses reads the same numbers from the token spec's
JSON): sky, both pipes of each visible slot (top pipe above `gap_y - pipe_gap / 2`, bottom pipe from
`gap_y + pipe_gap / 2` down to the ground, `pipe_width` wide from `pipe_x`), the ground below `ground_y`, and the
bird as a `bird_width` x `bird_height` box at (`bird_x`, `bird_y`). Hidden slots are not drawn; a done frame gets a
red border. Pixel edges are `floor(px * scale + 0.5)`, the project's one rounding rule.
"""

from __future__ import annotations

import math

import numpy as np

from worldmodels.flappy.game import GEOMETRY, FlappyState

SKY = (112, 197, 206)
PIPE = (83, 160, 40)
GROUND = (222, 216, 149)
BIRD = (250, 200, 40)
DEATH = (220, 30, 30)
DEATH_BORDER = 3  # px of red border on a done frame, at any scale


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
