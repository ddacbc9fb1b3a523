// The TypeScript Breakout simulator against the Python golden traces (tests/golden/breakout_traces.json, written by
// `python -m worldmodels.breakout.golden`): PRNG check values, every frame hash, the stored full frames, score and lives.
//   cd web && npx vitest run tests/breakout_sim.test.ts
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BreakoutGame, fnv1a32, LEFT, mulberry32, RIGHT, seedToState } from "../src/breakout/sim";

interface Trace {
  name: string;
  seed: number;
  actions: number[];
  frame_hashes: string[];
  score: number[];
  lives: number[];
  game_over_steps: number[];
  frames: { index: number; rgb_base64: string }[];
}

const GOLDEN = fileURLToPath(new URL("../../tests/golden/breakout_traces.json", import.meta.url));
const golden = JSON.parse(readFileSync(GOLDEN, "utf8")) as {
  format: string;
  version: number;
  prng_check: { seed: number; state: number; values: number[] };
  traces: Trace[];
};

function replay(seed: number, actions: number[]) {
  const game = new BreakoutGame(seed);
  const frames = [game.render()];
  const score: number[] = [];
  const lives: number[] = [];
  const gameOvers: number[] = [];
  actions.forEach((action, t) => {
    const result = game.step(action);
    frames.push(game.render());
    score.push(result.score);
    lives.push(result.lives);
    if (result.gameOver) gameOvers.push(t + 1);
  });
  return { frames, score, lives, gameOvers };
}

describe("breakout simulator vs golden traces", () => {
  it("reads the golden format it was written for", () => {
    expect(golden.format).toBe("worldmodels.breakout.golden");
    expect(golden.version).toBe(1);
    expect(golden.traces.length).toBeGreaterThan(0);
  });

  it("seeds and draws the PRNG exactly", () => {
    const check = golden.prng_check;
    let state = seedToState(check.seed);
    expect(state).toBe(check.state);
    for (const value of check.values) {
      let u: number;
      [state, u] = mulberry32(state);
      expect(u).toBe(value);
    }
  });

  for (const trace of golden.traces) {
    it(`replays trace "${trace.name}" byte for byte`, () => {
      const { frames, score, lives, gameOvers } = replay(trace.seed, trace.actions);
      expect(frames.map(fnv1a32)).toEqual(trace.frame_hashes);
      expect(score).toEqual(trace.score);
      expect(lives).toEqual(trace.lives);
      expect(gameOvers).toEqual(trace.game_over_steps);
      expect(trace.frames.length).toBeGreaterThan(0);
      for (const stored of trace.frames) {
        expect(Buffer.from(frames[stored.index]).equals(Buffer.from(stored.rgb_base64, "base64"))).toBe(true);
      }
    });
  }

  it("gives different frames for a different action sequence", () => {
    const trace = golden.traces[0];
    const other = trace.actions.map((a) => (a === LEFT ? RIGHT : LEFT));
    const hashes = replay(trace.seed, other).frames.map(fnv1a32);
    expect(hashes[0]).toBe(trace.frame_hashes[0]); // same seed, same first frame
    const differing = hashes.filter((h, i) => h !== trace.frame_hashes[i]).length;
    expect(differing).toBeGreaterThan(trace.actions.length / 2);
  });

  it("rejects an invalid action", () => {
    expect(() => new BreakoutGame(0).step(3)).toThrow(/action must be/);
  });
});
