"""Vectorized, deterministic 64x64 Breakout simulator, scripted policies and gymnasium envs.

`BreakoutSim` runs N independent games at once with numpy. The rules are written so a
scalar TypeScript port can reproduce every frame byte for byte:

* randomness comes only from a per-game mulberry32 PRNG (uint32 arithmetic); a game's
  state is seeded with `fmix32((seed mod 2**32) ^ 0x9E3779B9)` and every draw advances
  only the games that draw, so game i of a vector equals a one-game sim with seed i;
* physics is float64 using only +, -, *, comparisons and min/max, in the order written
  in `BreakoutSim.step`; pixel positions are always `floor(v + 0.5)`.

Library module (no entry point): `from worldmodels.breakout.sim import BreakoutSim`.
Its tests: python -m pytest tests/breakout/test_sim.py; golden traces for
ports: `python -m worldmodels.breakout.golden`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from worldmodels import BREAKOUT_ENV_ID, register_envs  # noqa: F401 (re-exported: sim.register_envs)
from worldmodels.breakout.config import FRAME_SIZE, PolicyConfig

ACTION_NAMES = ("noop", "left", "right")  # the action ids 0, 1, 2
NUM_ACTIONS = len(ACTION_NAMES)
NOOP, LEFT, RIGHT = range(NUM_ACTIONS)

# Bricks: 6 rows x 8 columns; each brick is 7x3 px on an 8x4 px grid (1 px gaps).
BRICK_ROWS, BRICK_COLS = 6, 8
BRICK_WIDTH, BRICK_HEIGHT = 7, 3
BRICK_PITCH_X, BRICK_PITCH_Y = 8, 4
BRICK_TOP = 8

PADDLE_WIDTH, PADDLE_HEIGHT = 10, 2
PADDLE_Y = 58  # top pixel row of the paddle
PADDLE_SPEED = 2.0
PADDLE_MAX_X = float(FRAME_SIZE - PADDLE_WIDTH)

BALL_SIZE = 2
BALL_MAX_X = float(FRAME_SIZE - BALL_SIZE)
BALL_VY = 1.25  # |vy| never changes
BALL_MAX_VX = 1.5
# A ball with tiny |vx| bounces in one column forever; keep some sideways motion.
BALL_MIN_VX = 0.25
# vx after a paddle hit = offset of ball centre from paddle centre (px) * this.
PADDLE_SPIN = 0.25
SERVE_Y = 44.0
START_LIVES = 3

BACKGROUND_COLOR = np.array([0, 0, 0], np.uint8)
# Top to bottom: red, orange, yellow, green, blue, purple.
BRICK_COLORS = np.array(
    [[230, 30, 30], [240, 140, 20], [230, 220, 30], [40, 200, 60], [40, 90, 230], [150, 50, 210]], np.uint8
)
PADDLE_COLOR = np.array([200, 200, 200], np.uint8)
BALL_COLOR = np.array([0, 255, 255], np.uint8)
# Every colour a frame holds: background, the 6 brick rows', paddle, ball (the read-outs' and the palette head's order).
PALETTE = np.concatenate([BACKGROUND_COLOR[None], BRICK_COLORS, PADDLE_COLOR[None], BALL_COLOR[None]])
BACKGROUND, PADDLE, BALL = 0, len(PALETTE) - 2, len(PALETTE) - 1  # their palette indices; brick row r's is r + 1

ENV_ID = BREAKOUT_ENV_ID  # registered by `import worldmodels` (`worldmodels.register_envs`)

_MULBERRY_INCREMENT = np.uint32(0x6D2B79F5)
_SEED_SALT = 0x9E3779B9


def fmix32(values: np.ndarray) -> np.ndarray:
    """murmur3 finalizer over a uint32 array (wrapping arithmetic)."""
    h = np.atleast_1d(np.asarray(values, dtype=np.uint32)).copy()
    h ^= h >> 16
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> 13
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> 16
    return h


def seed_to_state(seeds: Sequence[int] | np.ndarray) -> np.ndarray:
    """Initial mulberry32 state for each integer seed: fmix32((seed mod 2**32) ^ 0x9E3779B9)."""
    reduced = np.array([(int(s) & 0xFFFFFFFF) ^ _SEED_SALT for s in seeds], dtype=np.uint32)
    return fmix32(reduced)


def mulberry32(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One mulberry32 draw per element: returns (next_state, uniform float64 in [0, 1))."""
    a = np.atleast_1d(state) + _MULBERRY_INCREMENT
    t = (a ^ (a >> 15)) * (a | 1)
    t = (t + (t ^ (t >> 7)) * (t | 61)) ^ t
    return a, (t ^ (t >> 14)).astype(np.float64) / 4294967296.0


