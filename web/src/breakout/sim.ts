// The Breakout simulator: a scalar, one-game port of worldmodels/breakout/sim.py (BreakoutSim with auto-reset).
// It must reproduce the Python frames byte for byte: uint32 PRNG arithmetic with Math.imul and >>> 0, float64
// physics in the same order as BreakoutSim.step, pixel positions as floor(v + 0.5).
// Tested by tests/breakout_sim.test.ts against the golden traces in ../tests/golden/breakout_traces.json.

export const FRAME_SIZE = 64;
export const NOOP = 0;
export const LEFT = 1;
export const RIGHT = 2;
export const NUM_ACTIONS = 3;

const BRICK_ROWS = 6;
const BRICK_COLS = 8;
const BRICK_WIDTH = 7;
const BRICK_HEIGHT = 3;
const BRICK_PITCH_X = 8;
const BRICK_PITCH_Y = 4;
const BRICK_TOP = 8;

const PADDLE_WIDTH = 10;
const PADDLE_HEIGHT = 2;
const PADDLE_Y = 58;
const PADDLE_SPEED = 2.0;
const PADDLE_MAX_X = FRAME_SIZE - PADDLE_WIDTH;

const BALL_SIZE = 2;
const BALL_MAX_X = FRAME_SIZE - BALL_SIZE;
const BALL_VY = 1.25;
const BALL_MAX_VX = 1.5;
const BALL_MIN_VX = 0.25;
const PADDLE_SPIN = 0.25;
const SERVE_Y = 44.0;
const START_LIVES = 3;

const BRICK_COLORS = [[230, 30, 30], [240, 140, 20], [230, 220, 30], [40, 200, 60], [40, 90, 230], [150, 50, 210]];
const PADDLE_COLOR = [200, 200, 200];
const BALL_COLOR = [0, 255, 255];

const MULBERRY_INCREMENT = 0x6d2b79f5;
const SEED_SALT = 0x9e3779b9;

