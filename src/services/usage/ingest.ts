// Usage ingestion (docs/conventions.md, "Idempotency"): a batch of events, all or nothing, exactly once per
// (customerId, eventId).
//
// One batch = one PostgreSQL transaction on a pool client (no Prisma on this hot path):
//   1. map the batch's customer/account ids to contracts (contract_identifiers, by term) and take those
//      contracts' advisory locks shared, in key order, so a document cannot be issued for them while we
//      decide which events are late (issuing takes them exclusive); then read their issued periods;
//   2. one INSERT of the events whose RETURNING rows feed, in the same statement, the hourly rollups
//      (db/queries/usage.ts, insertUsageEvents);
//   3. only the events that were not inserted are read back, to tell duplicates (same body_hash) from
//      conflicts (another body under the same id: the stored event is kept);
//   4. exceptions per group, not per event (late-and-unmapped.ts), in dedupe-key order;
//   5. the audit entry, last, so the chain's lock is held only until COMMIT.
// A crash anywhere before COMMIT leaves nothing: the batch is all or nothing.
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import {
  type IssuedPeriod,
  type NewUsageEvent,
  identifierTerms,
  insertUsageEvents,
  lockAndReadIssuedPeriods,
  lockIdentifiers,
  storedBodies,
  storedBodyHashes,
} from "../../db/queries/usage.js";
import type { Sql } from "../../db/sql.js";
import { enqueueAlertEvaluation } from "../../db/queries/jobs.js";
import { transaction } from "../../db/tx.js";
import { usageBatchDigest } from "../../domain/audit-signing.js";
import { canonicalJson } from "../../domain/canonical-json.js";
import { sha256Hex } from "../../domain/sha256.js";
import {
  type TimeWindow,
  USAGE_RULES,
  bodyHash,
  checkId,
  checkProperties,
  normalizeQuantity,
  outsideWindow,
  parseEventTimestamp,
} from "../../domain/usage-rules.js";
import { type FieldIssue, ValidationError } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { type ExceptionGroups, addUnmapped, contractAt, issuedPeriodAt, lateGroup, raiseGroups } from "./late-and-unmapped.js";

export interface IngestResult {
  accepted: number;
  duplicates: number;
  conflicts: { eventId: string; customerId: string; reason: string }[];
}

interface PreparedEvent extends NewUsageEvent {
  index: number;
  ms: number;
  contractId: string | null;
  /** The issued period the event falls in, when late. */
  issued: IssuedPeriod | null;
}

const keyOf = (customerId: string, eventId: string) => `${customerId}\u0000${eventId}`;

const EVENT_FIELDS = new Set(["eventId", "customerId", "metric", "quantity", "timestamp", "properties"]);

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Validates and normalises a whole batch in one pass (the route hands the parsed JSON body straight here:
 * a schema library costs more per event than the rest of ingestion). Throws one ValidationError naming
 * every bad event and field ("events.3.timestamp"); nothing is stored then. The HTTP schema documents the
 * same rules (domain/usage-rules.ts).
 */
