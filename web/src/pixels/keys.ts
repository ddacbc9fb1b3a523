// Which keys send which of a game's actions, from the action names alone (the manifest's frame.actions). Atari
// games name theirs as ALE does (NOOP, FIRE, UP, RIGHT, LEFT, DOWN and their combinations such as UPLEFT or
// DOWNRIGHTFIRE): FIRE is Space, the directions are the arrow keys, a combination is its keys held together and NOOP
// is no key. Any other list (CartPole's "action 0", "action 1", a recording's own names) is played with the digit
// keys: 0 sends the first action, 9 the tenth; with no key down the first action is sent. Pure: tested in
// web/tests/pixels_keys.test.ts; src/pixels/input.ts feeds it the keys held.

/** The KeyboardEvent.key values that play a game (R restarts and is not one of them). */
export const GAME_KEYS: ReadonlySet<string> = new Set([" ", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight",
  ..."0123456789"]);

const KEY_LABELS: Record<string, string> = { " ": "Space", ArrowUp: "↑", ArrowDown: "↓", ArrowLeft: "←", ArrowRight: "→" };

/** How a key is written on the page: Space, the arrows as ← ↑ → ↓, a digit as itself. */
export function keyLabel(key: string): string {
  return KEY_LABELS[key] ?? key;
}

interface Chord {
  vertical: "ArrowUp" | "ArrowDown" | null;
  horizontal: "ArrowLeft" | "ArrowRight" | null;
  fire: boolean;
}

/** An ALE action name as the keys it holds; null for a name that is not one (case and "_" ignored). */
export function aleChord(name: string): Chord | null {
  const n = name.toUpperCase().replaceAll("_", "");
  if (n === "NOOP") return { vertical: null, horizontal: null, fire: false };
  const m = /^(UP|DOWN)?(LEFT|RIGHT)?(FIRE)?$/.exec(n);
  if (!m || !n) return null;
  return {
    vertical: m[1] === "UP" ? "ArrowUp" : m[1] === "DOWN" ? "ArrowDown" : null,
    horizontal: m[2] === "LEFT" ? "ArrowLeft" : m[2] === "RIGHT" ? "ArrowRight" : null,
    fire: m[3] === "FIRE",
  };
}

const chordKeys = (c: Chord): string[] => [...(c.fire ? [" "] : []), ...(c.vertical ? [c.vertical] : []),
  ...(c.horizontal ? [c.horizontal] : [])];

export interface KeyBinding {
  action: number;
  name: string;
  keys: string[]; // held together they send the action; [] for the action sent with no key down
}

export interface KeyMap {
  kind: "ale" | "digits";
  idle: number; // the action sent while no game key is down
  bindings: KeyBinding[]; // the actions a key sends, in the game's order
  unbound: string[]; // actions no key sends (a game with more than 10 non-ALE actions)
  /** The action for the game keys down (held, or tapped since the last frame), in the order they were pressed. */
  action(down: readonly string[]): number;
}

/** The key map of a game whose actions are named `actions` (frame.actions, in the model's action order). */
export function keyMap(actions: readonly string[]): KeyMap {
  const chords = actions.map(aleChord);
  if (actions.length > 0 && chords.every((c) => c !== null)) return aleMap(actions, chords as Chord[]);
  return digitMap(actions);
}

function aleMap(actions: readonly string[], chords: Chord[]): KeyMap {
  const noop = chords.findIndex((c) => chordKeys(c).length === 0);
  const idle = Math.max(noop, 0);
  return {
    kind: "ale",
    idle,
    bindings: actions.map((name, action) => ({ action, name, keys: chordKeys(chords[action]) })),
    unbound: [],
    action(down) {
      const held = new Set(down);
      // Opposite arrows cancel, as on a joystick.
      const vertical = held.has("ArrowUp") === held.has("ArrowDown") ? null : held.has("ArrowUp") ? "ArrowUp" : "ArrowDown";
      const horizontal = held.has("ArrowLeft") === held.has("ArrowRight") ? null
        : held.has("ArrowLeft") ? "ArrowLeft" : "ArrowRight";
      const fire = held.has(" ");
      // The action holding the most of the wanted keys and nothing else; a direction outranks FIRE (Breakout has
      // LEFT and FIRE but no LEFTFIRE: Space + Left moves), earlier actions win ties.
      let best = idle;
      let bestScore = 0;
      chords.forEach((c, i) => {
        if ((c.vertical && c.vertical !== vertical) || (c.horizontal && c.horizontal !== horizontal) || (c.fire && !fire)) return;
        const score = 2 * (Number(c.vertical !== null) + Number(c.horizontal !== null)) + Number(c.fire);
        if (score > bestScore) {
          best = i;
          bestScore = score;
        }
      });
      return best;
    },
  };
}

function digitMap(actions: readonly string[]): KeyMap {
  const bound = actions.slice(0, 10);
  return {
    kind: "digits",
    idle: 0,
    bindings: bound.map((name, action) => ({ action, name, keys: [String(action)] })),
    unbound: actions.slice(10) as string[],
    action(down) {
      // The digit pressed last wins while several are down.
      for (let i = down.length - 1; i >= 0; i--) {
        const d = down[i];
        if (d.length === 1 && d >= "0" && d <= "9" && Number(d) < bound.length) return Number(d);
      }
      return 0;
    },
  };
}

/** The key map as lines for the page: "Space + ←: LEFTFIRE", ..., then what no key sends. */
export function describeKeys(map: KeyMap): string[] {
  const lines = map.bindings.filter((b) => b.keys.length > 0)
    .map((b) => `${b.keys.map(keyLabel).join(" + ")}: ${b.name}`);
  const idleName = map.bindings[map.idle]?.name;
  if (idleName !== undefined) lines.push(`no key: ${idleName}`);
  if (map.unbound.length) lines.push(`no key sends: ${map.unbound.join(", ")}`);
  return lines;
}
