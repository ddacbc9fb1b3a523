// Draws a Flappy frame with the game's own sprites, served by worldmodels/play.py from the installed
// flappy-bird-gymnasium (/sprites/index.json names them by role; they are never copied into this repository). The
// placement follows the env's renderer (flappy_bird_env.py `_draw_surface`, rgb_array mode): background at (0, 0);
// each pipe pair at its x, the upper sprite flipped with its bottom at the gap's top (gap_y - pipe_gap / 2), the
// lower one from the gap's bottom; the base at (ground x, ground_y); the score digits centred at 10% of the height
// (the env draws them in its human mode); the bird, rotated by its visible rotation, with its bounding box's top-left
// at (bird_x, bird_y), turned exactly as pygame.transform.rotate turns it (rotatePixels). Positions are truncated to
// whole pixels, as pygame's blit does.
// The tokens do not hold the bird's rotation, wing frame or the base's scroll: PoseTracker replays the env's rules for
// them from the frames and the actions (steps since the start, flaps). Every size comes from the token spec's
// geometry and the sprites themselves. Pixel-compared with the env's own rendering by web/e2e/browser.mjs (reference
// frames from tests/web/web_fixtures.py write_flappy_sprites).
import type { FrameState, Geometry } from "./spec";

export const SPRITES_URL = "/sprites/";
// flappy_bird_gymnasium/envs/constants.py: PLAYER_VEL_ROT, PLAYER_ROT_THR; the flap rotation and the wing cycle are
// flappy_bird_env.py's (`_player_rot = 45`, `cycle([0, 1, 2, 1])` advanced every 3rd step).
const ROTATION_PER_STEP = 3;
const ROTATION_SHOWN_MAX = 20;
const ROTATION_AFTER_FLAP = 45;
const ROTATION_MIN = -90;
const WING_CYCLE = [0, 1, 2, 1];
const WING_EVERY = 3;
const SCORE_Y = 0.1; // of the screen height
const DEATH = "rgb(220, 30, 30)"; // the schematic renderer's done border (render.ts)
const DEATH_BORDER = 3;

export interface Sprites {
  background: ImageBitmap;
  base: ImageBitmap;
  pipe: ImageBitmap; // the lower pipe; the upper one is it flipped
  bird: ImageBitmap[]; // wing up, mid, down (the env's player_idx)
  digits: ImageBitmap[]; // 0-9
}

/** What the tokens leave out: the bird's rotation (degrees, counter-clockwise) and wing frame, the base's x, the
 * score (null: not drawn, as in the env's rgb_array frames). */
export interface Pose {
  rotation: number;
  wing: number;
  groundX: number;
  score: number | null;
}

/** The sprites of /sprites/index.json; rejects with a one-line reason (e.g. "/sprites/index.json: HTTP 404"). */
export async function loadSprites(base = SPRITES_URL): Promise<Sprites> {
  const get = async (name: string) => {
    const res = await fetch(base + name);
    if (!res.ok) throw new Error(`${base}${name}: HTTP ${res.status}`);
    return res;
  };
  const index = await (await get("index.json")).json();
  const image = async (name: unknown) => {
    if (typeof name !== "string") throw new Error(`${base}index.json: ${JSON.stringify(name)} is not a file name`);
    return createImageBitmap(await (await get(name)).blob());
  };
  const list = (names: unknown, count: number) => {
    if (!Array.isArray(names) || names.length !== count) throw new Error(`${base}index.json: expected ${count} names`);
    return Promise.all(names.map(image));
  };
  const [background, ground, pipe, bird, digits] = await Promise.all([image(index.background), image(index.base),
    image(index.pipe), list(index.bird, 3), list(index.digits, 10)]);
  return { background, base: ground, pipe, bird, digits };
}

/** The env's rules for what the tokens leave out, replayed step by step from the start of an episode. */
export class PoseTracker {
  private steps = 0;
  private rotation = ROTATION_AFTER_FLAP;
  private wing = 0;
  private wingTurns = 0;
  private score = 0;
  private crossed = 0; // pipes that passed the bird in the last step: the env counts them one step later

  constructor(private readonly g: Geometry) {}

