// Breakout waits for the player to serve, as the arcade game does: the page's game does not tick until a key is
// pressed, at the start and again after every lost ball (a game over starts a new game that waits too). The
// simulator itself serves at once (src/breakout/sim.ts, kept byte-identical to worldmodels/breakout/sim.py): the
// gate only pauses it, so a served game is the simulator's game frame for frame. While it waits the dream pauses too
// (src/breakout/loop.ts). Tested by web/tests/breakout_serve.test.ts and in a browser by web/e2e/browser.mjs.
import type { BreakoutGame, StepResult } from "./sim";

export class ServeGate {
  private waiting_ = true;

  /** Whether the game waits for a key to serve. */
  get waiting(): boolean {
    return this.waiting_;
  }

  /** A key was pressed: serve (when waiting). */
  press(): void {
    this.waiting_ = false;
  }

  /** One tick of the page's game: the simulator's step, or null while it waits. A lost ball waits again. */
  tick(sim: BreakoutGame, action: number): StepResult | null {
    if (this.waiting_) return null;
    const result = sim.step(action);
    if (result.lifeLost) this.waiting_ = true;
    return result;
  }
}
