// Loads the Flappy parity fixtures that tests/web/web_fixtures.py write_flappy writes under $WM_FIXTURES/flappy.
// Without WM_FIXTURES the Flappy tests fail (never skip) and say how to make them.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const HOW = "set WM_FIXTURES to a folder made by `python tests/web/web_fixtures.py DIR` (run from the repo root with its " +
  "venv; only the Flappy part: python -c \"import sys; sys.path.insert(0, 'tests'); import web_fixtures as w; " +
  "from pathlib import Path; w.write_flappy(Path('DIR/flappy'))\"), then: WM_FIXTURES=DIR npx vitest run tests/flappy_*";

/** $WM_FIXTURES/flappy, or an Error saying how to create it. */
export function flappyFixtures(): string {
  const root = process.env.WM_FIXTURES;
  if (!root) throw new Error(`WM_FIXTURES is not set: ${HOW}`);
  const dir = join(root, "flappy");
  if (!existsSync(join(dir, "cases.json"))) throw new Error(`no Flappy fixtures in ${dir}: ${HOW}`);
  return dir;
}

export function readJson(path: string): any {
  return JSON.parse(readFileSync(path, "utf8"));
}

export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** JSON null (Python NaN) back to NaN. */
export function num(v: number | null): number {
  return v === null ? NaN : v;
}
