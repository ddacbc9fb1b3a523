"""What a player sees in a Breakout frame: the ball(s), the paddle and the brick grid, read from pixels; and the
game's events, labelled from the simulator's own step (`StepResult`).

Every pixel is given the game colour it is nearest to (`PALETTE`: background, the 6 brick colours, paddle, ball), so
a read-out of a true frame is exact (`tests/breakout/test_readout.py` checks them against the simulator's state on
thousands of frames) and a model's frame is read the way a player would see it: a dim smear is not a ball.

- Ball: 8-connected blobs of ball-coloured pixels with at least 2 pixels (a true ball is a 2x2 square, or its top row
  while it leaves through the bottom). The biggest blob is "the ball"; its centre is the centre of its bounding box
  (a blob that touches the bottom row with one row is placed as the 2x2 ball it is the top of), comparable with
  `(sim.ball_x + 1, sim.ball_y + 1)` rounded like the renderer. No blob: no ball (NaN), which every metric counts as
  a failure. A second blob is an extra ball.
- Paddle: the columns of paddle-coloured pixels in the paddle's two rows; a ball drawn over an end of the paddle is
  counted as paddle there. Centre comparable with `round(sim.paddle_x) + 5`, width with `PADDLE_WIDTH`.
- Bricks: a brick is present when most of its 7x3 pixels have its row's colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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
    PADDLE,
    PADDLE_HEIGHT,
    PADDLE_WIDTH,
    PADDLE_Y,
    StepResult,
)
from worldmodels.breakout.sim import PALETTE as GAME_PALETTE

PALETTE = GAME_PALETTE.astype(np.int32)
BRICK_IDS = np.arange(1, 1 + BRICK_ROWS)  # palette index of each brick row's colour
MIN_BALL_PIXELS = 2  # smaller blobs are specks, not a ball

# One-step events, in the order a transition is given one (the first that applies). "new_game": the last life is
# lost and a new game starts (a fresh wall, the paddle and the serve drawn at random); nothing in the frames tells
# it from "serve" (a life lost while others remain: the new ball sits above the paddle, the wall stays), since
# the frames do not show the lives.
EVENTS = ("new_game", "serve", "brick_break", "paddle_bounce", "after_paddle", "wall_bounce", "flight")


def nearest_colour(frames: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> int (N, H, W): the PALETTE index each pixel is nearest to (Euclidean RGB)."""
    frames = np.asarray(frames)
    out = np.empty(frames.shape[:-1], np.int64)
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, and |x|^2 is the same for every c; in chunks to bound memory.
    # float32 holds these integers exactly (all under 2^24).
    palette, norms = PALETTE.T.astype(np.float32), (PALETTE * PALETTE).sum(-1).astype(np.float32)
    for start in range(0, len(frames), 256):
        x = frames[start:start + 256].astype(np.float32)
        out[start:start + 256] = (norms - 2 * x @ palette).argmin(-1)
    return out


@dataclass
class Balls:
    centre: np.ndarray  # float64 (N, 2) x, y of the biggest ball blob; NaN where there is none
    count: np.ndarray  # int (N,) ball blobs of at least MIN_BALL_PIXELS pixels

    @property
    def missing(self) -> np.ndarray:
        return self.count == 0

    @property
    def extra(self) -> np.ndarray:
        return self.count > 1


_EIGHT = np.zeros((3, 3, 3), bool)
_EIGHT[1] = True  # 8-connected within a frame, never across frames


def read_balls(frames: np.ndarray, colours: np.ndarray | None = None) -> Balls:
    """The ball read-out of uint8 (N, H, W, 3) frames (or their `nearest_colour` indices)."""
    colours = nearest_colour(frames) if colours is None else colours
    n = len(colours)
    labels, total = ndimage.label(colours == BALL, structure=_EIGHT)
    centre, count = np.full((n, 2), np.nan), np.zeros(n, np.int64)
    if total == 0:
        return Balls(centre, count)
    sizes = np.bincount(labels.ravel(), minlength=total + 1)
    boxes = ndimage.find_objects(labels)  # per label: (frame, rows, cols) slices
    best = np.zeros(n, np.int64)
    for label, box in enumerate(boxes, start=1):
        if box is None or sizes[label] < MIN_BALL_PIXELS:
            continue
        frame, rows, cols = box[0].start, box[1], box[2]
        count[frame] += 1
        if sizes[label] <= best[frame]:
            continue
        best[frame] = sizes[label]
        top, bottom = rows.start, rows.stop
        if bottom == FRAME_SIZE and bottom - top < BALL_SIZE:  # leaving through the bottom: only its top row shows
            bottom = top + BALL_SIZE
        centre[frame] = ((cols.start + cols.stop) / 2, (top + bottom) / 2)
    return Balls(centre, count)


