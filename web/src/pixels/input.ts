// The dreamed pixel game's keyboard: the game keys of src/pixels/keys.ts (Space, the arrows, the digits) count while
// held and, until the next dreamed frame, once pressed, so a tap shorter than a frame still acts; R restarts from the
// next start strip. Keys typed into a form field or with Ctrl, Cmd or Alt are left alone, and a slider hands the
// keyboard back as soon as it is changed.
import { GAME_KEYS, type KeyMap } from "./keys";

export interface PixelsKeys {
  action(): number; // the action for the keys down now or tapped since the last frame
  ticked(): void; // a frame was asked for with the taps
  dispose(): void;
}

const gameKey = (e: KeyboardEvent): string | null => (GAME_KEYS.has(e.key) ? e.key : null);

/** Listens until dispose; `onRestart` is called for R. */
export function listenKeys(map: KeyMap, controls: HTMLInputElement[], onRestart: () => void): PixelsKeys {
  const held: string[] = []; // in the order pressed
  const tapped: string[] = [];
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target instanceof HTMLElement && e.target.matches("input, select, textarea")) return;
    if (e.key === "r" || e.key === "R") {
      e.preventDefault();
      onRestart();
      return;
    }
    const key = gameKey(e);
    if (!key) return;
    e.preventDefault(); // Space and the arrows must not scroll the page
    if (e.repeat && held.includes(key)) return;
    remove(held, key);
    held.push(key);
    remove(tapped, key);
    tapped.push(key);
  };
  const onKeyUp = (e: KeyboardEvent) => {
    const key = gameKey(e);
    if (key) remove(held, key);
  };
  const onBlur = () => {
    held.length = 0;
    tapped.length = 0;
  };
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  window.addEventListener("blur", onBlur);
  for (const input of controls) input.addEventListener("change", () => input.blur());
  return {
    action: () => map.action([...tapped.filter((k) => !held.includes(k)), ...held]),
    ticked: () => {
      tapped.length = 0;
    },
    dispose: () => {
      window.removeEventListener("keydown", onKeyDown);
      window.removeEventListener("keyup", onKeyUp);
      window.removeEventListener("blur", onBlur);
    },
  };
}

function remove(list: string[], key: string): void {
  const at = list.indexOf(key);
  if (at >= 0) list.splice(at, 1);
}