  /** A new episode (the env's reset). */
  reset(): void {
    this.steps = this.wingTurns = this.wing = this.score = this.crossed = 0;
    this.rotation = ROTATION_AFTER_FLAP;
  }

  /** One step from `before` to `after` with `action` (1 = flap). */
  step(before: FrameState, after: FrameState, action: number): void {
    this.steps += 1;
    if (this.steps % WING_EVERY === 0) this.wing = WING_CYCLE[this.wingTurns++ % WING_CYCLE.length];
    if (this.rotation > ROTATION_MIN) this.rotation -= ROTATION_PER_STEP;
    if (action === 1 && before.birdY > -2 * this.g.bird_height) this.rotation = ROTATION_AFTER_FLAP; // the env's flap rule
    this.score += this.crossed;
    this.crossed = passed(this.g, before, after);
  }

  /** The pose now, for a base sprite `baseWidth` px wide (it scrolls by the pipe speed, wrapping at its overhang). */
  pose(baseWidth: number): Pose {
    const overhang = Math.max(1, baseWidth - this.g.screen_width);
    return { rotation: Math.min(this.rotation, ROTATION_SHOWN_MAX), wing: this.wing,
      groundX: 0 - ((this.g.pipe_speed * this.steps) % overhang), score: this.score };
  }
}

/** Pipes whose centre passed the bird's centre between two frames (slot 0 takes slot 1's pipe on a respawn). The env
 * scores a pipe in the step after its centre reaches the bird's (`pipe_mid <= player_mid < pipe_mid + 4`, on the
 * positions before the move); a crossing, unlike that 4 px window, is seen from bin-centre positions too. */
function passed(g: Geometry, before: FrameState, after: FrameState): number {
  const line = g.bird_x + g.bird_width / 2 - g.pipe_width / 2; // a pipe's x when its centre is at the bird's centre
  let count = 0;
  after.pipes.forEach((pipe, slot) => {
    const earlier = before.pipes[after.respawn ? slot + 1 : slot];
    if (pipe.visible && earlier?.visible && earlier.x > line && pipe.x <= line) count += 1;
  });
  return count;
}

/** Draw `state` with the sprites onto a canvas the size of the game's screen. */
export function drawSprites(ctx: CanvasRenderingContext2D, g: Geometry, state: FrameState, s: Sprites, pose: Pose): void {
  const at = Math.trunc; // pygame's blit position of a float
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(s.background, 0, 0);
  const pipeHeight = s.pipe.height;
  for (const pipe of state.pipes) {
    if (!pipe.visible) continue;
    const x = at(pipe.x);
    const top = at(pipe.gapY - g.pipe_gap / 2 - pipeHeight); // the upper sprite's top edge
    ctx.save();
    ctx.translate(x, top + pipeHeight);
    ctx.scale(1, -1);
    ctx.drawImage(s.pipe, 0, 0);
    ctx.restore();
    ctx.drawImage(s.pipe, x, at(pipe.gapY + g.pipe_gap / 2));
  }
  ctx.drawImage(s.base, at(pose.groundX), at(g.ground_y));
  if (pose.score !== null) {
    const digits = [...String(pose.score)].map((d) => s.digits[Number(d)]);
    let x = (g.screen_width - digits.reduce((w, d) => w + d.width, 0)) / 2;
    for (const d of digits) {
      ctx.drawImage(d, at(x), at(g.screen_height * SCORE_Y));
      x += d.width;
    }
  }
  drawBird(ctx, s.bird[pose.wing] ?? s.bird[0], g.bird_x, at(state.birdY), pose.rotation);
  if (state.done) {
    const { width, height } = ctx.canvas;
    ctx.fillStyle = DEATH;
    ctx.fillRect(0, 0, width, DEATH_BORDER);
    ctx.fillRect(0, height - DEATH_BORDER, width, DEATH_BORDER);
    ctx.fillRect(0, 0, DEATH_BORDER, height);
    ctx.fillRect(width - DEATH_BORDER, 0, DEATH_BORDER, height);
  }
}

