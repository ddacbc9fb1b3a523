// Draws a Flappy frame from its tokens alone, like worldmodels/flappy/render.py: sky, both pipes of each visible
// slot (top pipe above gap_y - pipe_gap / 2, bottom pipe from gap_y + pipe_gap / 2 to the ground), the ground strip
// below ground_y, the bird as a box at (bird_x, bird_y), a red border on a done frame. Every size comes from the token
// spec's geometry (the manifest's token_spec.geometry); values are decoded with spec.ts. Pixel-compared with
// render_frame in web/tests/flappy_render.test.ts (fixtures from tests/web/web_fixtures.py write_flappy).
import type { FrameState, TokenSpec } from "./spec";

// The Python renderer's colours (flappy_render.py).
const SKY = "rgb(112, 197, 206)";
const PIPE = "rgb(83, 160, 40)";
const GROUND = "rgb(222, 216, 149)";
const BIRD = "rgb(250, 200, 40)";
const DEATH = "rgb(220, 30, 30)";
const DEATH_BORDER = 3; // canvas px, at any scale

/** Canvas size in px for a scale (1 = the game's 288 x 512 screen). */
export function canvasSize(spec: TokenSpec, scale = 1): { width: number; height: number } {
  const g = spec.geometry;
  return { width: Math.floor(g.screen_width * scale + 0.5), height: Math.floor(g.screen_height * scale + 0.5) };
}

/** Draw a frame (9 or 10 tokens) onto a canvas sized by canvasSize; returns the decoded state. */
export function drawFrame(ctx: CanvasRenderingContext2D, spec: TokenSpec, tokens: ArrayLike<number>, scale = 1): FrameState {
  const state = spec.decodeFrame(tokens);
  const g = spec.geometry;
  const px = (v: number) => Math.floor(v * scale + 0.5); // flappy_render.py's rounding rule
  const rect = (colour: string, x: number, y: number, w: number, h: number) => {
    ctx.fillStyle = colour;
    if (w > 0 && h > 0) ctx.fillRect(x, y, w, h);
  };
  const fill = (colour: string, x0: number, x1: number, y0: number, y1: number) =>
    rect(colour, px(x0), px(y0), px(x1) - px(x0), px(y1) - px(y0));
  fill(SKY, 0, g.screen_width, 0, g.screen_height);
  for (const pipe of state.pipes) {
    if (!pipe.visible) continue;
    fill(PIPE, pipe.x, pipe.x + g.pipe_width, 0, pipe.gapY - g.pipe_gap / 2);
    fill(PIPE, pipe.x, pipe.x + g.pipe_width, pipe.gapY + g.pipe_gap / 2, g.ground_y);
  }
  fill(GROUND, 0, g.screen_width, g.ground_y, g.screen_height);
  fill(BIRD, g.bird_x, g.bird_x + g.bird_width, state.birdY, state.birdY + g.bird_height);
  if (state.done) {
    const { width, height } = ctx.canvas;
    rect(DEATH, 0, 0, width, DEATH_BORDER);
    rect(DEATH, 0, height - DEATH_BORDER, width, DEATH_BORDER);
    rect(DEATH, 0, 0, DEATH_BORDER, height);
    rect(DEATH, width - DEATH_BORDER, 0, DEATH_BORDER, height);
  }
  return state;
}