function parseUsageBatch(body: unknown, window: TimeWindow, nowMs: number): PreparedEvent[] {
  const issues: FieldIssue[] = [];
  if (!isPlainObject(body)) throw new ValidationError([{ field: "", message: "must be an object { events: [...] }" }]);
  for (const k of Object.keys(body)) if (k !== "events") issues.push({ field: "", message: `unknown field "${k}"` });
  const events = body.events;
  if (!Array.isArray(events) || events.length === 0 || events.length > USAGE_RULES.maxEvents) {
    issues.push({ field: "events", message: `must be an array of 1 to ${USAGE_RULES.maxEvents} events` });
    if (!Array.isArray(events) || events.length === 0) throw new ValidationError(issues);
  }
  const out: PreparedEvent[] = [];
  const bad = new Set<number>();
  const fail = (index: number, field: string | null, message: string) => {
    bad.add(index);
    issues.push({ field: field ? `events.${index}.${field}` : `events.${index}`, message });
  };
  for (let index = 0; index < events.length; index++) {
    const e: unknown = events[index];
    if (!isPlainObject(e)) {
      fail(index, null, "must be an object");
      continue;
    }
    for (const k of Object.keys(e)) if (!EVENT_FIELDS.has(k)) fail(index, null, `unknown field "${k}"`);
    const idError = checkId(e.eventId, USAGE_RULES.eventId);
    if (idError) fail(index, "eventId", idError);
    const customerError = checkId(e.customerId, USAGE_RULES.customerId);
    if (customerError) fail(index, "customerId", customerError);
    const metricError = checkId(e.metric, USAGE_RULES.metric);
    if (metricError) fail(index, "metric", metricError);
    const quantity = typeof e.quantity === "string" ? normalizeQuantity(e.quantity) : null;
    if (quantity === null) fail(index, "quantity", e.quantity === undefined ? "is required" : USAGE_RULES.quantity.message);
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
  if (issues.length)
    throw new ValidationError(issues, `${bad.size} event(s) are not valid${bad.size ? "" : " (the batch is not)"}; nothing was stored`);
  return out;
}

/**
 * Ingests a batch (the parsed JSON body): all or nothing, exactly once per (customerId, eventId).
 * Invalid input → a ValidationError naming every bad event.
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
  const digest = sha256Hex(prepared.map((e) => `${e.customerId}\u0000${e.eventId}\u0000${e.hash}\n`).join(""));
  const customers = [...new Set(unique.map((e) => e.customerId))].sort();
  // Every event this batch stores carries its id (usage_events.batch_id): what its audit entry attests.
  const batchId = newId();

  return transaction(db, async (sql) => {
    await lockIdentifiers(sql, customers, "shared"); // a contract's rollup rebuild waits for this batch (and the reverse)
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

    const notInserted = await insertUsageEvents(sql, unique, batchId);
    const notInsertedKeys = new Set(notInserted.map((r) => keyOf(r.customer_id, r.event_id)));

    // Only now read what was already there, for the events that were not inserted.
    const existing = notInsertedKeys.size ? unique.filter((e) => notInsertedKeys.has(keyOf(e.customerId, e.eventId))) : [];
    let duplicates = batchDuplicates;
    const conflicts = [...batchConflicts];
    if (existing.length) {
      const stored = await storedBodyHashes(sql, existing);
      const hashOf = new Map(stored.map((r) => [keyOf(r.customer_id, r.event_id), r.body_hash]));
      const different = existing.filter((e) => hashOf.get(keyOf(e.customerId, e.eventId)) !== e.hash);
      duplicates += existing.length - different.length;
      conflicts.push(...(await describeConflicts(sql, different)));
    }

    const stored = notInsertedKeys.size ? unique.filter((e) => !notInsertedKeys.has(keyOf(e.customerId, e.eventId))) : unique;
    const groups: ExceptionGroups = new Map();
    let late = 0;
    let unmapped = 0;
    for (const e of unique) {
      if (notInsertedKeys.size && notInsertedKeys.has(keyOf(e.customerId, e.eventId))) continue;
      if (e.issued) {
        late++;
        lateGroup(groups, e.issued).arrived++;
      } else if (!e.contractId) {
        unmapped++;
        addUnmapped(groups, e.customerId, e.ms, e.metric);
      }
    }
    await raiseGroups(sql, groups);
    // The contracts whose usage changed have their alerts evaluated once this commits (a job in this transaction).
    await enqueueAlertEvaluation(sql, [...new Set(stored.flatMap((e) => (e.contractId ? [e.contractId] : [])))]);

    const result: IngestResult = { accepted: unique.length - notInsertedKeys.size, duplicates, conflicts };
    // attests: the digest of the events this batch stored (batch_id ties them to it), from what was just
    // inserted, without reading them back; a deep verify recomputes it from the rows. Nothing stored → nothing attested.
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
  const rows = await storedBodies(sql, events);
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
