// The JSON Schema validator (src/shell/schema.ts), keyword by keyword: what each keyword accepts and rejects, the
// instance paths and messages of its problems, and that a keyword outside the subset is refused, never ignored.
// The manifest schema itself, on the shipped manifests: tests/manifest_schema.test.ts.
import { describe, expect, it } from "vitest";
import { formatPath, type Schema, SchemaError, validate } from "../src/shell/schema";

const messages = (schema: Schema, value: unknown) => validate(schema, value).map((i) => `${formatPath(i.path)}: ${i.message}`);
const ok = (schema: Schema, value: unknown) => validate(schema, value).length === 0;

describe("schema validator", () => {
  it("checks types, one or several, with integers apart from other numbers", () => {
    expect(ok({ type: "integer" }, 3)).toBe(true);
    expect(ok({ type: "integer" }, 3.5)).toBe(false);
    expect(ok({ type: "number" }, 3.5)).toBe(true);
    expect(ok({ type: "number" }, "3")).toBe(false);
    expect(ok({ type: "boolean" }, 0)).toBe(false);
    expect(ok({ type: "object" }, [])).toBe(false);
    expect(ok({ type: "array" }, {})).toBe(false);
    expect(ok({ type: ["string", "null"] }, null)).toBe(true);
    expect(messages({ type: ["integer", "string"] }, true)).toEqual([": must be an integer or a string (got true)"]);
  });

  it("compares const and enum values deeply", () => {
    expect(ok({ const: [1, { a: "b" }] }, [1, { a: "b" }])).toBe(true);
    expect(ok({ const: [1, { a: "b" }] }, [1, { a: "c" }])).toBe(false);
    expect(ok({ const: { a: 1 } }, { a: 1, b: 2 })).toBe(false);
    expect(messages({ const: 1 }, 99)).toEqual([": must be 1 (got 99)"]);
    expect(messages({ enum: ["breakout", "flappy"] }, "pong")).toEqual([': must be one of "breakout", "flappy" (got "pong")']);
  });

  it("checks strings, numbers and list lengths, ignoring values of other types", () => {
    expect(messages({ minLength: 1 }, "")).toEqual([": must have at least 1 character"]);
    expect(messages({ pattern: "\\.onnx$" }, "frame.txt")).toEqual([': must match /\\.onnx$/ (got "frame.txt")']);
    expect(ok({ pattern: "\\.onnx$" }, "a.onnx")).toBe(true);
    expect(messages({ minimum: 1 }, 0)).toEqual([": must be >= 1 (got 0)"]);
    expect(ok({ minimum: 1 }, 1)).toBe(true);
    expect(messages({ exclusiveMinimum: 0 }, 0)).toEqual([": must be > 0 (got 0)"]);
    expect(messages({ minItems: 2, maxItems: 3 }, [1])).toEqual([": must have at least 2 entries (has 1)"]);
    expect(messages({ maxItems: 1 }, [1, 2])).toEqual([": must have at most 1 entry (has 2)"]);
    expect(ok({ minLength: 3, pattern: "x", minimum: 9, minItems: 1 }, { any: "object" })).toBe(true);
  });

  it("checks list entries by position (prefixItems) and the rest (items), with their paths", () => {
    const schema = { prefixItems: [{ type: "string" }, { type: "integer" }], items: { type: "boolean" } };
    expect(ok(schema, ["a", 1, true, false])).toBe(true);
    expect(ok(schema, ["a"])).toBe(true); // prefixItems does not require the entries
    expect(messages(schema, [1, "b", 3])).toEqual([
      "[0]: must be a string (got 1)", '[1]: must be an integer (got "b")', "[2]: must be a boolean (got 3)"]);
    expect(messages({ items: { type: "integer" } }, [1, 2, "x"])).toEqual(['[2]: must be an integer (got "x")']);
  });

  it("checks properties and required keys, an undefined value counting as missing", () => {
    const schema = { properties: { a: { type: "integer" }, b: { properties: { c: { type: "string" } } } }, required: ["a", "d"] };
    expect(messages(schema, { a: 1, d: 0 })).toEqual([]);
    expect(messages(schema, { a: "1", b: { c: 2 }, d: undefined })).toEqual([
      'a: must be an integer (got "1")', "b.c: must be a string (got 2)", "d: is missing"]);
    expect(validate(schema, {}).map((i) => [i.path, i.keyword])).toEqual([[["a"], "required"], [["d"], "required"]]);
    expect(ok(schema, "not an object")).toBe(true); // properties and required apply to objects only
  });

  it("checks keys that need each other (dependentRequired)", () => {
    const schema = { dependentRequired: { frame_onnx: ["frame_graph"] } };
    expect(ok(schema, {})).toBe(true);
    expect(ok(schema, { frame_onnx: "f.onnx", frame_graph: {} })).toBe(true);
    expect(messages(schema, { frame_onnx: "f.onnx" })).toEqual(['frame_graph: is missing (needed with "frame_onnx")']);
  });

  it("applies allOf, if/then/else and boolean schemas", () => {
    const schema = {
      allOf: [{ type: "object" }, {
        if: { properties: { task: { const: "a" } }, required: ["task"] },
        then: { required: ["only_a"] },
        else: { required: ["not_a"] },
      }],
    };
    expect(messages(schema, { task: "a" })).toEqual(["only_a: is missing"]);
    expect(messages(schema, { task: "b" })).toEqual(["not_a: is missing"]);
    expect(ok({ then: { type: "string" } }, 1)).toBe(true); // then without if does nothing
    expect(ok(true, 1)).toBe(true);
    expect(messages({ properties: { x: false } }, { x: 1 })).toEqual(["x: is not allowed"]);
  });

  it("follows local $refs, with JSON pointer escapes, beside other keywords", () => {
    const schema = {
      $defs: { count: { type: "integer", minimum: 1 }, "a/b": { type: "string" } },
      properties: { n: { $ref: "#/$defs/count" }, s: { $ref: "#/$defs/a~1b" } },
    };
    expect(ok(schema, { n: 2, s: "x" })).toBe(true);
    expect(messages(schema, { n: 0, s: 1 })).toEqual(["n: must be >= 1 (got 0)", "s: must be a string (got 1)"]);
    const sibling = { $defs: { t: { type: "object" } }, $ref: "#/$defs/t", required: ["k"] };
    expect(messages(sibling, [])).toEqual([": must be an object (got a list of 0)"]);
    expect(messages(sibling, {})).toEqual(["k: is missing"]);
  });

  it("refuses a schema it cannot read instead of passing everything", () => {
    expect(() => validate({ additionalProperties: false }, {})).toThrow(SchemaError);
    expect(() => validate({ properties: { a: { format: "email" } } }, { a: "x" })).toThrow(/unsupported keyword "format"/);
    expect(() => validate({ $ref: "other.json#/x" }, 1)).toThrow(/only local \$refs/);
    expect(() => validate({ $ref: "#/$defs/none" }, 1)).toThrow(/points at nothing/);
    expect(() => validate({ type: "float" }, 1)).toThrow(/unknown type "float"/);
  });

  it("names instance paths and values readably", () => {
    expect(formatPath([])).toBe("");
    expect(formatPath(["decoding", "sliding_window"])).toBe("decoding.sliding_window");
    expect(formatPath(["frame_graph", "inputs", 2, "shape", 0])).toBe("frame_graph.inputs[2].shape[0]");
    expect(messages({ type: "string" }, { a: 1 })).toEqual([": must be a string (got an object)"]);
    expect(messages({ type: "integer" }, "x".repeat(100))[0]).toMatch(/^: must be an integer \(got "x{36}\.\.\.\)$/);
  });
});
