// Usage ingestion and voids (docs/conventions.md, "Idempotency"), and the usage summary of a contract.
//
// One batch = one PostgreSQL transaction on a pool client (no Prisma on this hot path):
//   1. map the batch's customer/account ids to contracts (contract_identifiers, by term) and take a
//      FOR SHARE lock on those contracts, sorted, so a document cannot be issued for them while we decide
//      which events are late (issuing locks the contract FOR UPDATE); then read their issued periods;
//   2. one INSERT … SELECT FROM unnest(…) ORDER BY (customer_id, event_id) ON CONFLICT DO NOTHING, whose
//      RETURNING rows feed, in the same statement, the hourly rollup upsert (sorted by its key). The
//      unique index on (customer_id, event_id) is what makes it exactly once, also under concurrency;
//      the fixed lock order keeps concurrent batches from deadlocking (and 40P01/40001 are retried);
//   3. only the events that were not inserted are read back, to tell duplicates (same body_hash) from
//      conflicts (another body under the same id: the stored event is kept);
//   4. exceptions per group, not per event: late_usage per (contract, issued period), unmapped_usage per
//      (customer id, UTC month), in dedupe-key order;
//   5. the audit entry, last, so the chain's lock is held only until COMMIT.
// A crash anywhere before COMMIT leaves nothing: the batch is all or nothing.
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import type pg from "pg";
import type { Database } from "../db/client.js";
import { isRetryable } from "../db/errors.js";
import { type Sql, pgSql } from "../db/tx.js";
import { MAX_JSON_DEPTH, canonicalJson, deeperThan } from "../domain/canonical-json.js";
import { Decimal, formatDecimal } from "../domain/money.js";
import { formatInstant, periodContaining } from "../domain/periods.js";
import type { Meter } from "../domain/terms.js";
import { ProblemError, type FieldError, validationFailed } from "../http/problems.js";
import { usageBatchDigest } from "../domain/audit-signing.js";
import { newId } from "../db/ids.js";
import { appendAudit } from "./audit.js";
import { getContract, periodContractOf } from "./contracts.js";
import { dedupeKey, raiseException } from "./exceptions.js";
import { lateActivity, sumUsage } from "./usage-aggregates.js";

// ---------------------------------------------------------------------------------------------------------
// Limits and normalisation (pure; the HTTP schema uses the same functions, so it rejects exactly what
// the service would)

export const USAGE_LIMITS = {
  maxEvents: 10_000,
  maxIdLength: 200,
  maxMetricLength: 100,
  /** Serialized JSON of one event's properties, in UTF-8 bytes. */
  maxPropertiesBytes: 4096,
  maxReasonLength: 1000,
} as const;

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

const QUANTITY = /^(\d{1,29})(?:\.(\d{1,9}))?$/;

/** A non-negative decimal string fitting numeric(38,9), normalised: no leading zeros, no trailing fraction zeros. */
export function normalizeQuantity(text: string): string | null {
  const m = QUANTITY.exec(text);
  if (!m) return null;
  const int = m[1]!.replace(/^0+(?=\d)/, "");
  const frac = (m[2] ?? "").replace(/0+$/, "");
  return frac ? `${int}.${frac}` : int;
}

/** The properties' canonical JSON, or an error message (too deep, too large, or a NUL that jsonb cannot hold). */
export function checkProperties(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  // Before canonicalJson recurses: JSON.parse builds any depth, the recursion here would overflow the stack.
  const deep = deeperThan(value, MAX_JSON_DEPTH, "properties");
  if (deep) return `must not nest objects and arrays more than ${MAX_JSON_DEPTH} levels deep (${deep.length > 120 ? `${deep.slice(0, 120)}…` : deep})`;
  const text = canonicalJson(value);
  if (Buffer.byteLength(text, "utf8") > USAGE_LIMITS.maxPropertiesBytes)
    return `must be at most ${USAGE_LIMITS.maxPropertiesBytes} bytes as JSON`;
  if (text.includes("\\u0000")) return "must not contain NUL characters";
  // JSON.stringify writes an unpaired surrogate as a \udXXX escape (a paired one stays raw).
  if (/\\ud[89a-f][0-9a-f]{2}/i.test(text)) return "must not contain unpaired UTF-16 surrogates";
  return null;
}

export interface TimeWindow {
  maxAgeDays: number;
  maxFutureDays: number;
}

