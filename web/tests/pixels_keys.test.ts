// The dreamed pixel game's keys (src/pixels/keys.ts): ALE action names map to Space and the arrows, any other names
// to the digit keys, and the page lists the mapping.
import { describe, expect, it } from "vitest";
import { aleChord, describeKeys, keyMap } from "../src/pixels/keys";

const ALE_FULL = ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
  "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE"];

describe("pixels key map", () => {
  it("plays Atari Breakout's actions with Space and the arrows, NOOP with no key", () => {
    const map = keyMap(["NOOP", "FIRE", "RIGHT", "LEFT"]);
    expect(map.kind).toBe("ale");
    expect(map.action([])).toBe(0);
    expect(map.action([" "])).toBe(1);
    expect(map.action(["ArrowRight"])).toBe(2);
    expect(map.action(["ArrowLeft"])).toBe(3);
    expect(map.action(["ArrowLeft", "ArrowRight"])).toBe(0); // opposite arrows cancel
    expect(map.action([" ", "ArrowLeft"])).toBe(3); // no LEFTFIRE: the direction wins
    expect(map.action(["ArrowUp"])).toBe(0); // a key the game has no action for
    expect(map.action(["1"])).toBe(0);
    expect(describeKeys(map)).toEqual(["Space: FIRE", "→: RIGHT", "←: LEFT", "no key: NOOP"]);
  });

  it("combines keys for the ALE's combined actions", () => {
    const map = keyMap(ALE_FULL);
    expect(map.kind).toBe("ale");
    const send = (...keys: string[]) => ALE_FULL[map.action(keys)];
    expect(send()).toBe("NOOP");
    expect(send("ArrowUp", "ArrowLeft")).toBe("UPLEFT");
    expect(send("ArrowDown", " ")).toBe("DOWNFIRE");
    expect(send("ArrowRight", " ")).toBe("RIGHTFIRE");
    expect(send(" ", "ArrowDown", "ArrowRight")).toBe("DOWNRIGHTFIRE");
    expect(send("ArrowUp", "ArrowDown", "ArrowLeft")).toBe("LEFT");
    for (const [i, b] of map.bindings.entries()) expect(map.action(b.keys)).toBe(i); // every action is reachable
    expect(describeKeys(map)).toContain("Space + ↑ + ←: UPLEFTFIRE");
  });

  it("falls back to the nearest action a minimal ALE set has", () => {
    const map = keyMap(["NOOP", "FIRE", "UP", "DOWN"]); // e.g. Pong-like: no combined actions
    expect(map.action(["ArrowUp", " "])).toBe(2);
    expect(map.action(["ArrowLeft", " "])).toBe(1);
    expect(keyMap(["FIRE", "LEFT"]).action([])).toBe(0); // no NOOP: the first action
  });

  it("reads ALE names whatever their case or underscores, and nothing else", () => {
    expect(aleChord("up_left_fire")).toEqual({ vertical: "ArrowUp", horizontal: "ArrowLeft", fire: true });
    expect(aleChord("noop")).toEqual({ vertical: null, horizontal: null, fire: false });
    for (const name of ["", "action 0", "LEFTUP", "FIREUP", "JUMP"]) expect(aleChord(name)).toBeNull();
  });

  it("plays generic names with the digit keys, the last pressed winning", () => {
    const map = keyMap(["action 0", "action 1"]);
    expect(map.kind).toBe("digits");
    expect(map.action([])).toBe(0);
    expect(map.action(["1"])).toBe(1);
    expect(map.action(["1", "0"])).toBe(0);
    expect(map.action(["0", "1"])).toBe(1);
    expect(map.action(["7"])).toBe(0); // no eighth action
    expect(map.action(["ArrowLeft"])).toBe(0);
    expect(describeKeys(map)).toEqual(["0: action 0", "1: action 1", "no key: action 0"]);
  });

  it("uses digits when only some names are ALE ones, and says which actions no key sends", () => {
    expect(keyMap(["NOOP", "push left"]).kind).toBe("digits");
    const names = Array.from({ length: 12 }, (_, i) => `a${i}`);
    const map = keyMap(names);
    expect(map.bindings.map((b) => b.keys[0])).toEqual([..."0123456789"]);
    expect(map.action(["9"])).toBe(9);
    expect(describeKeys(map).at(-1)).toBe("no key sends: a10, a11");
  });
});
