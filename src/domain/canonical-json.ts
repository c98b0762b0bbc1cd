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

/**
 * A value's canonical JSON, written once and kept (a version's terms, hashed by every rating of the
 * contract): canonicalJson copies it as is.
 */
export class CanonicalText {
  constructor(readonly text: string) {}
}

function isDecimalLike(value: object): value is { toFixed(): string } {
  if (value instanceof Decimal) return true;
  const ctor = (value as { constructor?: { name?: string; isDecimal?: (v: unknown) => boolean } }).constructor;
  return (
    typeof (value as { toFixed?: unknown }).toFixed === "function" &&
    (ctor?.isDecimal?.(value) === true || ctor?.name === "Decimal")
  );
}

// JSON.stringify escapes exactly these in a string (quote, backslash, controls, lone surrogates; a surrogate
// pair is written as is but sent to JSON.stringify too): anything else is copied between quotes, which is
// much faster than calling JSON.stringify for every key and value.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** A string's canonical JSON (what canonicalJson writes for it). */
export const jsonString = quote;

// Object keys repeat (the same few member names in every object of a kind): their quoted form is kept.
const quotedKeys = new Map<string, string>();

function quoteKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = quote(key);
    if (quotedKeys.size >= 10_000) quotedKeys.clear();
    quotedKeys.set(key, quoted);
  }
  return quoted;
}

/**
 * The object's own keys sorted by UTF-16 code units, as canonical JSON (RFC 8785) requires: the default
 * sort's order, which is the order `<` compares strings in. Objects have few keys, often nearly sorted, so
 * an insertion sort (no comparator calls, no ToString) is several times faster than Array#sort for them.
 */
function sortedKeys(record: object): string[] {
  const keys = Object.keys(record);
  const n = keys.length;
  if (n > 32) return keys.sort();
  for (let i = 1; i < n; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    if ((keys[j] as string) < k) continue;
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

// `path` is the member name (or array index) being written, for error messages only; `depth` the containers
// around it. The text is built by concatenation (V8 ropes), and flattened once by the caller.
function write(value: unknown, path: string | number, depth: number): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return quote(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number at ${path}`);
      return String(value); // the same Number::toString JSON.stringify uses (-0 is "0")
    case "object":
      break;
    default:
      throw new TypeError(`canonicalJson: unsupported ${typeof value} at ${path}`);
  }
  const obj = value as object;
  if (depth >= CANONICAL_JSON_MAX_DEPTH) throw new JsonDepthError(String(path), CANONICAL_JSON_MAX_DEPTH);
  const proto = Object.getPrototypeOf(obj) as unknown;
  if (proto === CanonicalText.prototype) return (obj as CanonicalText).text;
  if (proto !== Object.prototype && proto !== null && !Array.isArray(obj) && isDecimalLike(obj)) {
    const text = obj.toFixed();
    return quote(text === "-0" ? "0" : text);
  }
  if (obj instanceof Date) {
    if (Number.isNaN(obj.getTime())) throw new TypeError(`canonicalJson: invalid Date at ${path}`);
    return quote(obj.toISOString());
  }
  if (Array.isArray(obj)) {
    let out = "[";
    for (let i = 0; i < obj.length; i++) {
      const item: unknown = obj[i];
      if (i > 0) out += ",";
      if (item === undefined || typeof item === "function" || typeof item === "symbol") out += "null";
      else out += write(item, i, depth + 1);
    }
    return `${out}]`;
  }
  const record = obj as Record<string, unknown>;
  const keys = sortedKeys(record);
  let out = "{";
  let first = true;
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    if (!first) out += ",";
    first = false;
    out += quoteKey(k);
    out += ":";
    out += write(v, k, depth + 1);
  }
  return `${out}}`;
}

/**
 * What canonicalJson writes for `value` as the member `key` of the object it writes at the top (and the same
 * errors): for a caller that writes that object's braces and member names itself.
 */
export function canonicalMember(value: unknown, key: string): string {
  return write(value, key, 1);
}

/** The canonical JSON text of a value (sorted keys, no whitespace, Decimal → string). */
export function canonicalJson(value: unknown): string {
  if (value === undefined) throw new TypeError("canonicalJson: undefined has no JSON form");
  return write(value, "$", 0);
}
