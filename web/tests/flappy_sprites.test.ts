// The sprite renderer's parts that need no canvas (src/flappy/sprites.ts), against the real game (fixtures from
// tests/web/web_fixtures.py write_sprite_checks): the bird turned pixel for pixel as pygame.transform.rotate turns it
// (on a random pattern), and the pose the tracker replays from the frames and actions alone (rotation, wing frame,
// base scroll, score) equal to the env's own at every step of a real game. Where the sprites land on the screen is
// compared with the env's own frames in a browser (web/e2e/browser.mjs).
//   WM_FIXTURES=DIR npx vitest run tests/flappy_sprites.test.ts
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { FrameState, Geometry } from "../src/flappy/spec";
import { type Pose, PoseTracker, rotatePixels } from "../src/flappy/sprites";
import { num, readJson } from "./flappy_fixtures";

interface Image { width: number; height: number; rgba_b64: string }
const pixels = (im: Image) => ({ width: im.width, height: im.height,
  data: new Uint8ClampedArray(Buffer.from(im.rgba_b64, "base64")) });

function fixture(name: string): any {
  const file = join(process.env.WM_FIXTURES ?? "", "sprites", name);
  if (!existsSync(file)) throw new Error(`no ${file}: set WM_FIXTURES to a folder made by python tests/web/web_fixtures.py DIR`);
  return readJson(file);
}

interface PoseStep { action?: number; state: FrameState; pose: Pose }

const GEOMETRY: Geometry = { screen_width: 288, screen_height: 512, ground_y: 404.48, pipe_width: 52, pipe_gap: 100,
  bird_x: 57, bird_width: 34, bird_height: 24, pipe_speed: 4, fps: 30 };
const frame = (birdY: number, pipeX: number[], respawn = false): FrameState => ({ birdY, respawn, done: false,
  action: null, pipes: pipeX.map((x) => ({ visible: true, x, gapY: 190 })) });

describe("flappy sprites", () => {
  it("turns the bird exactly as pygame.transform.rotate does", () => {
    const fx = fixture("rotations.json") as { source: Image; rotations: (Image & { degrees: number })[] };
    const source = pixels(fx.source);
    expect(fx.rotations.length).toBeGreaterThanOrEqual(10);
    for (const r of fx.rotations) {
      const want = pixels(r);
      const got = rotatePixels(source, r.degrees);
      expect([got.width, got.height], `size at ${r.degrees} degrees`).toEqual([want.width, want.height]);
      let wrong = 0;
      for (let i = 0; i < want.width * want.height; i++) {
        const [a, b] = [got.data[i * 4 + 3], want.data[i * 4 + 3]];
        const rgb = [0, 1, 2].some((c) => got.data[i * 4 + c] !== want.data[i * 4 + c]);
        if (a !== b || (b > 0 && rgb)) wrong++;
      }
      expect(wrong, `pixels differing at ${r.degrees} degrees`).toBe(0);
    }
  });

  it("gives the env's own pose at every step of a real game, from the frames and actions alone", () => {
    const { steps } = fixture("poses.json") as { steps: PoseStep[] };
    const state = (s: FrameState): FrameState => ({ ...s, pipes: s.pipes.map((p) => ({ ...p, x: num(p.x), gapY: num(p.gapY) })) });
    const pose = new PoseTracker(GEOMETRY);
    expect(pose.pose(336)).toEqual(steps[0].pose);
    for (let t = 1; t < steps.length; t++) {
      pose.step(state(steps[t - 1].state), state(steps[t].state), steps[t].action!);
      expect(pose.pose(336), `step ${t}`).toEqual(steps[t].pose);
    }
    expect(steps.at(-1)!.pose.score).toBeGreaterThanOrEqual(3);
    expect(new Set(steps.map((s) => s.pose.rotation)).size).toBeGreaterThan(20);
  });

  it("replays the env's rules for the rotation, wing frame, base scroll and score", () => {
    const pose = new PoseTracker(GEOMETRY);
    let before = frame(200, [60, 204]);
    const step = (after: FrameState, action: number) => {
      pose.step(before, after, action);
      before = after;
      return pose.pose(336);
    };
    expect(pose.pose(336)).toEqual({ rotation: 20, wing: 0, groundX: 0, score: 0 });
    expect(step(frame(200, [56, 200]), 0)).toEqual({ rotation: 20, wing: 0, groundX: -4, score: 0 });
    expect(step(frame(200, [52, 196]), 0).score).toBe(0);
    const third = step(frame(200, [48, 192]), 0); // x 48: the pipe's centre reaches the bird's (57 + 17 - 26)
    expect(third).toEqual({ rotation: 20, wing: 0, groundX: -12, score: 0 }); // the wing turns every 3rd step
    expect(step(frame(200, [44, 188]), 0).score).toBe(1); // scored in the next step, as the env does
    for (let i = 0; i < 2; i++) step(frame(200, [40 - 4 * i, 184 - 4 * i]), 0);
    expect(pose.pose(336).wing).toBe(1);
    let last = pose.pose(336);
    for (let i = 0; i < 40; i++) last = step(frame(200, [30, 170]), 0);
    expect(last.rotation).toBe(-90); // 45 at the start, 3 degrees a step down to -90
    expect(step(frame(190, [30, 170]), 1).rotation).toBe(20); // a flap: 45, shown as at most 20
    expect(last.groundX).toBeGreaterThan(-48); // the base wraps at its 48 px overhang
    // A respawn: slot 0 takes slot 1's pipe, which then passes the bird
    before = frame(200, [-52, 50]);
    const score = pose.pose(336).score!;
    step(frame(200, [46, 190], true), 0);
    expect(step(frame(200, [42, 186]), 0).score).toBe(score + 1);
    // No flap effect above y = -48 (the env ignores the flap there)
    for (let i = 0; i < 10; i++) step(frame(-60, [30, 170]), 0);
    expect(step(frame(-60, [30, 170]), 1).rotation).toBeLessThan(20);
  });
});