const DAY_MS = 86_400_000;

/** Why an instant falls outside the accepted window (config USAGE_MAX_AGE_DAYS / USAGE_MAX_FUTURE_DAYS), or null. */
export function outsideWindow(ms: number, window: TimeWindow, nowMs: number): string | null {
  if (ms < nowMs - window.maxAgeDays * DAY_MS)
    return `is more than ${window.maxAgeDays} days in the past (USAGE_MAX_AGE_DAYS); such usage needs a manual correction`;
  if (ms > nowMs + window.maxFutureDays * DAY_MS)
    return `is more than ${window.maxFutureDays} day(s) in the future (USAGE_MAX_FUTURE_DAYS); check the sender's clock`;
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Types

export interface UsageEventInput {
  eventId: string;
  customerId: string;
  metric: string;
  quantity: string;
  timestamp: string;
  properties?: Record<string, unknown> | null | undefined;
}

export interface IngestResult {
  accepted: number;
  duplicates: number;
  conflicts: { eventId: string; customerId: string; reason: string }[];
}

export interface VoidInput {
  customerId: string;
  eventIds: string[];
  reason: string;
}

export interface VoidResult {
  voided: number;
  alreadyVoided: number;
  notFound: string[];
}

interface PreparedEvent {
  index: number;
  customerId: string;
  eventId: string;
  metric: string;
  quantity: string;
  iso: string;
  ms: number;
  properties: string | null;
  hash: string;
  late: boolean;
  contractId: string | null;
  /** The issued period the event falls in, when late. */
  issued: IssuedPeriod | null;
}

interface IdentifierTerm {
  identifier: string;
  contractId: string;
  startMs: number;
  endMs: number | null;
}

interface IssuedPeriod {
  contractId: string;
  start: string;
  end: string;
  startMs: number;
  endMs: number;
  /** The latest issued document of the period. */
  documentId: string;
  issuedAt: string;
}

// crypto.hash (Node ≥ 20.12) is the one-shot form, about twice as fast for short inputs.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: "hex") => string }).hash;
const sha256 = oneShot ? (s: string) => oneShot("sha256", s, "hex") : (s: string) => createHash("sha256").update(s).digest("hex");
const keyOf = (customerId: string, eventId: string) => `${customerId}\u0000${eventId}`;

/** The body an event id stands for: what a repeat must match to be a duplicate rather than a conflict. */
export function bodyHash(e: { metric: string; quantity: string; timestamp: string; properties?: unknown }): string {
  // canonicalJson({ metric, properties?, quantity, timestamp }) written out (keys already in sorted order):
  // quantity and timestamp are normalised and need no escaping.
  const props = e.properties === undefined || e.properties === null ? "" : `"properties":${canonicalJson(e.properties)},`;
  return sha256(`{"metric":${JSON.stringify(e.metric)},${props}"quantity":"${e.quantity}","timestamp":"${e.timestamp}"}`);
}

// ---------------------------------------------------------------------------------------------------------
// Transactions on a pool client, retried on serialization failures and deadlocks

async function inTransaction<T>(db: Database, fn: (client: pg.PoolClient) => Promise<T>, retries = 5): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const client = await db.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (e) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackError) {
        broken = rollbackError as Error; // the connection is gone: do not return it to the pool
      }
      if (attempt < retries && isRetryable(e)) {
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
        continue;
      }
      throw e;
    } finally {
      client.release(broken);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Contracts, terms and issued periods of a set of identifiers

async function identifierTerms(sql: Sql, identifiers: string[]): Promise<Map<string, IdentifierTerm[]>> {
  const rows = await sql.query<{ identifier: string; contract_id: string; term_start: Date; term_end: Date | null }>(
    `SELECT identifier, contract_id::text AS contract_id, term_start, term_end
     FROM contract_identifiers WHERE identifier = ANY($1::text[])`,
    [identifiers],
  );
  const out = new Map<string, IdentifierTerm[]>();
  for (const r of rows) {
    const list = out.get(r.identifier) ?? [];
    list.push({ identifier: r.identifier, contractId: r.contract_id, startMs: r.term_start.getTime(), endMs: r.term_end?.getTime() ?? null });
    out.set(r.identifier, list);
  }
  return out;
}

function contractAt(terms: IdentifierTerm[] | undefined, ms: number): string | null {
  if (!terms) return null;
  for (const t of terms) if (t.startMs <= ms && (t.endMs === null || ms < t.endMs)) return t.contractId;
  return null;
}

/**
 * Locks the contracts FOR SHARE (sorted, so concurrent batches agree on the order) and then reads their
 * issued periods, in a separate statement so its snapshot is taken after any issue we waited for.
 */
async function lockAndReadIssuedPeriods(sql: Sql, contractIds: string[]): Promise<Map<string, IssuedPeriod[]>> {
  const out = new Map<string, IssuedPeriod[]>();
  if (contractIds.length === 0) return out;
  const sorted = [...contractIds].sort();
  await sql.query("SELECT id FROM contracts WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE", [sorted]);
  const rows = await sql.query<{ contract_id: string; id: string; period_start: Date; period_end: Date; issued_at: Date }>(
    `SELECT DISTINCT ON (contract_id, period_start) contract_id::text AS contract_id, id::text AS id, period_start, period_end, issued_at
     FROM documents WHERE contract_id = ANY($1::uuid[])
     ORDER BY contract_id, period_start, issued_at DESC, id DESC`,
    [sorted],
  );
  for (const r of rows) {
    const list = out.get(r.contract_id) ?? [];
    list.push({
      contractId: r.contract_id,
      start: r.period_start.toISOString(),
      end: r.period_end.toISOString(),
      startMs: r.period_start.getTime(),
      endMs: r.period_end.getTime(),
      documentId: r.id,
      issuedAt: r.issued_at.toISOString(),
    });
    out.set(r.contract_id, list);
  }
  return out;
}

function issuedPeriodAt(periods: IssuedPeriod[] | undefined, ms: number): IssuedPeriod | null {
  if (!periods) return null;
  for (const p of periods) if (p.startMs <= ms && ms < p.endMs) return p;
  return null;
}

async function contractIdentifiers(sql: Sql, contractId: string): Promise<string[]> {
  const rows = await sql.query<{ identifier: string }>("SELECT identifier FROM contract_identifiers WHERE contract_id = $1::uuid", [contractId]);
  return rows.map((r) => r.identifier);
}

// ---------------------------------------------------------------------------------------------------------
// Exceptions, one per group

interface LateGroup {
  kind: "late_usage";
  key: string;
  period: IssuedPeriod;
  arrived: number;
  voided: number;
}

interface UnmappedGroup {
  kind: "unmapped_usage";
  key: string;
  customerId: string;
  period: { start: string; end: string };
  events: number;
  metrics: Set<string>;
}

function utcMonth(ms: number): { start: string; end: string } {
  const d = new Date(ms);
  return {
    start: formatInstant(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)),
    end: formatInstant(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)),
  };
}

