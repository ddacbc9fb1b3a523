// Start strips (src/pixels/strip.ts): the decoded RGBA pixels of a strip of 4 frames side by side become the 4 RGB
// frames, oldest first; a strip of the wrong size says so. (The PNG decoding itself runs in the browser:
// web/e2e/browser.mjs compares it with Python's png_frames.)
import { describe, expect, it } from "vitest";
import { base64Bytes, splitStrip } from "../src/pixels/strip";

describe("start strips", () => {
  const layout = { height: 2, width: 3, contextFrames: 4 };
  const stripWidth = 12;
  // Pixel (x, y) of the strip holds R = x, G = y, B = 100 + x + 12 y, A = 255.
  const rgba = new Uint8Array(stripWidth * 2 * 4);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < stripWidth; x++) rgba.set([x, y, 100 + x + 12 * y, 255], (y * stripWidth + x) * 4);
  }

  it("cuts a strip into its frames, oldest (leftmost) first, dropping alpha", () => {
    const frames = splitStrip(rgba, stripWidth, 2, layout);
    expect(frames).toHaveLength(4);
    for (const [k, frame] of frames.entries()) {
      expect(frame).toHaveLength(2 * 3 * 3);
      for (let y = 0; y < 2; y++) {
        for (let x = 0; x < 3; x++) {
          const sx = k * 3 + x;
          expect(Array.from(frame.subarray((y * 3 + x) * 3, (y * 3 + x) * 3 + 3))).toEqual([sx, y, 100 + sx + 12 * y]);
        }
      }
    }
  });

  it("refuses a strip of the wrong size, naming the size it needs", () => {
    expect(() => splitStrip(rgba, 6, 4, layout)).toThrow(/6x4 pixels; the model needs 4 frames of 3x2 side by side \(12x2\)/);
    expect(() => splitStrip(rgba.subarray(4), stripWidth, 2, layout)).toThrow(/RGBA bytes/);
  });

  it("decodes base64 to bytes", () => {
    const bytes = Uint8Array.from([137, 80, 78, 71, 0, 255, 10]);
    expect(Array.from(base64Bytes(Buffer.from(bytes).toString("base64")))).toEqual(Array.from(bytes));
  });
});