/** murmur3 finalizer on one uint32. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Initial mulberry32 state of an integer seed: fmix32((seed mod 2**32) ^ 0x9E3779B9). */
export function seedToState(seed: number): number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer (got ${seed})`);
  return fmix32((seed >>> 0) ^ SEED_SALT);
}

/** One mulberry32 draw: [next state, uniform float64 in [0, 1)]. */
export function mulberry32(state: number): [number, number] {
  const a = (state + MULBERRY_INCREMENT) >>> 0;
  let t = Math.imul(a ^ (a >>> 15), a | 1);
  t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
  return [a, ((t ^ (t >>> 14)) >>> 0) / 4294967296];
}

/** The one rounding rule of the simulator. */
const pixel = (v: number): number => Math.floor(v + 0.5);

/** -0.0 counts as positive, as in the Python (`vx < 0`). */
const keepSideways = (vx: number): number => (vx < 0 ? Math.min(vx, -BALL_MIN_VX) : Math.max(vx, BALL_MIN_VX));

/** Brick index along one axis covered by ball pixels p and p + 1, or -1 (1 px gaps: at most one brick). */
function brickCell(p: number, origin: number, pitch: number, size: number, count: number): number {
  for (const q of [p - origin, p - origin + 1]) {
    if (q >= 0 && q < pitch * count && q % pitch < size) return Math.floor(q / pitch);
  }
  return -1;
}

/** FNV-1a 32-bit hash of a byte array, as 8 lowercase hex digits (the golden traces' frame hash). */
export function fnv1a32(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

export interface StepResult {
  reward: number; // bricks hit this step (0 or 1)
  lifeLost: boolean; // the ball fell out
  gameOver: boolean; // that was the last life; the game has already restarted (new bricks, score 0, 3 lives)
  score: number;
  lives: number;
}

/** One Breakout game, equal to game 0 of `BreakoutSim([seed])` (auto_reset=True). */
export class BreakoutGame {
  paddleX = 0; // left edge
  ballX = 0; // top-left
  ballY = 0;
  ballVx = 0;
  ballVy = 0;
  bricks = new Uint8Array(BRICK_ROWS * BRICK_COLS); // row-major, 1 = present
  score = 0;
  lives = 0;
  rngState: number;

  constructor(seed: number) {
    this.rngState = seedToState(seed);
    this.reset();
  }

  private draw(): number {
    const [next, u] = mulberry32(this.rngState);
    this.rngState = next;
    return u;
  }

  /** A fresh game continuing this game's PRNG. Draw order: paddle position, then the serve. */
  reset(): void {
    this.paddleX = Math.floor(this.draw() * (PADDLE_MAX_X + 1.0));
    this.bricks.fill(1);
    this.score = 0;
    this.lives = START_LIVES;
    this.serve();
  }

  private serve(): void {
    const u = this.draw();
    this.ballVx = keepSideways((u * 2.0 - 1.0) * BALL_MAX_VX);
    this.ballX = this.paddleX + (PADDLE_WIDTH / 2 - BALL_SIZE / 2);
    this.ballY = SERVE_Y;
    this.ballVy = -BALL_VY;
  }

  step(action: number): StepResult {
    if (action !== NOOP && action !== LEFT && action !== RIGHT) {
      throw new RangeError(`action must be 0 (noop), 1 (left) or 2 (right), got ${action}`);
    }
    // 1. Paddle.
    const move = action === RIGHT ? PADDLE_SPEED : action === LEFT ? -PADDLE_SPEED : 0.0;
    this.paddleX = Math.min(Math.max(this.paddleX + move, 0.0), PADDLE_MAX_X);
    // 2. Ball moves, then reflects off the left/right/top walls.
    let x = this.ballX + this.ballVx;
    let y = this.ballY + this.ballVy;
    let vx = this.ballVx;
    let vy = this.ballVy;
    if (x < 0.0) {
      x = -x;
      vx = -vx;
    } else if (x > BALL_MAX_X) {
      x = 2.0 * BALL_MAX_X - x;
      vx = -vx;
    }
    if (y < 0.0) {
      y = -y;
      vy = -vy;
    }
    // 3. Bricks: the brick under the ball's pixels is removed and vy flips.
    const px = pixel(x);
    const py = pixel(y);
    const row = brickCell(py, BRICK_TOP, BRICK_PITCH_Y, BRICK_HEIGHT, BRICK_ROWS);
    const col = brickCell(px, 0, BRICK_PITCH_X, BRICK_WIDTH, BRICK_COLS);
    const hit = row >= 0 && col >= 0 && this.bricks[row * BRICK_COLS + col] === 1;
    if (hit) {
      this.bricks[row * BRICK_COLS + col] = 0;
      vy = -vy;
    }
    // 4. Paddle: a falling ball touching the paddle's top row bounces up with vx set by where it hit.
    const paddlePx = pixel(this.paddleX);
    const touchesRow = py + BALL_SIZE - 1 >= PADDLE_Y && py <= PADDLE_Y;
    const touchesCol = px + BALL_SIZE - 1 >= paddlePx && px <= paddlePx + PADDLE_WIDTH - 1;
    if (vy > 0.0 && touchesRow && touchesCol) {
      const offset = (x + BALL_SIZE / 2) - (this.paddleX + PADDLE_WIDTH / 2);
      this.ballVx = keepSideways(Math.min(Math.max(offset * PADDLE_SPIN, -BALL_MAX_VX), BALL_MAX_VX));
      this.ballVy = -vy;
      this.ballY = PADDLE_Y - BALL_SIZE;
    } else {
      this.ballVx = vx;
      this.ballVy = vy;
      this.ballY = y;
    }
    this.ballX = x;
    // 5. A ball fully below the frame costs a life; serve again or start a new game.
    const lifeLost = py >= FRAME_SIZE && this.lives > 0;
    if (hit) this.score += 1;
    if (lifeLost) this.lives -= 1;
    const gameOver = lifeLost && this.lives === 0;
    if (lifeLost && !gameOver) this.serve();
    if (gameOver) this.reset();
    // 6. A cleared wall is rebuilt.
    if (hit && this.bricks.every((b) => b === 0)) this.bricks.fill(1);
    return { reward: hit ? 1 : 0, lifeLost, gameOver, score: this.score, lives: this.lives };
  }

  /** The current frame: a new uint8 array, row-major HWC (64 x 64 x 3). */
  render(): Uint8Array {
    const frame = new Uint8Array(FRAME_SIZE * FRAME_SIZE * 3);
    const put = (px: number, py: number, rgb: number[]): void => {
      frame.set(rgb, (py * FRAME_SIZE + px) * 3);
    };
    for (let r = 0; r < BRICK_ROWS; r++) {
      for (let c = 0; c < BRICK_COLS; c++) {
        if (!this.bricks[r * BRICK_COLS + c]) continue;
        for (let dy = 0; dy < BRICK_HEIGHT; dy++) {
          for (let dx = 0; dx < BRICK_WIDTH; dx++) put(c * BRICK_PITCH_X + dx, BRICK_TOP + r * BRICK_PITCH_Y + dy, BRICK_COLORS[r]);
        }
      }
    }
    const left = pixel(this.paddleX);
    for (let dy = 0; dy < PADDLE_HEIGHT; dy++) {
      for (let px = Math.max(left, 0); px < Math.min(left + PADDLE_WIDTH, FRAME_SIZE); px++) put(px, PADDLE_Y + dy, PADDLE_COLOR);
    }
    // The ball can be partly or fully below the frame while it is being lost.
    const bx = pixel(this.ballX);
    const by = pixel(this.ballY);
    for (let dy = 0; dy < BALL_SIZE; dy++) {
      if (by + dy >= FRAME_SIZE) continue;
      for (let dx = 0; dx < BALL_SIZE; dx++) put(bx + dx, by + dy, BALL_COLOR);
    }
    return frame;
  }
}