def _keep_sideways(vx: np.ndarray) -> np.ndarray:
    # -0.0 counts as positive here, exactly like `vx < 0` in JavaScript.
    return np.where(vx < 0.0, np.minimum(vx, -BALL_MIN_VX), np.maximum(vx, BALL_MIN_VX))


def _pixel(v: np.ndarray) -> np.ndarray:
    """The one rounding rule: floor(v + 0.5) (np.round would round half to even)."""
    return np.floor(v + 0.5).astype(np.int64)


def _brick_cell(p: np.ndarray, origin: int, pitch: int, size: int, count: int):
    """(brick index clipped to range, covers a brick) along one axis for ball pixels p, p + 1.

    With 1 px gaps a 2 px ball covers at most one brick per axis.
    """
    first, second = p - origin, p - origin + 1
    first_ok = (first >= 0) & (first < pitch * count) & (first % pitch < size)
    second_ok = (second >= 0) & (second < pitch * count) & (second % pitch < size)
    cell = np.where(first_ok, first // pitch, second // pitch)
    return np.clip(cell, 0, count - 1), first_ok | second_ok


# Rendering works on byte rows ([N, 64, 64 * 3]) so numpy's inner loops run over long
# contiguous runs instead of 3-channel pixels.
_ROW_BYTES = FRAME_SIZE * 3
_BAND_SLICE = slice(BRICK_TOP, BRICK_TOP + BRICK_ROWS * BRICK_PITCH_Y)
_CELL_Y, _CELL_X = np.mgrid[: BRICK_ROWS * BRICK_PITCH_Y, :FRAME_SIZE]
_ON_BRICK = (_CELL_Y % BRICK_PITCH_Y < BRICK_HEIGHT) & (_CELL_X % BRICK_PITCH_X < BRICK_WIDTH)
# The brick band (image rows from BRICK_TOP) with every brick present; gaps are background.
_BRICK_BAND = np.where(_ON_BRICK[..., None], BRICK_COLORS[_CELL_Y // BRICK_PITCH_Y], BACKGROUND_COLOR)
_BRICK_BAND_BYTES = _BRICK_BAND.reshape(-1, _ROW_BYTES)


_BYTE_X = np.arange(_ROW_BYTES) // 3  # pixel column of each byte of a row
_PADDLE_ROW = np.tile(PADDLE_COLOR, FRAME_SIZE)
# Row offset, flat byte offset (from the top-left byte) and channel of each ball byte.
_BALL_DY, _BALL_DX, _BALL_CHANNEL = (a.ravel() for a in np.indices((BALL_SIZE, BALL_SIZE, 3)))
_BALL_BYTES = (_BALL_DY * FRAME_SIZE + _BALL_DX) * 3 + _BALL_CHANNEL


@dataclass
class StepResult:
    """Per-game outcome of one `BreakoutSim.step` (arrays of length N).

    reward: int64 bricks hit this step (0 or 1). life_lost: bool, the ball fell out (and was
    served again). game_over: bool, that was the last life; with auto_reset the game has
    already been replaced by a fresh one (new bricks, score 0, 3 lives) in the returned state.
    wall_bounce: bool, the ball reflected off the left, right or top wall. paddle_bounce:
    bool, the ball bounced off the paddle.
    """

    reward: np.ndarray
    life_lost: np.ndarray
    game_over: np.ndarray
    wall_bounce: np.ndarray
    paddle_bounce: np.ndarray


class BreakoutSim:
    """N independent Breakout games advanced together.

    State (public arrays, length N, safe to edit in place): paddle_x (left edge, float),
    ball_x/ball_y (top-left, float), ball_vx/ball_vy, bricks (bool [N, 6, 8]), score, lives
    (int64), rng_state (uint32 mulberry32 state). With auto_reset=False a game that ran out
    of lives stays over (lives 0, ball below the screen) until `reset` is called for it.
    """

    _STATE_KEYS = ("paddle_x", "ball_x", "ball_y", "ball_vx", "ball_vy", "bricks", "score", "lives", "rng_state")

    def __init__(self, seeds: Sequence[int] | np.ndarray, auto_reset: bool = True):
        self.rng_state = seed_to_state(seeds)
        n = len(self.rng_state)
        if n == 0:
            raise ValueError("need at least one seed")
        self.auto_reset = auto_reset
        self.paddle_x = np.zeros(n)
        self.ball_x, self.ball_y = np.zeros(n), np.zeros(n)
        self.ball_vx, self.ball_vy = np.zeros(n), np.zeros(n)
        self.bricks = np.ones((n, BRICK_ROWS, BRICK_COLS), bool)
        self.score = np.zeros(n, np.int64)
        self.lives = np.zeros(n, np.int64)
        self._init_canvas()
        self.reset()

    def _init_canvas(self) -> None:
        # Background + bricks as last drawn; render() redraws only games whose bricks changed.
        n = self.num_games
        self._games = np.arange(n)
        self._canvas = np.zeros((n, FRAME_SIZE, _ROW_BYTES), np.uint8)
        self._drawn_bricks = np.zeros((n, BRICK_ROWS, BRICK_COLS), bool)

    @property
    def num_games(self) -> int:
        return len(self.rng_state)

    def _draw(self, mask: np.ndarray) -> np.ndarray:
        """Uniform [0, 1) per game; only games in `mask` advance their PRNG."""
        next_state, u = mulberry32(self.rng_state)
        self.rng_state = np.where(mask, next_state, self.rng_state)
        return u

    def _as_mask(self, mask) -> np.ndarray:
        if mask is None:
            return np.ones(self.num_games, bool)
        mask = np.asarray(mask, bool)
        if mask.shape != (self.num_games,):
            raise ValueError(f"mask must have shape ({self.num_games},), got {mask.shape}")
        return mask

    def reset(self, mask=None) -> None:
        """Start fresh games where `mask` (default: all), continuing each game's PRNG.

        Draw order per game: paddle position, then the serve.
        """
        mask = self._as_mask(mask)
        if not mask.any():  # pure speed shortcut: no game draws, nothing changes
            return
        u = self._draw(mask)
        self.paddle_x = np.where(mask, np.floor(u * (PADDLE_MAX_X + 1.0)), self.paddle_x)
        self.bricks[mask] = True
        self.score[mask] = 0
        self.lives[mask] = START_LIVES
        self._serve(mask)

    def _serve(self, mask: np.ndarray) -> None:
        """Put the ball above the paddle centre, moving up with a random vx (one draw)."""
        if not mask.any():
            return
        u = self._draw(mask)
        vx = _keep_sideways((u * 2.0 - 1.0) * BALL_MAX_VX)
        self.ball_x = np.where(mask, self.paddle_x + (PADDLE_WIDTH / 2 - BALL_SIZE / 2), self.ball_x)
        self.ball_y = np.where(mask, SERVE_Y, self.ball_y)
        self.ball_vx = np.where(mask, vx, self.ball_vx)
        self.ball_vy = np.where(mask, -BALL_VY, self.ball_vy)

    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every game one frame. `actions`: int array [N] of NOOP/LEFT/RIGHT."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_games,) or ((actions < 0) | (actions >= NUM_ACTIONS)).any():
            raise ValueError(f"actions must be {self.num_games} values in [0, {NUM_ACTIONS})")
        # 1. Paddle.
        move = np.where(actions == RIGHT, PADDLE_SPEED, np.where(actions == LEFT, -PADDLE_SPEED, 0.0))
        self.paddle_x = np.minimum(np.maximum(self.paddle_x + move, 0.0), PADDLE_MAX_X)
        # 2. Ball moves, then reflects off the left/right/top walls (mirror the overshoot).
        x, y = self.ball_x + self.ball_vx, self.ball_y + self.ball_vy
        vx, vy = self.ball_vx, self.ball_vy
        off_left, off_right, off_top = x < 0.0, x > BALL_MAX_X, y < 0.0
        x = np.where(off_left, -x, np.where(off_right, 2.0 * BALL_MAX_X - x, x))
        vx = np.where(off_left | off_right, -vx, vx)
        y = np.where(off_top, -y, y)
        vy = np.where(off_top, -vy, vy)
        # 3. Bricks: the (single) brick under the ball's pixels is removed and vy flips.
        px, py = _pixel(x), _pixel(y)
        row, row_ok = _brick_cell(py, BRICK_TOP, BRICK_PITCH_Y, BRICK_HEIGHT, BRICK_ROWS)
        col, col_ok = _brick_cell(px, 0, BRICK_PITCH_X, BRICK_WIDTH, BRICK_COLS)
        hit = row_ok & col_ok & self.bricks[self._games, row, col]
        self.bricks[self._games[hit], row[hit], col[hit]] = False
        vy = np.where(hit, -vy, vy)
        # 4. Paddle: a falling ball whose pixels touch the paddle's top row bounces up
        #    from on top of it, with vx set by where it hit.
        paddle_px = _pixel(self.paddle_x)
        touches_row = (py + BALL_SIZE - 1 >= PADDLE_Y) & (py <= PADDLE_Y)
        touches_col = (px + BALL_SIZE - 1 >= paddle_px) & (px <= paddle_px + PADDLE_WIDTH - 1)
        on_paddle = (vy > 0.0) & touches_row & touches_col
        offset = (x + BALL_SIZE / 2) - (self.paddle_x + PADDLE_WIDTH / 2)
        spin_vx = _keep_sideways(np.minimum(np.maximum(offset * PADDLE_SPIN, -BALL_MAX_VX), BALL_MAX_VX))
        self.ball_vx = np.where(on_paddle, spin_vx, vx)
        self.ball_vy = np.where(on_paddle, -vy, vy)
        self.ball_y = np.where(on_paddle, float(PADDLE_Y - BALL_SIZE), y)
        self.ball_x = x
        # 5. A ball fully below the frame costs a life; serve again or end the game.
        life_lost = (py >= FRAME_SIZE) & (self.lives > 0)
        self.score += hit
        self.lives -= life_lost
        game_over = life_lost & (self.lives == 0)
        self._serve(life_lost & ~game_over)
        if self.auto_reset:
            self.reset(game_over)
        # 6. A cleared wall is rebuilt.
        if hit.any():
            self.bricks[~self.bricks.any(axis=(1, 2))] = True
        return StepResult(hit.astype(np.int64), life_lost, game_over, off_left | off_right | off_top, on_paddle)

    def render(self) -> np.ndarray:
        """Current frames, uint8 [N, 64, 64, 3] (a new array)."""
        stale = np.flatnonzero((self.bricks != self._drawn_bricks).any(axis=(1, 2)))
        if len(stale):
            bricks = self._drawn_bricks[stale] = self.bricks[stale]
            present = np.repeat(np.repeat(bricks, BRICK_PITCH_Y, axis=1), BRICK_PITCH_X * 3, axis=2)
            self._canvas[stale, _BAND_SLICE] = _BRICK_BAND_BYTES * present
        frames = self._canvas.copy()
        # Paddle rows hold nothing else, so they are simply overwritten.
        left = _pixel(self.paddle_x)[:, None]
        on_paddle = (_BYTE_X >= left) & (_BYTE_X < left + PADDLE_WIDTH)
        frames[:, PADDLE_Y : PADDLE_Y + PADDLE_HEIGHT] = (_PADDLE_ROW * on_paddle)[:, None]
        # The ball can be partly or fully below the frame while it is being lost.
        ball_x, ball_y = _pixel(self.ball_x)[:, None], _pixel(self.ball_y)[:, None]
        index = (ball_y * FRAME_SIZE + ball_x) * 3 + _BALL_BYTES
        visible = ball_y + _BALL_DY < FRAME_SIZE
        games = np.broadcast_to(self._games[:, None], index.shape)
        channel = np.broadcast_to(_BALL_CHANNEL, index.shape)
        frames.reshape(self.num_games, -1)[games[visible], index[visible]] = BALL_COLOR[channel[visible]]
        return frames.reshape(-1, FRAME_SIZE, FRAME_SIZE, 3)

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of all state arrays (everything needed to resume the exact streams)."""
        return {k: getattr(self, k).copy() for k in self._STATE_KEYS}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `get_state` dict (the number of games may change)."""
        n = len(state["rng_state"])
        for k in self._STATE_KEYS:
            value = np.array(state[k], dtype=getattr(self, k).dtype)
            if len(value) != n:
                raise ValueError(f"state[{k!r}] has {len(value)} games, expected {n}")
            setattr(self, k, value)
        self._init_canvas()

    def select(self, idx) -> BreakoutSim:
        """A new sim holding copies of the games at `idx` (int indices or bool mask)."""
        sub = BreakoutSim([0], auto_reset=self.auto_reset)
        sub.set_state({k: v[idx] for k, v in self.get_state().items()})
        return sub


class TrackerPolicy:
    """Moves the paddle under the ball, with configurable mistakes.

    Its randomness comes from the numpy Generator it is given (actions get recorded, so
    they need not be reproducible by a port). Each call draws a fixed number of values,
    so a seeded policy on a seeded sim is fully deterministic. Typical loop:

        mask = policy.maybe_reset(sim)   # optional mid-game restarts
        result = sim.step(policy.act(sim))
    """

    def __init__(self, config: PolicyConfig | None = None, rng: np.random.Generator | int | None = None):
        self.config = config or PolicyConfig()
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._missing: np.ndarray | None = None
        self._seen_lives: np.ndarray | None = None

    def act(self, sim: BreakoutSim) -> np.ndarray:
        """Actions int64 [N] for the sim's current state."""
        n, cfg = sim.num_games, self.config
        if self._seen_lives is None or len(self._seen_lives) != n:
            self._seen_lives = np.full(n, -1, np.int64)
            self._missing = np.zeros(n, bool)
        # A change in lives means a new serve (or a new game): re-decide whether to miss it.
        new_life = sim.lives != self._seen_lives
        self._missing = np.where(new_life, self.rng.random(n) < cfg.miss_rate, self._missing)
        self._seen_lives = sim.lives.copy()
        offset = (sim.ball_x + BALL_SIZE / 2) - (sim.paddle_x + PADDLE_WIDTH / 2)
        # The dead zone stops the paddle jittering around a ball it already covers.
        toward = np.where(offset > 1.0, RIGHT, np.where(offset < -1.0, LEFT, NOOP))
        away = np.where(offset >= 0.0, LEFT, RIGHT)
        bad = self._missing | (self.rng.random(n) < cfg.bad_move_rate)
        actions = np.where(bad, away, toward)
        random_action = self.rng.random(n) < cfg.random_action_rate
        return np.where(random_action, self.rng.integers(0, NUM_ACTIONS, n), actions).astype(np.int64)

    def maybe_reset(self, sim: BreakoutSim) -> np.ndarray:
        """Reset each game with probability reset_rate; returns the bool mask of reset games."""
        mask = self.rng.random(sim.num_games) < self.config.reset_rate
        sim.reset(mask)
        if self._seen_lives is not None and len(self._seen_lives) == sim.num_games:
            self._seen_lives[mask] = -1  # a restarted game is a new serve even at 3 lives
        return mask


def _frame_space() -> gymnasium.spaces.Box:
    return gymnasium.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), np.uint8)


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"unsupported render_mode {render_mode!r}")


