// Canonical JSON: one byte sequence per value, for hashing (inputsHash, the audit log's hash chain).
// Object keys sorted by UTF-16 code units, no whitespace, undefined members dropped (as JSON.stringify),
// decimals (decimal.js, including Prisma's Decimal) as plain-notation strings, Dates as ISO strings.
// Non-finite numbers, bigints, functions and symbols are rejected rather than silently changed.

import { Decimal } from "decimal.js";
import { ValidationError } from "../errors.js";

/**
 * How deeply free-form JSON from callers may nest (usage `properties`, and any request body): objects and
 * arrays count one level each, the outermost included. Checked before anything recurses into the value.
 */
export const MAX_JSON_DEPTH = 32;

/** canonicalJson's own limit: a backstop under MAX_JSON_DEPTH, with room for the service's wrappers. */
export const CANONICAL_JSON_MAX_DEPTH = 64;

/** A value nested deeper than canonicalJson writes (it would otherwise overflow the stack). */
export class JsonDepthError extends ValidationError {
  override name = "JsonDepthError";
  readonly path: string;
  constructor(path: string, maxDepth: number) {
    const message = `canonicalJson: nested deeper than ${maxDepth} levels at ${path}`;
    super([{ field: "", message }], message);
    this.path = path;
  }
}

/**
 * The dotted path (from `path`) of the first object or array nested deeper than `maxDepth`, or null.
 * Recurses at most `maxDepth` levels, so it is safe on any parsed JSON.
 */
export function deeperThan(value: unknown, maxDepth: number, path = "$", depth = 0): string | null {
  if (value === null || typeof value !== "object") return null;
  if (depth >= maxDepth) return path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = deeperThan(value[i], maxDepth, `${path}.${i}`, depth + 1);
      if (hit) return hit;
    }
    return null;
  }
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    const hit = deeperThan((value as Record<string, unknown>)[k], maxDepth, `${path}.${k}`, depth + 1);
    if (hit) return hit;
  }
  return null;
}

function isDecimalLike(value: object): value is { toFixed(): string } {
  if (value instanceof Decimal) return true;
  const ctor = (value as { constructor?: { name?: string; isDecimal?: (v: unknown) => boolean } }).constructor;
  return (
    typeof (value as { toFixed?: unknown }).toFixed === "function" &&
    (ctor?.isDecimal?.(value) === true || ctor?.name === "Decimal")
  );
}

// `path` is the member name being written, for error messages only; `depth` the containers around it.
function write(value: unknown, out: string[], path: string, depth: number): void {
  if (value === null) {
    out.push("null");
    return;
  }
  switch (typeof value) {
    case "string":
      out.push(JSON.stringify(value));
      return;
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number at ${path}`);
      out.push(JSON.stringify(value));
      return;
    case "object":
      break;
    default:
      throw new TypeError(`canonicalJson: unsupported ${typeof value} at ${path}`);
  }
  const obj = value as object;
  if (depth >= CANONICAL_JSON_MAX_DEPTH) throw new JsonDepthError(path, CANONICAL_JSON_MAX_DEPTH);
  const proto = Object.getPrototypeOf(obj) as unknown;
  if (proto !== Object.prototype && proto !== null && !Array.isArray(obj) && isDecimalLike(obj)) {
    const text = obj.toFixed();
    out.push(JSON.stringify(text === "-0" ? "0" : text));
    return;
  }
  if (obj instanceof Date) {
    if (Number.isNaN(obj.getTime())) throw new TypeError(`canonicalJson: invalid Date at ${path}`);
    out.push(JSON.stringify(obj.toISOString()));
    return;
  }
  if (Array.isArray(obj)) {
    out.push("[");
    for (let i = 0; i < obj.length; i++) {
      const item: unknown = obj[i];
      if (i > 0) out.push(",");
      if (item === undefined || typeof item === "function" || typeof item === "symbol") out.push("null");
      else write(item, out, String(i), depth + 1);
    }
    out.push("]");
    return;
  }
  const record = obj as Record<string, unknown>;
  // Default sort compares UTF-16 code units, as canonical JSON (RFC 8785) requires.
  const keys = Object.keys(record).sort();
  out.push("{");
  let first = true;
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    if (!first) out.push(",");
    first = false;
    out.push(JSON.stringify(k), ":");
    write(v, out, k, depth + 1);
  }
  out.push("}");
}

/** The canonical JSON text of a value (sorted keys, no whitespace, Decimal → string). */
export function canonicalJson(value: unknown): string {
  if (value === undefined) throw new TypeError("canonicalJson: undefined has no JSON form");
  const out: string[] = [];
  write(value, out, "$", 0);
  return out.join("");
}