function lateGroup(groups: Map<string, LateGroup | UnmappedGroup>, p: IssuedPeriod): LateGroup {
  const key = dedupeKey({ kind: "late_usage", contractId: p.contractId, period: p, subject: p.documentId });
  let g = groups.get(key) as LateGroup | undefined;
  if (!g) {
    g = { kind: "late_usage", key, period: p, arrived: 0, voided: 0 };
    groups.set(key, g);
  }
  return g;
}

/** Raises the groups' exceptions in dedupe-key order (the row locks they take then never cross). */
async function raiseGroups(sql: Sql, groups: Map<string, LateGroup | UnmappedGroup>): Promise<void> {
  const sorted = [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const g of sorted) {
    if (g.kind === "late_usage") {
      const p = g.period;
      const ids = await contractIdentifiers(sql, p.contractId);
      const since = await lateActivity(sql, ids, p, p.issuedAt);
      await raiseException(sql, {
        kind: "late_usage",
        contractId: p.contractId,
        period: { start: p.start, end: p.end },
        subject: p.documentId,
        message:
          `${since.arrived} event(s) arrived and ${since.voided} were voided in the period ${p.start} – ${p.end} ` +
          `after document ${p.documentId} was issued; re-run the true-up`,
        details: {
          events: since.arrived + since.voided,
          arrived: since.arrived,
          voided: since.voided,
          documentId: p.documentId,
          issuedAt: p.issuedAt,
          lastBatch: { arrived: g.arrived, voided: g.voided },
        },
      });
    } else {
      // Counted across batches: the row is locked first so concurrent batches add up instead of overwriting.
      const [prior] = await sql.query<{ details: { events?: number; metrics?: string[] } }>(
        "SELECT details FROM exceptions WHERE dedupe_key = $1 FOR UPDATE",
        [g.key],
      );
      const events = (typeof prior?.details.events === "number" ? prior.details.events : 0) + g.events;
      const metrics = [...new Set([...(prior?.details.metrics ?? []), ...g.metrics])].sort();
      await raiseException(sql, {
        kind: "unmapped_usage",
        contractId: null,
        customerId: g.customerId,
        period: g.period,
        subject: "",
        message: `${events} event(s) of "${g.customerId}" in ${g.period.start.slice(0, 7)} map to no contract`,
        details: { events, metrics },
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ingestion

const INSERT_SQL = `
WITH ins AS (
  INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, properties, body_hash, late, received_at, batch_id)
  SELECT u.customer_id, u.event_id, u.metric, u.quantity, u.occurred_at, u.properties::jsonb, u.body_hash, u.late,
         (SELECT clock_timestamp()), $9::uuid
  FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::timestamptz[], $6::text[], $7::text[], $8::boolean[])
       AS u(customer_id, event_id, metric, quantity, occurred_at, properties, body_hash, late)
  ORDER BY u.customer_id, u.event_id
  ON CONFLICT (customer_id, event_id) DO NOTHING
  RETURNING customer_id, event_id, metric, quantity, occurred_at
),
hours AS (
  SELECT customer_id, metric, date_trunc('hour', occurred_at, 'UTC') AS hour, sum(quantity) AS quantity, count(*) AS events
  FROM ins GROUP BY 1, 2, 3
),
rolled AS (
  INSERT INTO usage_rollups (customer_id, metric, hour, quantity, events)
  SELECT customer_id, metric, hour, quantity, events FROM hours ORDER BY customer_id, metric, hour
  ON CONFLICT (customer_id, metric, hour) DO UPDATE
    SET quantity = usage_rollups.quantity + EXCLUDED.quantity, events = usage_rollups.events + EXCLUDED.events
)
-- Only the events that were NOT inserted come back (usually none), not the thousand that were.
SELECT u.customer_id, u.event_id FROM unnest($1::text[], $2::text[]) AS u(customer_id, event_id)
WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.customer_id = u.customer_id AND ins.event_id = u.event_id)`;

const EVENT_FIELDS = new Set(["eventId", "customerId", "metric", "quantity", "timestamp", "properties"]);
const CUSTOMER_ID = /^[^\s,\u0000-\u001f\u007f]+$/;
const EVENT_ID = /^[^\u0000-\u001f\u007f]+$/;
const METRIC = /^[A-Za-z0-9_.:-]+$/;
const QUANTITY_MESSAGE = "must be a non-negative decimal string with at most 29 integer and 9 fraction digits (never a JSON number)";

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkId(value: unknown, pattern: RegExp, max: number, rule: string): string | null {
  if (typeof value !== "string") return value === undefined ? "is required" : "must be a string";
  if (value.length === 0 || value.length > max) return `must be 1 to ${max} characters`;
  if (!pattern.test(value)) return rule;
  // An unpaired surrogate cannot be stored as UTF-8: it would become U+FFFD and merge distinct ids.
  if (UNPAIRED_SURROGATE.test(value)) return "must not contain unpaired UTF-16 surrogates";
  return null;
}

const UNPAIRED_SURROGATE = /\p{Cs}/u;

/**
 * Validates and normalises a whole batch in one pass (the route hands the parsed JSON body straight here:
 * a schema library costs more per event than the rest of ingestion). Throws one 400 naming every bad
 * event and field; nothing is stored then. The route's zod schema documents the same rules.
 */
export function parseUsageBatch(body: unknown, window: TimeWindow, nowMs: number): PreparedEvent[] {
  const errors: FieldError[] = [];
  if (!isPlainObject(body)) throw validationFailed([{ path: "body", message: "must be an object { events: [...] }" }]);
  for (const k of Object.keys(body)) if (k !== "events") errors.push({ path: "body", message: `unknown field "${k}"` });
  const events = body.events;
  if (!Array.isArray(events) || events.length === 0 || events.length > USAGE_LIMITS.maxEvents) {
    errors.push({ path: "body.events", message: `must be an array of 1 to ${USAGE_LIMITS.maxEvents} events` });
    if (!Array.isArray(events) || events.length === 0) throw validationFailed(errors);
  }
  const out: PreparedEvent[] = [];
  const bad = new Set<number>();
  const fail = (index: number, field: string | null, message: string) => {
    bad.add(index);
    errors.push({ path: field ? `body.events.${index}.${field}` : `body.events.${index}`, message });
  };
  for (let index = 0; index < events.length; index++) {
    const e: unknown = events[index];
    if (!isPlainObject(e)) {
      fail(index, null, "must be an object");
      continue;
    }
    for (const k of Object.keys(e)) if (!EVENT_FIELDS.has(k)) fail(index, null, `unknown field "${k}"`);
    const idError = checkId(e.eventId, EVENT_ID, USAGE_LIMITS.maxIdLength, "must not contain control characters");
    if (idError) fail(index, "eventId", idError);
    const customerError = checkId(e.customerId, CUSTOMER_ID, USAGE_LIMITS.maxIdLength, "must be non-empty without spaces, commas or control characters");
    if (customerError) fail(index, "customerId", customerError);
    const metricError = checkId(e.metric, METRIC, USAGE_LIMITS.maxMetricLength, "may contain only letters, digits and _ . : -");
    if (metricError) fail(index, "metric", metricError);
    const quantity = typeof e.quantity === "string" ? normalizeQuantity(e.quantity) : null;
    if (quantity === null) fail(index, "quantity", e.quantity === undefined ? "is required" : QUANTITY_MESSAGE);
    let ts: { iso: string; ms: number } | null = null;
    if (typeof e.timestamp !== "string") fail(index, "timestamp", e.timestamp === undefined ? "is required" : "must be a string");
    else {
      const parsed = parseEventTimestamp(e.timestamp);
      const why = typeof parsed === "string" ? parsed : outsideWindow(parsed.ms, window, nowMs);
      if (why) fail(index, "timestamp", why);
      else ts = parsed as { iso: string; ms: number };
    }
    const props = e.properties;
    if (props !== undefined && props !== null && !isPlainObject(props)) fail(index, "properties", "must be an object (or null)");
    else {
      const propsError = checkProperties(props);
      if (propsError) fail(index, "properties", propsError);
    }
    if (bad.has(index) || quantity === null || ts === null) continue;
    const properties = (props ?? undefined) as Record<string, unknown> | undefined;
    const metric = e.metric as string;
    out.push({
      index,
      customerId: e.customerId as string,
      eventId: e.eventId as string,
      metric,
      quantity,
      iso: ts.iso,
      ms: ts.ms,
      properties: properties === undefined ? null : JSON.stringify(properties),
      hash: bodyHash({ metric, quantity, timestamp: ts.iso, properties }),
      late: false,
      contractId: null,
      issued: null,
    });
  }
  if (errors.length)
    throw validationFailed(errors, `${bad.size} event(s) are not valid${bad.size ? "" : " (the batch is not)"}; nothing was stored`);
  return out;
}

/** An array literal of values known to need no escaping (digits, hex, normalised instants, metric names). */
const pgPlainArray = (values: readonly string[]): string => (values.length ? `{"${values.join('","')}"}` : "{}");

/** A PostgreSQL array literal of text (NULL for null), built directly: node-pg's generic escaping is a hot spot at 10,000 values. */
function pgTextArray(values: readonly (string | null)[]): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    parts[i] = v === null || v === undefined ? "NULL" : /["\\]/.test(v) ? `"${v.replace(/["\\]/g, "\\$&")}"` : `"${v}"`;
  }
  return `{${parts.join(",")}}`;
}

/**
 * Ingests a batch (the parsed JSON body): all or nothing, exactly once per (customerId, eventId).
 * Invalid input → 400 naming every bad event.
 */
export async function ingestUsage(db: Database, actor: string, body: unknown, window: TimeWindow, now: Date): Promise<IngestResult> {
  const prepared = parseUsageBatch(body, window, now.getTime());
  const received = prepared.length;

  // Repeats inside the batch: the first occurrence is the one stored; later ones are duplicates or conflicts.
  const firstOf = new Map<string, PreparedEvent>();
  const unique: PreparedEvent[] = [];
  let batchDuplicates = 0;
  const batchConflicts: IngestResult["conflicts"] = [];
  for (const e of prepared) {
    const key = keyOf(e.customerId, e.eventId);
    const first = firstOf.get(key);
    if (!first) {
      firstOf.set(key, e);
      unique.push(e);
    } else if (first.hash === e.hash) batchDuplicates++;
    else
      batchConflicts.push({
        eventId: e.eventId,
        customerId: e.customerId,
        reason: `repeats event ${first.index} of this batch with a different body (${differingFields(first, e).join(", ")})`,
      });
  }
  // The batch digest for the audit log: every event's id and body hash, in request order.
  const digest = sha256(prepared.map((e) => `${e.customerId}\u0000${e.eventId}\u0000${e.hash}\n`).join(""));
  const customers = [...new Set(unique.map((e) => e.customerId))].sort();
  // Every event this batch stores carries its id (usage_events.batch_id): what its audit entry attests.
  const batchId = newId();

  return inTransaction(db, async (client) => {
    const sql = pgSql(client);
    const terms = await identifierTerms(sql, customers);
    const contractIds = new Set<string>();
    for (const e of unique) {
      e.contractId = contractAt(terms.get(e.customerId), e.ms);
      if (e.contractId) contractIds.add(e.contractId);
    }
    const issued = await lockAndReadIssuedPeriods(sql, [...contractIds]);
    for (const e of unique) {
      e.issued = e.contractId ? issuedPeriodAt(issued.get(e.contractId), e.ms) : null;
      e.late = e.issued !== null;
    }

    const notInserted = await client.query<{ customer_id: string; event_id: string }>(INSERT_SQL, [
      pgTextArray(unique.map((e) => e.customerId)),
      pgTextArray(unique.map((e) => e.eventId)),
      pgPlainArray(unique.map((e) => e.metric)),
      pgPlainArray(unique.map((e) => e.quantity)),
      pgPlainArray(unique.map((e) => e.iso)),
      pgTextArray(unique.map((e) => e.properties)),
      pgPlainArray(unique.map((e) => e.hash)),
      `{${unique.map((e) => (e.late ? "t" : "f")).join(",")}}`,
      batchId,
    ]);
    const notInsertedKeys = new Set(notInserted.rows.map((r) => keyOf(r.customer_id, r.event_id)));

    // Only now read what was already there, for the events that were not inserted.
    const existing = notInsertedKeys.size ? unique.filter((e) => notInsertedKeys.has(keyOf(e.customerId, e.eventId))) : [];
    let duplicates = batchDuplicates;
    const conflicts = [...batchConflicts];
    if (existing.length) {
      const stored = await client.query<{ customer_id: string; event_id: string; body_hash: string }>(
        `SELECT customer_id, event_id, body_hash FROM usage_events
         WHERE (customer_id, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
        [existing.map((e) => e.customerId), existing.map((e) => e.eventId)],
      );
      const hashOf = new Map(stored.rows.map((r) => [keyOf(r.customer_id, r.event_id), r.body_hash]));
      const different = existing.filter((e) => hashOf.get(keyOf(e.customerId, e.eventId)) !== e.hash);
      duplicates += existing.length - different.length;
      conflicts.push(...(await describeConflicts(sql, different)));
    }

    const groups = new Map<string, LateGroup | UnmappedGroup>();
    let late = 0;
    let unmapped = 0;
    for (const e of unique) {
      if (notInsertedKeys.size && notInsertedKeys.has(keyOf(e.customerId, e.eventId))) continue;
      if (e.issued) {
        late++;
        lateGroup(groups, e.issued).arrived++;
      } else if (!e.contractId) {
        unmapped++;
        const period = utcMonth(e.ms);
        const key = dedupeKey({ kind: "unmapped_usage", contractId: null, customerId: e.customerId, period, subject: "" });
        let g = groups.get(key) as UnmappedGroup | undefined;
        if (!g) {
          g = { kind: "unmapped_usage", key, customerId: e.customerId, period, events: 0, metrics: new Set() };
          groups.set(key, g);
        }
        g.events++;
        g.metrics.add(e.metric);
      }
    }
    await raiseGroups(sql, groups);

    const result: IngestResult = { accepted: unique.length - notInsertedKeys.size, duplicates, conflicts };
    // attests: the digest of the events this batch stored (batch_id ties them to it), from what was just
    // inserted, without reading them back; a deep verify recomputes it from the rows. Nothing stored → nothing attested.
    const stored = notInsertedKeys.size ? unique.filter((e) => !notInsertedKeys.has(keyOf(e.customerId, e.eventId))) : unique;
    const attests =
      stored.length === 0
        ? undefined
        : {
            type: "usage_batch",
            id: batchId,
            digest: usageBatchDigest(stored.map((e) => ({ customerId: e.customerId, eventId: e.eventId, bodyHash: e.hash, storedBodyHash: e.hash, late: e.late }))),
          };
    await appendAudit(sql, {
      actor,
      action: "usage.ingested",
      entityType: "usage_batch",
      entityId: digest,
      payload: {
        events: received,
        accepted: result.accepted,
        duplicates,
        conflicts: conflicts.length,
        late,
        unmapped,
        customers: customers.length,
        digest,
        batchId,
        attests,
      },
    });
    return result;
  });
}

function differingFields(a: PreparedEvent, b: PreparedEvent): string[] {
  const out: string[] = [];
  if (a.metric !== b.metric) out.push("metric");
  if (a.quantity !== b.quantity) out.push("quantity");
  if (a.iso !== b.iso) out.push("timestamp");
  if ((a.properties === null ? null : canonicalJson(JSON.parse(a.properties))) !== (b.properties === null ? null : canonicalJson(JSON.parse(b.properties))))
    out.push("properties");
  return out;
}

/** Names what differs from the stored event (conflicts are rare, so this extra read is off the hot path). */
async function describeConflicts(sql: Sql, events: PreparedEvent[]): Promise<IngestResult["conflicts"]> {
  if (events.length === 0) return [];
  const rows = await sql.query<{ customer_id: string; event_id: string; metric: string; quantity: string; occurred: string; properties: unknown }>(
    `SELECT customer_id, event_id, metric, quantity::text AS quantity,
            to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred, properties
     FROM usage_events WHERE (customer_id, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [events.map((e) => e.customerId), events.map((e) => e.eventId)],
  );
  const byKey = new Map(rows.map((r) => [keyOf(r.customer_id, r.event_id), r]));
  return events.map((e) => {
    const s = byKey.get(keyOf(e.customerId, e.eventId));
    const fields: string[] = [];
    if (s) {
      if (s.metric !== e.metric) fields.push("metric");
      if (normalizeQuantity(s.quantity) !== e.quantity) fields.push("quantity");
      if (s.occurred !== e.iso) fields.push("timestamp");
      const storedProps = s.properties === null ? null : canonicalJson(s.properties);
      const givenProps = e.properties === null ? null : canonicalJson(JSON.parse(e.properties));
      if (storedProps !== givenProps) fields.push("properties");
    }
    return {
      eventId: e.eventId,
      customerId: e.customerId,
      reason: `an event with this id is already stored with a different ${fields.length ? fields.join(", ") : "body"}; the stored event is kept`,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Voids: corrections, never deletes

const VOID_SQL = `
WITH v AS (
  UPDATE usage_events SET voided_at = clock_timestamp(), void_reason = $3, voided_by = $4
  WHERE customer_id = $1 AND event_id = ANY($2::text[]) AND voided_at IS NULL
  RETURNING event_id, metric, quantity, occurred_at
),
hours AS (
  SELECT metric, date_trunc('hour', occurred_at, 'UTC') AS hour, sum(quantity) AS quantity, count(*) AS events
  FROM v GROUP BY 1, 2
),
rolled AS (
  -- The rollup row exists (its events were counted there); the upsert keeps the same lock order as ingestion.
  INSERT INTO usage_rollups (customer_id, metric, hour, quantity, events)
  SELECT $1, metric, hour, -quantity, -events FROM hours ORDER BY metric, hour
  ON CONFLICT (customer_id, metric, hour) DO UPDATE
    SET quantity = usage_rollups.quantity + EXCLUDED.quantity, events = usage_rollups.events + EXCLUDED.events
)
SELECT event_id, occurred_at FROM v`;

export async function voidUsage(db: Database, actor: string, input: VoidInput): Promise<VoidResult> {
  const ids = [...new Set(input.eventIds)].sort();
  return inTransaction(db, async (client) => {
    const sql = pgSql(client);
    const found = await sql.query<{ event_id: string; occurred_at: Date }>(
      "SELECT event_id, occurred_at FROM usage_events WHERE customer_id = $1 AND event_id = ANY($2::text[])",
      [input.customerId, ids],
    );
    const terms = await identifierTerms(sql, [input.customerId]);
    const contractIds = new Set<string>();
    for (const r of found) {
      const c = contractAt(terms.get(input.customerId), r.occurred_at.getTime());
      if (c) contractIds.add(c);
    }
    const issued = await lockAndReadIssuedPeriods(sql, [...contractIds]);

    const voided = await sql.query<{ event_id: string; occurred_at: Date }>(VOID_SQL, [input.customerId, ids, input.reason, actor]);
    const seen = new Set([...found.map((r) => r.event_id), ...voided.map((r) => r.event_id)]);
    const notFound = ids.filter((id) => !seen.has(id));

    const groups = new Map<string, LateGroup | UnmappedGroup>();
    let late = 0;
    for (const r of voided) {
      const ms = r.occurred_at.getTime();
      const contractId = contractAt(terms.get(input.customerId), ms);
      const p = contractId ? issuedPeriodAt(issued.get(contractId), ms) : null;
      if (p) {
        late++;
        lateGroup(groups, p).voided++;
      }
    }
    await raiseGroups(sql, groups);

    const result: VoidResult = { voided: voided.length, alreadyVoided: ids.length - notFound.length - voided.length, notFound };
    await appendAudit(sql, {
      actor,
      action: "usage.voided",
      entityType: "customer",
      entityId: input.customerId,
      payload: {
        customerId: input.customerId,
        reason: input.reason,
        requested: ids.length,
        voided: result.voided,
        alreadyVoided: result.alreadyVoided,
        notFound: notFound.length,
        inIssuedPeriods: late,
        digest: sha256(ids.join("\n")),
      },
    });
    return result;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Usage summary of a contract

export interface MeterUsage {
  metric: string;
  unit: string | null;
  used: string;
  included: string;
  remaining: string;
  shareUsed: string | null;
}

export interface UsageSummary {
  contractId: string;
  at: string;
  period: { start: string; end: string };
  version: number;
  meters: MeterUsage[];
  unmetered: { metric: string; used: string }[];
}

/**
 * Per meter of the version in force at `at`: usage of the whole billing period containing `at` (all the
 * contract's customer and account ids, non-voided events), against the meter's included units as written
 * (not prorated; the true-up prorates). Metrics used in the period without a meter are listed apart.
 */
export async function usageSummary(db: Database, contractId: string, at: string | undefined, now: Date): Promise<UsageSummary> {
  const contract = await getContract(db, contractId);
  const instant = at === undefined ? formatInstant(now.getTime()) : formatInstant(Date.parse(at));
  const period = periodContaining(periodContractOf(contract), instant);
  if (!period)
    throw validationFailed([{ path: "querystring.at", message: `must fall within the contract term (from ${contract.termStart}${contract.termEnd ? ` to ${contract.termEnd}` : ""})` }]);
  const atMs = Date.parse(instant);
  const version = [...contract.versions]
    .filter((v) => Date.parse(v.effectiveFrom) <= atMs)
    .sort((a, b) => Date.parse(a.effectiveFrom) - Date.parse(b.effectiveFrom) || a.version - b.version)
    .pop();
  if (!version) throw new ProblemError("conflict", `no version of contract ${contractId} is in force at ${instant}`);

  const rows = await sumUsage(pgSql(db.pool), [contract.customerId, ...contract.accountIds], [{ from: period.start, to: period.end }]);
  const used = new Map(rows.map((r) => [r.metric, new Decimal(r.quantity)]));
  const meters: MeterUsage[] = (version.terms.meters as Meter[]).map((m) => {
    const u = used.get(m.metric) ?? new Decimal(0);
    const included = new Decimal(m.included ?? "0");
    const remaining = Decimal.max(0, included.minus(u));
    return {
      metric: m.metric,
      unit: m.unit ?? null,
      used: formatDecimal(u),
      included: formatDecimal(included),
      remaining: formatDecimal(remaining),
      // Rounded half-up to 9 decimals (the scale of quantities); exact ratios rarely terminate.
      shareUsed: included.isZero() ? null : formatDecimal(u.dividedBy(included).toDecimalPlaces(9, Decimal.ROUND_HALF_UP)),
    };
  });
  const metered = new Set(meters.map((m) => m.metric));
  const unmetered = rows.filter((r) => !metered.has(r.metric)).map((r) => ({ metric: r.metric, used: r.quantity }));
  return { contractId, at: instant, period: { start: period.start, end: period.end }, version: version.version, meters, unmetered };
}