def read_paddle(frames: np.ndarray, colours: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Paddle (centre x float64 (N,), NaN where none; width int (N,)) of uint8 (N, H, W, 3) frames."""
    colours = nearest_colour(frames) if colours is None else colours
    rows = colours[:, PADDLE_Y:PADDLE_Y + PADDLE_HEIGHT]  # (N, 2, W)
    paddle = (rows == PADDLE).any(axis=1)  # (N, W)
    ball = (rows == BALL).any(axis=1)
    cols = np.arange(FRAME_SIZE)
    centre, width = np.full(len(colours), np.nan), np.zeros(len(colours), np.int64)
    for i in np.flatnonzero(paddle.any(axis=1)):
        left, right = cols[paddle[i]].min(), cols[paddle[i]].max()
        # A ball over an end hides paddle columns: extend the run over the ball's columns beside it.
        while left > 0 and ball[i, left - 1] and right - left + 1 < PADDLE_WIDTH:
            left -= 1
        while right < FRAME_SIZE - 1 and ball[i, right + 1] and right - left + 1 < PADDLE_WIDTH:
            right += 1
        centre[i], width[i] = (left + right + 1) / 2, right - left + 1
    return centre, width


_BAND = slice(BRICK_TOP, BRICK_TOP + BRICK_ROWS * BRICK_PITCH_Y)


def read_bricks(frames: np.ndarray, colours: np.ndarray | None = None) -> np.ndarray:
    """bool (N, 6, 8): the bricks present in uint8 (N, H, W, 3) frames."""
    colours = nearest_colour(frames) if colours is None else colours
    band = colours[:, _BAND].reshape(-1, BRICK_ROWS, BRICK_PITCH_Y, BRICK_COLS, BRICK_PITCH_X)
    cells = band[:, :, :BRICK_HEIGHT, :, :BRICK_WIDTH]  # (N, 6, 3, 8, 7)
    votes = (cells == BRICK_IDS[None, :, None, None, None]).sum(axis=(2, 4))
    return votes * 2 > BRICK_WIDTH * BRICK_HEIGHT


@dataclass
class Objects:
    """Everything `read_objects` reads from (N, H, W, 3) frames."""

    balls: Balls
    paddle: np.ndarray  # (N,) centre x, NaN where none
    paddle_width: np.ndarray  # (N,)
    bricks: np.ndarray  # (N, 6, 8) bool


def read_objects(frames: np.ndarray) -> Objects:
    """Ball, paddle and bricks of uint8 (..., H, W, 3) frames, flattened to (N, ...)."""
    frames = np.asarray(frames).reshape(-1, FRAME_SIZE, FRAME_SIZE, 3)
    colours = nearest_colour(frames)
    centre, width = read_paddle(frames, colours)
    return Objects(read_balls(frames, colours), centre, width, read_bricks(frames, colours))


def sim_ball_centre(sim) -> np.ndarray:
    """The true ball centre (N, 2) as the renderer places it: rounded top-left + 1."""
    return np.stack([np.floor(sim.ball_x + 0.5), np.floor(sim.ball_y + 0.5)], axis=1) + BALL_SIZE / 2


def sim_paddle_centre(sim) -> np.ndarray:
    return np.floor(sim.paddle_x + 0.5) + PADDLE_WIDTH / 2


def classify_events(result: StepResult, after_paddle: np.ndarray) -> np.ndarray:
    """int (N,) index into EVENTS of one step's transition, from the simulator's own flags; `after_paddle` marks the
    games whose previous step was a paddle bounce. "new_game" needs a simulator that starts the next game itself
    (`auto_reset`, the default)."""
    flags = [result.game_over, result.life_lost, result.reward > 0, result.paddle_bounce, after_paddle,
             result.wall_bounce]
    event = np.full(len(result.reward), EVENTS.index("flight"))
    for index in reversed(range(len(flags))):  # the first flag that applies wins
        event = np.where(flags[index], index, event)
    return event
