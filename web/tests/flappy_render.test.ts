// The canvas renderer (src/flappy/render.ts) against Python's render_frame (worldmodels/flappy/render.py):
// drawn onto a minimal 2D context that fills RGB rectangles, every pixel must match the Python image of the same
// tokens (a frame with two pipes, a respawn, a death with its red border).
//   WM_FIXTURES=DIR npx vitest run tests/flappy_render.test.ts   (DIR from tests/web/web_fixtures.py; see flappy_fixtures.ts)
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canvasSize, drawFrame } from "../src/flappy/render";
import { TokenSpec } from "../src/flappy/spec";
import { flappyFixtures, readJson } from "./flappy_fixtures";

/** Just enough of CanvasRenderingContext2D for drawFrame: "rgb(r, g, b)" fills of integer rectangles, clipped. */
class RgbContext {
  fillStyle = "";
  readonly rgb: Uint8Array;

  constructor(readonly canvas: { width: number; height: number }) {
    this.rgb = new Uint8Array(canvas.width * canvas.height * 3);
  }

  fillRect(x: number, y: number, w: number, h: number): void {
    const colour = /^rgb\((\d+), (\d+), (\d+)\)$/.exec(this.fillStyle)!.slice(1).map(Number);
    const { width, height } = this.canvas;
    for (let row = Math.max(0, y); row < Math.min(height, y + h); row++) {
      for (let col = Math.max(0, x); col < Math.min(width, x + w); col++) this.rgb.set(colour, (row * width + col) * 3);
    }
  }
}

describe("flappy renderer", () => {
  it("draws Python's pixels from the tokens alone", () => {
    const fx = readJson(join(flappyFixtures(), "spec.json"));
    const spec = new TokenSpec(fx.token_spec);
    expect(fx.render.length).toBeGreaterThanOrEqual(3);
    for (const c of fx.render) {
      const size = canvasSize(spec, c.scale);
      expect([size.height, size.width, 3]).toEqual(c.shape);
      const ctx = new RgbContext(size);
      const state = drawFrame(ctx as unknown as CanvasRenderingContext2D, spec, c.tokens, c.scale);
      const expected = new Uint8Array(Buffer.from(c.rgb_b64, "base64"));
      const wrong = ctx.rgb.reduce((n, v, i) => n + (v !== expected[i] ? 1 : 0), 0);
      expect(wrong, `bytes differing for [${c.tokens}] (done ${state.done})`).toBe(0);
    }
  });
});
