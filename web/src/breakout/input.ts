// The Breakout keys: the arrows or A / D move the paddle. A key counts while it is held and, until the next tick,
// once it was pressed: a tap shorter than a tick (or than a stall) still moves. Any key (a character, an arrow, Space,
// Enter) also serves when the game waits for a serve (src/breakout/serve.ts). Keys typed into a form field or with
// Ctrl, Cmd or Alt are left alone, and a control hands the keyboard back as soon as it is changed.
import { LEFT, NOOP, RIGHT } from "./sim";

export interface BreakoutKeys {
  action(): number; // the simulator's action for the keys down now or tapped since the last tick
  ticked(): void; // a tick used the taps
  dispose(): void;
}

function gameKey(e: KeyboardEvent): string | null {
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  return ["ArrowLeft", "ArrowRight", "a", "d"].includes(key) ? key : null;
}

/** A key that serves: a character (Space included), an arrow or Enter; not Tab, Escape, F-keys or a lone modifier. */
function servingKey(e: KeyboardEvent): boolean {
  return e.key.length === 1 || ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Enter"].includes(e.key);
}

/** Listens until dispose; `onServe` is called for every key that serves. */
export function listenKeys(controls: HTMLInputElement[], onServe: () => void): BreakoutKeys {
  const held = new Set<string>();
  const tapped = new Set<string>(); // pressed since the last tick
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target instanceof HTMLElement && e.target.matches("input, select, textarea")) return;
    if (servingKey(e)) onServe();
    if (e.key === " ") e.preventDefault(); // Space serves; it must not scroll the page
    const key = gameKey(e);
    if (!key) return;
    held.add(key);
    tapped.add(key);
    e.preventDefault();
  };
  const onKeyUp = (e: KeyboardEvent) => {
    const key = gameKey(e);
    if (key) held.delete(key);
  };
  const onBlur = () => {
    held.clear();
    tapped.clear();
  };
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  window.addEventListener("blur", onBlur);
  // A slider keeps the keyboard only while it is dragged; then the arrows move the paddle again.
  for (const input of controls) input.addEventListener("change", () => input.blur());
  return {
    action: () => {
      const down = (key: string) => held.has(key) || tapped.has(key);
      const left = down("ArrowLeft") || down("a");
      const right = down("ArrowRight") || down("d");
      return left === right ? NOOP : left ? LEFT : RIGHT;
    },
    ticked: () => tapped.clear(),
    dispose: () => {
      window.removeEventListener("keydown", onKeyDown);
      window.removeEventListener("keyup", onKeyUp);
      window.removeEventListener("blur", onBlur);
    },
  };
}
