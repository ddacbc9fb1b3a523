// A JSON Schema (draft 2020-12) validator for the keywords worldmodels/core/manifest.schema.json uses, so the player
// checks a manifest against the very file Python's jsonschema checks it against. A schema keyword outside this subset
// is a SchemaError, never silently ignored. Each problem found carries the instance path and a one-line message.
// Tested keyword by keyword in web/tests/schema.test.ts, on the shipped manifests in web/tests/manifest_schema.test.ts.

export type Schema = boolean | { readonly [keyword: string]: unknown };

export interface SchemaIssue {
  path: (string | number)[]; // where in the instance; a missing key's own path
  keyword: string;
  message: string; // e.g. `must be a boolean (got "yes")`
}

export class SchemaError extends Error {
  constructor(message: string) {
    super(`schema: ${message}`);
    this.name = "SchemaError";
  }
}

// Keywords that only document, or that other keywords read ($defs through $ref, then/else through if).
const PASSIVE = new Set(["$schema", "$id", "$comment", "title", "description", "$defs", "then", "else"]);

const TYPE_NAMES: Record<string, string> = {
  null: "null", boolean: "a boolean", integer: "an integer", number: "a number", string: "a string", array: "a list",
  object: "an object",
};

type Obj = Record<string, unknown>;
type Check = (arg: any, value: unknown, path: (string | number)[], schema: Obj, ctx: Context) => void;

interface Context {
  root: Schema;
  issues: SchemaIssue[];
}

const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const has = (o: Obj, key: string) => Object.hasOwn(o, key) && o[key] !== undefined; // undefined: absent, as in JSON

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => has(b, k) && same(a[k], b[k]));
  }
  return false;
}

function isType(type: string, v: unknown): boolean {
  switch (type) {
    case "null": return v === null;
    case "boolean": return typeof v === "boolean";
    case "integer": return Number.isInteger(v);
    case "number": return typeof v === "number" && Number.isFinite(v);
    case "string": return typeof v === "string";
    case "array": return Array.isArray(v);
    case "object": return isObject(v);
    default: throw new SchemaError(`unknown type "${type}"`);
  }
}

/** A value, short enough for a one-line message. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (isObject(v)) return "an object";
  const text = JSON.stringify(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** An instance path as `decoding.sliding_window` or `inputs[0].dtype`. */
export function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i ? `.${p}` : p)).join("");
}

const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