/** pygame.transform.rotate(bird, degrees) blitted with its top-left at (x, y). */
function drawBird(ctx: CanvasRenderingContext2D, bird: ImageBitmap, x: number, y: number, degrees: number): void {
  let turns = rotations.get(bird);
  if (!turns) rotations.set(bird, (turns = new Map()));
  let image = turns.get(degrees);
  if (!image) {
    const src = el(bird.width, bird.height);
    src.drawImage(bird, 0, 0);
    const out = rotatePixels(src.getImageData(0, 0, bird.width, bird.height), degrees);
    const dst = el(out.width, out.height);
    dst.putImageData(new ImageData(out.data, out.width, out.height), 0, 0);
    turns.set(degrees, (image = dst.canvas));
  }
  ctx.drawImage(image, x, y);
}

const rotations = new WeakMap<ImageBitmap, Map<number, HTMLCanvasElement>>(); // each bird frame's turned copies

function el(width: number, height: number): CanvasRenderingContext2D {
  return Object.assign(document.createElement("canvas"), { width, height }).getContext("2d", { willReadFrequently: true })!;
}

export interface Pixels {
  data: Uint8ClampedArray<ArrayBuffer>; // RGBA, row-major
  width: number;
  height: number;
}

/** pygame.transform.rotate, pixel for pixel (pygame's transform.c): `degrees` counter-clockwise, nearest source pixel
 * in 16.16 fixed point, into a box of the truncated rotated size; outside the source is transparent. Multiples of
 * 90 degrees are exact quarter turns. Pinned to pygame by web/tests/flappy_sprites.test.ts. */
export function rotatePixels(src: Pixels, degrees: number): Pixels {
  const { width: w, height: h, data } = src;
  if (degrees % 90 === 0) return quarterTurns(src, (((degrees / 90) % 4) + 4) % 4);
  const rad = degrees * 0.01745329251994329;
  const sin = Math.sin(rad), cos = Math.cos(rad);
  const [cx, cy, sx, sy] = [cos * w, cos * h, sin * w, sin * h];
  const nw = Math.trunc(Math.max(Math.abs(cx + sy), Math.abs(cx - sy), Math.abs(-cx + sy), Math.abs(-cx - sy)));
  const nh = Math.trunc(Math.max(Math.abs(sx + cy), Math.abs(sx - cy), Math.abs(-sx + cy), Math.abs(-sx - cy)));
  const out = new Uint8ClampedArray(nw * nh * 4);
  const centre = Math.trunc(nh / 2);
  const isin = Math.trunc(sin * 65536), icos = Math.trunc(cos * 65536);
  const xd = (w - nw) * 32768, yd = (h - nh) * 32768;
  const ax = nw * 32768 - Math.trunc(cos * (nw - 1) * 32768);
  const ay = nh * 32768 - Math.trunc(sin * (nw - 1) * 32768);
  const xmax = w * 65536 - 1, ymax = h * 65536 - 1;
  for (let y = 0; y < nh; y++) {
    let dx = ax + isin * (centre - y) + xd;
    let dy = ay - icos * (centre - y) + yd;
    for (let x = 0; x < nw; x++) {
      if (dx >= 0 && dy >= 0 && dx <= xmax && dy <= ymax) {
        const from = (Math.floor(dy / 65536) * w + Math.floor(dx / 65536)) * 4;
        out.set(data.subarray(from, from + 4), (y * nw + x) * 4);
      }
      dx += icos;
      dy += isin;
    }
  }
  return { data: out, width: nw, height: nh };
}

/** `turns` quarter turns counter-clockwise. */
function quarterTurns(src: Pixels, turns: number): Pixels {
  const { width: w, height: h, data } = src;
  const [nw, nh] = turns % 2 ? [h, w] : [w, h];
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < nh; y++) {
    for (let x = 0; x < nw; x++) {
      const [sx, sy] = turns === 0 ? [x, y] : turns === 1 ? [w - 1 - y, x] : turns === 2 ? [w - 1 - x, h - 1 - y] : [y, h - 1 - x];
      out.set(data.subarray((sy * w + sx) * 4, (sy * w + sx) * 4 + 4), (y * nw + x) * 4);
    }
  }
  return { data: out, width: nw, height: nh };
}
