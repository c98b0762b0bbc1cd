// The rules a usage event (and a void) must follow: one table of limits and patterns, and the pure checks
// and normal forms built on it. Ingestion's one-pass batch validator and the HTTP schemas (which document
// the rules in the OpenAPI spec and validate voids) both read them, so they accept exactly the same input.
import { MAX_JSON_DEPTH, canonicalJson, deeperThan } from "./canonical-json.js";
import { sha256Hex } from "./sha256.js";

export interface TextRule {
  maxLength: number;
  pattern: RegExp;
  /** Why a value does not match `pattern`. */
  message: string;
}

export const USAGE_RULES = {
  /** Events in one batch, and event ids in one void. */
  maxEvents: 10_000,
  customerId: {
    maxLength: 200,
    pattern: /^[^\s,\u0000-\u001f\u007f]+$/,
    message: "must be non-empty without spaces, commas or control characters",
  },
  eventId: { maxLength: 200, pattern: /^[^\u0000-\u001f\u007f]+$/, message: "must not contain control characters" },
  metric: { maxLength: 100, pattern: /^[A-Za-z0-9_.:-]+$/, message: "may contain only letters, digits and _ . : -" },
  /** What fits numeric(38,9). */
  quantity: {
    pattern: /^(\d{1,29})(?:\.(\d{1,9}))?$/,
    message: "must be a non-negative decimal string with at most 29 integer and 9 fraction digits (never a JSON number)",
  },
  properties: {
    /** Serialized JSON of one event's properties, in UTF-8 bytes. */
    maxBytes: 4096,
    maxDepth: MAX_JSON_DEPTH,
  },
  voidReason: { maxLength: 1000, pattern: /^[^\u0000]+$/, message: "must not contain NUL characters" },
} as const;

// An unpaired surrogate cannot be stored as UTF-8: it would become U+FFFD and merge distinct ids.
const UNPAIRED_SURROGATE = /\p{Cs}/u;

/** Why a value breaks an id rule (customerId, eventId, metric), or null. */
export function checkId(value: unknown, rule: TextRule): string | null {
  if (typeof value !== "string") return value === undefined ? "is required" : "must be a string";
  if (value.length === 0 || value.length > rule.maxLength) return `must be 1 to ${rule.maxLength} characters`;
  if (!rule.pattern.test(value)) return rule.message;
  if (UNPAIRED_SURROGATE.test(value)) return "must not contain unpaired UTF-16 surrogates";
  return null;
}

/** A non-negative decimal string fitting numeric(38,9), normalised: no leading zeros, no trailing fraction zeros. */
export function normalizeQuantity(text: string): string | null {
  const m = USAGE_RULES.quantity.pattern.exec(text);
  if (!m) return null;
  const int = m[1]!.replace(/^0+(?=\d)/, "");
  const frac = (m[2] ?? "").replace(/0+$/, "");
  return frac ? `${int}.${frac}` : int;
}

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):(\d{2}))$/;

/**
 * An event timestamp: ISO 8601 with seconds and an offset, at most microsecond precision (what
 * timestamptz keeps). Returns the instant normalised to UTC with exactly six fraction digits (the form
 * hashed and stored) and its epoch ms, or an error message.
 */
export function parseEventTimestamp(text: string): { iso: string; ms: number } | string {
  // Fast path for what most senders send, JavaScript's own toISOString() form: if printing the parsed
  // instant gives back the same text, it is valid and already in UTC.
  if (text.length === 24 && text.charCodeAt(23) === 90 /* Z */ && text.charCodeAt(10) === 84 /* T */) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms) && new Date(ms).toISOString() === text) return { iso: `${text.slice(0, 23)}000Z`, ms };
  }
  const m = INSTANT.exec(text);
  const bad = "must be an ISO 8601 instant with seconds and an offset, e.g. 2026-01-31T23:59:59Z";
  if (!m) return bad;
  const [, y, mo, d, h, mi, s, frac = "", , sign, oh, om] = m;
  const year = Number(y), month = Number(mo), day = Number(d), hour = Number(h), minute = Number(mi), second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return `${bad} (not a calendar date)`;
  if (hour > 23 || minute > 59 || second > 59) return `${bad} (not a time of day)`;
  if (frac.length > 6 && /[1-9]/.test(frac.slice(6))) return "has more than microsecond precision";
  const offsetMin = sign ? (sign === "-" ? -1 : 1) * (Number(oh) * 60 + Number(om)) : 0;
  if (sign && (Number(oh) > 23 || Number(om) > 59)) return `${bad} (bad offset)`;
  const micros = frac.padEnd(6, "0").slice(0, 6);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, Number(micros.slice(0, 3))) - offsetMin * 60_000;
  if (!Number.isFinite(ms)) return bad;
  const iso = `${new Date(ms).toISOString().slice(0, 23)}${micros.slice(3)}Z`;
  return { iso, ms };
}

/** The accepted time window around now (config USAGE_MAX_AGE_DAYS / USAGE_MAX_FUTURE_DAYS). */
export interface TimeWindow {
  maxAgeDays: number;
  maxFutureDays: number;
}

const DAY_MS = 86_400_000;

/** Why an instant falls outside the accepted window, or null. */
export function outsideWindow(ms: number, window: TimeWindow, nowMs: number): string | null {
  if (ms < nowMs - window.maxAgeDays * DAY_MS)
    return `is more than ${window.maxAgeDays} days in the past (USAGE_MAX_AGE_DAYS); such usage needs a manual correction`;
  if (ms > nowMs + window.maxFutureDays * DAY_MS)
    return `is more than ${window.maxFutureDays} day(s) in the future (USAGE_MAX_FUTURE_DAYS); check the sender's clock`;
  return null;
}

/** Why the properties cannot be stored (too deep, too large, or a NUL that jsonb cannot hold), or null. */
export function checkProperties(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const { maxBytes, maxDepth } = USAGE_RULES.properties;
  // Before canonicalJson recurses: JSON.parse builds any depth, the recursion here would overflow the stack.
  const deep = deeperThan(value, maxDepth, "properties");
  if (deep) return `must not nest objects and arrays more than ${maxDepth} levels deep (${deep.length > 120 ? `${deep.slice(0, 120)}…` : deep})`;
  const text = canonicalJson(value);
  if (Buffer.byteLength(text, "utf8") > maxBytes) return `must be at most ${maxBytes} bytes as JSON`;
  if (text.includes("\\u0000")) return "must not contain NUL characters";
  // JSON.stringify writes an unpaired surrogate as a \udXXX escape (a paired one stays raw).
  if (/\\ud[89a-f][0-9a-f]{2}/i.test(text)) return "must not contain unpaired UTF-16 surrogates";
  return null;
}

/** The body an event id stands for: what a repeat must match to be a duplicate rather than a conflict. */
export function bodyHash(e: { metric: string; quantity: string; timestamp: string; properties?: unknown }): string {
  // canonicalJson({ metric, properties?, quantity, timestamp }) written out (keys already in sorted order):
  // quantity and timestamp are normalised and need no escaping.
  const props = e.properties === undefined || e.properties === null ? "" : `"properties":${canonicalJson(e.properties)},`;
  return sha256Hex(`{"metric":${JSON.stringify(e.metric)},${props}"quantity":"${e.quantity}","timestamp":"${e.timestamp}"}`);
}
