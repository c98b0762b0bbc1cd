// Standard Webhooks (https://www.standardwebhooks.com, DESIGN.md §9): the signature over exactly the bytes
// sent, the retry schedule with its jitter, and what a receiver's answer means for the next attempt. Pure:
// randomness and "now" are given.
import { createHmac } from "node:crypto";

export const WEBHOOK_EVENT_TYPES = [
  "usage.threshold_crossed",
  "document.issued",
  "exception.raised",
  "exception.resolved",
  "reconciliation.completed",
  "billing_run.completed",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const SECRET_PREFIX = "whsec_";

/** `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the secret's decoded bytes. */
export function webhookSignature(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** The specification's schedule: seconds before each attempt (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h). */
export const STANDARD_RETRY_SCHEDULE: readonly number[] = [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

/** "0,1,1,2" → [0, 1, 1, 2]; null when the text is not a list of non-negative whole seconds. */
export function parseRetrySchedule(text: string): number[] | null {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length === 0 || parts.length > 100 || parts.some((p) => !/^\d{1,7}$/.test(p))) return null;
  return parts.map(Number);
}

/** The longest a Retry-After is honoured (DESIGN.md §9). */
export const MAX_RETRY_AFTER_SECONDS = 3600;

/** A Retry-After header (seconds or an HTTP date) as seconds from `nowMs`, capped at an hour; null when absent or unreadable. */
export function retryAfterSeconds(header: string | null, nowMs: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  const seconds = /^\d+$/.test(text) ? Number(text) : Number.isNaN(Date.parse(text)) ? null : Math.max(0, Math.ceil((Date.parse(text) - nowMs) / 1000));
  return seconds === null ? null : Math.min(seconds, MAX_RETRY_AFTER_SECONDS);
}

export type AttemptOutcome =
  | { kind: "succeeded" }
  /** 410 Gone: the receiver asks never to be called again; the endpoint is disabled. */
  | { kind: "gone" }
  | { kind: "failed"; retryAfterSeconds: number | null };

/** What a response status (or none: a network error, a timeout) means. Only a 2xx is success. */
export function outcomeOf(status: number | null, retryAfterHeader: string | null, nowMs: number): AttemptOutcome {
  if (status !== null && status >= 200 && status < 300) return { kind: "succeeded" };
  if (status === 410) return { kind: "gone" };
  const honoured = status === 429 || status === 503 ? retryAfterSeconds(retryAfterHeader, nowMs) : null;
  return { kind: "failed", retryAfterSeconds: honoured };
}

/**
 * Milliseconds before attempt `attempt + 1` after attempt `attempt` (from 1) failed; null when it was the
 * last (the delivery is exhausted). Each non-zero delay gets ±10% jitter (`random` in [0, 1)), so receivers
 * that failed together are not retried together; a Retry-After makes the wait at least that long.
 */
export function nextAttemptDelayMs(attempt: number, schedule: readonly number[], retryAfter: number | null, random: number): number | null {
  const planned = schedule[attempt];
  if (planned === undefined) return null;
  const jittered = planned === 0 ? 0 : Math.round(planned * 1000 * (0.9 + 0.2 * random));
  return Math.max(jittered, (retryAfter ?? 0) * 1000);
}

/**
 * Whether an address is private, loopback, link-local or otherwise not on the public internet (IPv4 and IPv6,
 * IPv4-mapped included): what WEBHOOK_DENY_PRIVATE refuses, at creation for literal hosts and at sending for
 * the addresses a name resolves to.
 */
export function isPrivateAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  const v4 = mapped ? mapped[1]! : a;
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(v4);
  if (m) {
    const [x, y] = [Number(m[1]), Number(m[2])];
    return x === 0 || x === 10 || x === 127 || (x === 100 && y >= 64 && y <= 127) || (x === 169 && y === 254) || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || x >= 224;
  }
  if (!a.includes(":")) return a === "localhost" || a.endsWith(".localhost");
  return a === "::" || a === "::1" || /^f[cd]/.test(a) || /^fe[89ab]/.test(a) || /^ff/.test(a);
}
