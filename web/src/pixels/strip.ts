// A gym_pixels manifest's start strips (start_frames: base64 PNGs, no data: prefix) as the frames a dream starts
// from: each strip holds context_frames real frames side by side, oldest first (worldmodels/pixels/data.py writes
// them, png_frames reads them back). The browser decodes the PNG (createImageBitmap, no colour conversion) and
// splitStrip cuts the RGBA pixels into uint8 HWC RGB frames, the sampler's input (src/breakout/sampler.ts).
// splitStrip is tested in web/tests/pixels_strip.test.ts; decodeStrip in a browser by web/e2e/browser.mjs against
// Python's decoding of the same strips.

export interface StripLayout {
  height: number;
  width: number; // of one frame
  contextFrames: number;
}

/** RGBA pixels of a strip (stripWidth x stripHeight) -> contextFrames uint8 HWC RGB frames, oldest first. */
export function splitStrip(rgba: ArrayLike<number>, stripWidth: number, stripHeight: number,
  layout: StripLayout): Uint8Array[] {
  const { height, width, contextFrames } = layout;
  if (stripWidth !== contextFrames * width || stripHeight !== height) {
    throw new RangeError(`a start strip is ${stripWidth}x${stripHeight} pixels; the model needs ${contextFrames} ` +
      `frames of ${width}x${height} side by side (${contextFrames * width}x${height})`);
  }
  if (rgba.length !== stripWidth * stripHeight * 4) {
    throw new RangeError(`a start strip has ${rgba.length} RGBA bytes, expected ${stripWidth * stripHeight * 4}`);
  }
  return Array.from({ length: contextFrames }, (_, k) => {
    const frame = new Uint8Array(height * width * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const from = (y * stripWidth + k * width + x) * 4;
        const to = (y * width + x) * 3;
        frame[to] = rgba[from];
        frame[to + 1] = rgba[from + 1];
        frame[to + 2] = rgba[from + 2];
      }
    }
    return frame;
  });
}

/** base64 text -> its bytes. */
export function base64Bytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Decode one start strip (a base64 PNG) into its frames, in the browser. */
export async function decodeStrip(png: string, layout: StripLayout): Promise<Uint8Array[]> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([base64Bytes(png) as BlobPart], { type: "image/png" }),
      { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (err) {
    throw new Error(`a start strip is not a PNG image (${err instanceof Error ? err.message : String(err)})`);
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (!ctx) throw new Error("this browser gives no 2D canvas context");
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return splitStrip(ctx.getImageData(0, 0, width, height).data, width, height, layout);
}