class BreakoutEnv(gymnasium.Env):
    """Single-game gymnasium env: uint8 64x64x3 frames, Discrete(3), reward = bricks hit.

    Terminates when the last life is lost. `reset(seed=s)` starts the game of seed s;
    `reset()` without a seed starts the next game of the current PRNG stream.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, render_mode: str | None = None):
        _check_render_mode(render_mode)
        self.render_mode = render_mode
        self.observation_space = _frame_space()
        self.action_space = gymnasium.spaces.Discrete(NUM_ACTIONS)
        self._sim: BreakoutSim | None = None
        self._frame = np.zeros((FRAME_SIZE, FRAME_SIZE, 3), np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or self._sim is None:
            game_seed = seed if seed is not None else int(self.np_random.integers(2**32))
            self._sim = BreakoutSim([game_seed], auto_reset=False)
        else:
            self._sim.reset()
        self._frame = self._sim.render()[0]
        return self._frame.copy(), self._info()

    def step(self, action):
        if self._sim is None:
            raise RuntimeError("call reset() before step()")
        result = self._sim.step(np.array([int(action)]))
        self._frame = self._sim.render()[0]
        info = self._info() | {"life_lost": bool(result.life_lost[0])}
        return self._frame.copy(), float(result.reward[0]), bool(result.game_over[0]), False, info

    def render(self):
        return self._frame.copy() if self.render_mode == "rgb_array" else None

    def _info(self) -> dict:
        return {"score": int(self._sim.score[0]), "lives": int(self._sim.lives[0])}


class BreakoutVectorEnv(VectorEnv):
    """`num_envs` games in one BreakoutSim, with gymnasium's next-step autoreset.

    The step after a game terminates (or is truncated by max_episode_steps) ignores its
    action and returns the first frame of that game's next game with reward 0.
    `reset(seed=s)` seeds game i with s + i (or a list of seeds); reset(options=
    {"reset_mask": mask}) restarts only the masked games.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, max_episode_steps: int | None = None):
        _check_render_mode(render_mode)
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = _frame_space()
        self.single_action_space = gymnasium.spaces.Discrete(NUM_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._sim: BreakoutSim | None = None
        self._needs_reset = np.zeros(num_envs, bool)
        self._episode_steps = np.zeros(num_envs, np.int64)
        self._frames = np.zeros(self.observation_space.shape, np.uint8)

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict | None = None):
        super().reset(seed=None if seed is None else int(np.atleast_1d(seed)[0]))
        mask = (options or {}).get("reset_mask")
        if seed is not None or self._sim is None:
            if seed is None:
                seeds = self.np_random.integers(2**32, size=self.num_envs)
            elif np.ndim(seed) == 0:
                seeds = [int(seed) + i for i in range(self.num_envs)]
            else:
                seeds = list(seed)
            self._sim = BreakoutSim(seeds, auto_reset=False)
            mask = np.ones(self.num_envs, bool)
        else:
            mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
            self._sim.reset(mask)
        self._needs_reset[mask] = False
        self._episode_steps[mask] = 0
        self._frames = self._sim.render()
        return self._frames.copy(), self._info()

    def step(self, actions):
        if self._sim is None:
            raise RuntimeError("call reset() before step()")
        restart = self._needs_reset
        rng_before = self._sim.rng_state.copy()
        result = self._sim.step(np.asarray(actions, np.int64))
        # Restarted games start from the stream position they had, as if never stepped.
        self._sim.rng_state = np.where(restart, rng_before, self._sim.rng_state)
        self._sim.reset(restart)
        self._episode_steps = np.where(restart, 0, self._episode_steps + 1)
        terminated = result.game_over & ~restart
        truncated = np.zeros(self.num_envs, bool)
        if self.max_episode_steps is not None:
            truncated = (self._episode_steps >= self.max_episode_steps) & ~terminated & ~restart
        self._needs_reset = terminated | truncated
        reward = np.where(restart, 0, result.reward).astype(np.float64)
        self._frames = self._sim.render()
        return self._frames.copy(), reward, terminated, truncated, self._info()

    def render(self):
        return tuple(self._frames.copy()) if self.render_mode == "rgb_array" else None

    def _info(self) -> dict:
        return {"score": self._sim.score.copy(), "lives": self._sim.lives.copy()}