const CHECKS: Record<string, Check> = {
  type(arg, v, path, _s, ctx) {
    const types: string[] = Array.isArray(arg) ? arg : [arg];
    if (!types.some((t) => isType(t, v))) {
      issue(ctx, path, "type", `must be ${types.map((t) => TYPE_NAMES[t]).join(" or ")} (got ${show(v)})`);
    }
  },
  const(arg, v, path, _s, ctx) {
    if (!same(arg, v)) issue(ctx, path, "const", `must be ${show(arg)} (got ${show(v)})`);
  },
  enum(arg: unknown[], v, path, _s, ctx) {
    if (!arg.some((a) => same(a, v))) issue(ctx, path, "enum", `must be one of ${arg.map(show).join(", ")} (got ${show(v)})`);
  },
  minLength(arg: number, v, path, _s, ctx) {
    if (typeof v === "string" && [...v].length < arg) issue(ctx, path, "minLength", `must have at least ${count(arg, "character", "characters")}`);
  },
  pattern(arg: string, v, path, _s, ctx) {
    if (typeof v === "string" && !new RegExp(arg, "u").test(v)) issue(ctx, path, "pattern", `must match /${arg}/ (got ${show(v)})`);
  },
  minimum(arg: number, v, path, _s, ctx) {
    if (typeof v === "number" && !(v >= arg)) issue(ctx, path, "minimum", `must be >= ${arg} (got ${show(v)})`);
  },
  exclusiveMinimum(arg: number, v, path, _s, ctx) {
    if (typeof v === "number" && !(v > arg)) issue(ctx, path, "exclusiveMinimum", `must be > ${arg} (got ${show(v)})`);
  },
  minItems(arg: number, v, path, _s, ctx) {
    if (Array.isArray(v) && v.length < arg) issue(ctx, path, "minItems", `must have at least ${count(arg, "entry", "entries")} (has ${v.length})`);
  },
  maxItems(arg: number, v, path, _s, ctx) {
    if (Array.isArray(v) && v.length > arg) issue(ctx, path, "maxItems", `must have at most ${count(arg, "entry", "entries")} (has ${v.length})`);
  },
  prefixItems(arg: Schema[], v, path, _s, ctx) {
    if (Array.isArray(v)) arg.forEach((s, i) => i < v.length && check(s, v[i], [...path, i], ctx));
  },
  items(arg: Schema, v, path, s, ctx) {
    const from = Array.isArray(s.prefixItems) ? s.prefixItems.length : 0;
    if (Array.isArray(v)) v.forEach((x, i) => i >= from && check(arg, x, [...path, i], ctx));
  },
  properties(arg: Record<string, Schema>, v, path, _s, ctx) {
    if (isObject(v)) for (const [key, s] of Object.entries(arg)) if (has(v, key)) check(s, v[key], [...path, key], ctx);
  },
  required(arg: string[], v, path, _s, ctx) {
    if (isObject(v)) for (const key of arg) if (!has(v, key)) issue(ctx, [...path, key], "required", "is missing");
  },
  dependentRequired(arg: Record<string, string[]>, v, path, _s, ctx) {
    if (!isObject(v)) return;
    for (const [key, needs] of Object.entries(arg)) {
      if (!has(v, key)) continue;
      for (const need of needs) if (!has(v, need)) issue(ctx, [...path, need], "dependentRequired", `is missing (needed with "${key}")`);
    }
  },
  allOf(arg: Schema[], v, path, _s, ctx) {
    for (const s of arg) check(s, v, path, ctx);
  },
  if(arg: Schema, v, path, s, ctx) {
    const probe: Context = { root: ctx.root, issues: [] };
    check(arg, v, path, probe);
    const branch = probe.issues.length === 0 ? s.then : s.else;
    if (branch !== undefined) check(branch as Schema, v, path, ctx);
  },
  $ref(arg: string, v, path, _s, ctx) {
    check(resolve(ctx.root, arg), v, path, ctx);
  },
};

function issue(ctx: Context, path: (string | number)[], keyword: string, message: string): void {
  ctx.issues.push({ path, keyword, message });
}

/** A "#/..." JSON pointer into the root schema (the only kind of $ref the manifest schema uses). */
function resolve(root: Schema, ref: string): Schema {
  if (!ref.startsWith("#/")) throw new SchemaError(`only local $refs ("#/...") are supported, not "${ref}"`);
  let at: unknown = root;
  for (const part of ref.slice(2).split("/")) {
    const key = decodeURIComponent(part).replaceAll("~1", "/").replaceAll("~0", "~");
    at = isObject(at) && has(at, key) ? at[key] : undefined;
    if (at === undefined) throw new SchemaError(`$ref "${ref}" points at nothing`);
  }
  return at as Schema;
}

function check(schema: Schema, value: unknown, path: (string | number)[], ctx: Context): void {
  if (schema === true) return;
  if (schema === false) return issue(ctx, path, "false", "is not allowed");
  for (const [keyword, arg] of Object.entries(schema)) {
    if (PASSIVE.has(keyword)) continue;
    const rule = CHECKS[keyword];
    if (!rule) throw new SchemaError(`unsupported keyword "${keyword}" (web/src/shell/schema.ts reads ${Object.keys(CHECKS).join(", ")})`);
    rule(arg, value, path, schema, ctx);
  }
}

/** Every problem of `value` under `schema`, in schema order; [] when it is valid. Throws SchemaError for a schema
 * that uses a keyword this validator does not implement. */
export function validate(schema: Schema, value: unknown): SchemaIssue[] {
  const ctx: Context = { root: schema, issues: [] };
  check(schema, value, [], ctx);
  return ctx.issues;
}
