// The serve gate (src/breakout/serve.ts): nothing moves until a key serves, a lost ball waits for the next key, and a
// served game is the simulator's own game frame for frame (the gate pauses it, never changes it).
//   cd web && npx vitest run tests/breakout_serve.test.ts
import { describe, expect, it } from "vitest";
import { ServeGate } from "../src/breakout/serve";
import { BreakoutGame, fnv1a32, NOOP } from "../src/breakout/sim";

describe("breakout serve gate", () => {
  it("waits for the first key: no tick moves the ball or costs a life", () => {
    const sim = new BreakoutGame(7);
    const gate = new ServeGate();
    const start = fnv1a32(sim.render());
    for (let t = 0; t < 1000; t++) expect(gate.tick(sim, NOOP)).toBeNull();
    expect(fnv1a32(sim.render())).toBe(start);
    expect([sim.lives, sim.score]).toEqual([3, 0]);
    gate.press();
    expect(gate.tick(sim, NOOP)).not.toBeNull();
    expect(fnv1a32(sim.render())).not.toBe(start);
  });

  it("waits again after each lost ball and plays the simulator's game frame for frame", () => {
    const gated = new BreakoutGame(3);
    const free = new BreakoutGame(3);
    const gate = new ServeGate();
    let lost = 0;
    let gameOvers = 0;
    for (let t = 0; t < 4000; t++) {
      if (gate.waiting) {
        for (let idle = 0; idle < 5; idle++) expect(gate.tick(gated, NOOP)).toBeNull(); // held until a key
        gate.press();
      }
      const result = gate.tick(gated, NOOP)!;
      free.step(NOOP);
      expect(fnv1a32(gated.render())).toBe(fnv1a32(free.render()));
      if (result.lifeLost) {
        lost++;
        if (result.gameOver) gameOvers++;
        expect(gate.waiting).toBe(true);
      } else {
        expect(gate.waiting).toBe(false);
      }
    }
    expect(lost).toBeGreaterThan(3); // never moving the paddle loses balls, and whole games
    expect(gameOvers).toBeGreaterThan(0);
  });
});
