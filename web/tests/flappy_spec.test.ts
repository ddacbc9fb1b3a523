// The TypeScript token spec (src/flappy/spec.ts) against Python's TokenSpec (worldmodels/flappy/tokens.py):
// legal masks with the hidden rule, decoded pixel values, well-formedness, read from the same token_spec JSON.
//   WM_FIXTURES=DIR npx vitest run tests/flappy_spec.test.ts   (DIR from tests/web/web_fixtures.py; see flappy_fixtures.ts)
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TokenSpec, TokenSpecError } from "../src/flappy/spec";
import { validateManifest, type FlappyManifest } from "../src/shell/manifest";
import { flappyFixtures, num, readJson } from "./flappy_fixtures";

const load = () => readJson(join(flappyFixtures(), "spec.json"));

describe("flappy token spec", () => {
  it("reads sizes, ids and geometry from the JSON", () => {
    const fx = load();
    const spec = new TokenSpec(fx.token_spec);
    expect(spec.vocabSize).toBe(fx.token_spec.vocab_size);
    expect(spec.tokensPerFrame).toBe(fx.token_spec.tokens_per_frame);
    for (const [key, id] of Object.entries(fx.token_spec.special_tokens as Record<string, number>)) {
      const [field, label] = key.split(".");
      expect(label === "hidden" && spec.field(field).hideable ? spec.field(field).hiddenId : spec.labelId(field, label)).toBe(id);
    }
    expect(spec.geometry.screen_width).toBe(fx.token_spec.geometry.screen_width);
    expect(spec.positionOf("done")).toBe(fx.token_spec.slots.findIndex((s: any) => s.field === "done"));
  });

  it("gives Python's legal masks for every slot of real, dead and hidden frames", () => {
    const fx = load();
    const spec = new TokenSpec(fx.token_spec);
    expect(fx.legal.length).toBeGreaterThan(50);
    for (const c of fx.legal) {
      const mask = spec.legalMask(c.slot, c.prefix);
      const ids = [...mask.keys()].filter((i) => mask[i] === 1);
      expect(ids, `slot ${c.slot} after [${c.prefix}]`).toEqual(c.legal);
    }
    expect(() => spec.legalRange(2, [10, 5])).toThrow(TokenSpecError); // position 1 holds no marker
  });

  it("decodes frames to Python's pixel values (bin centres, NaN when hidden)", () => {
    const fx = load();
    const spec = new TokenSpec(fx.token_spec);
    for (const c of fx.decoded) {
      const s = spec.decodeFrame(c.tokens);
      expect(s.birdY).toBe(c.bird_y);
      expect(s.pipes.map((p) => p.visible)).toEqual(c.visible);
      expect(s.pipes.map((p) => p.x)).toEqual(c.pipe_x.map(num));
      expect(s.pipes.map((p) => p.gapY)).toEqual(c.gap_y.map(num));
      expect([s.respawn, s.done, s.action]).toEqual([c.respawn, c.done, c.action]);
      expect(spec.isDone(c.tokens)).toBe(c.done);
      expect(spec.describe(c.tokens)).toHaveLength(c.tokens.length);
    }
    expect(fx.decoded.some((c: any) => c.done) && fx.decoded.some((c: any) => c.respawn)).toBe(true);
  });

  it("agrees with Python on well-formed and malformed frames", () => {
    const fx = load();
    const spec = new TokenSpec(fx.token_spec);
    for (const c of fx.well_formed) expect(spec.isWellFormed(c.tokens), `[${c.tokens}]`).toBe(c.ok);
    const bad = fx.well_formed.find((c: any) => !c.ok);
    expect(() => spec.decodeFrame(bad.tokens)).toThrow(/malformed frame/);
  });

  it("rejects a spec it cannot read with a clear message", () => {
    const fx = load();
    expect(() => new TokenSpec({ ...fx.token_spec, version: 2 })).toThrow(/flappy-tokens v1/);
    expect(() => new TokenSpec({ ...fx.token_spec, geometry: {} })).toThrow(/geometry lacks screen_width/);
  });

  it("accepts the exported manifests (shell validation) and their start contexts", () => {
    const dir = flappyFixtures();
    for (const name of readJson(join(dir, "cases.json")).onnx_cases as string[]) {
      const m = validateManifest(readJson(join(dir, name, "flappy.json")), name, "flappy") as FlappyManifest;
      const spec = new TokenSpec(m.token_spec);
      for (const c of m.start_contexts) {
        for (let f = 0; f * spec.tokensPerFrame < c.length; f++) {
          expect(spec.isWellFormed(c.slice(f * spec.tokensPerFrame, f * spec.tokensPerFrame + spec.stateTokensPerFrame))).toBe(true);
        }
      }
    }
  });
});
