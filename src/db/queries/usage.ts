// Usage SQL: ingestion's one insert-and-rollup statement, voids, the contract mapping and issued periods
// ingestion and voids read, and the aggregates for true-ups and previews (docs/rating.md, rule 2).
//
// usage_rollups (customer, metric, UTC hour) is kept by ingestion and voids in the same statement as the
// events. sumUsage reads whole UTC hours from usage_rollups and only the partial hours at a window's edges
// from usage_events. A month for one customer is then ~720 rollup rows per metric plus at most two hours of
// raw events, whatever the table's size. Edge hours are read through the (customer_id, metric, occurred_at)
// index: the (customer, metric) pairs to probe come from the rollup rows of those hours (every stored event
// has one), so the index is used with all three columns instead of scanning a customer's whole history.
import { Decimal, formatDecimal } from "../../domain/money.js";
import type { UsageAggregate, UsageWindow } from "../../domain/rating/types.js";
import type { Sql } from "../sql.js";
import { lockContractsShared } from "./contracts.js";
import { type AdvisoryLockClass, takeAdvisoryLocks } from "./locks.js";

// ---------------------------------------------------------------------------------------------------------
// Contracts, terms and issued periods of a set of identifiers

/** When an identifier (a customer or account id) belongs to a contract: [startMs, endMs). */
export interface IdentifierTerm {
  identifier: string;
  contractId: string;
  startMs: number;
  endMs: number | null;
}

/** A period of a contract with an issued document. */
export interface IssuedPeriod {
  contractId: string;
  start: string;
  end: string;
  startMs: number;
  endMs: number;
  /** The latest issued document of the period. */
  documentId: string;
  issuedAt: string;
}

/** The contract terms of each identifier. */
export async function identifierTerms(sql: Sql, identifiers: string[]): Promise<Map<string, IdentifierTerm[]>> {
  const rows = await sql.query<{ identifier: string; contract_id: string; term_start: Date; term_end: Date | null }>(
    `SELECT identifier, contract_id::text AS contract_id, term_start, term_end
     FROM contract_identifiers WHERE identifier = ANY($1::text[])`,
    [identifiers],
    "identifier_terms",
  );
  const out = new Map<string, IdentifierTerm[]>();
  for (const r of rows) {
    const list = out.get(r.identifier) ?? [];
    list.push({ identifier: r.identifier, contractId: r.contract_id, startMs: r.term_start.getTime(), endMs: r.term_end?.getTime() ?? null });
    out.set(r.identifier, list);
  }
  return out;
}

/**
 * Locks the contracts against issuing (lockContractsShared; issuing takes the same lock exclusive) and then
 * reads their issued periods, in a separate statement so its snapshot is taken after any issue we waited for.
 */
export async function lockAndReadIssuedPeriods(sql: Sql, contractIds: string[]): Promise<Map<string, IssuedPeriod[]>> {
  const out = new Map<string, IssuedPeriod[]>();
  if (contractIds.length === 0) return out;
  const sorted = [...contractIds].sort();
  await lockContractsShared(sql, sorted);
  const rows = await sql.query<{ contract_id: string; id: string; period_start: Date; period_end: Date; issued_at: Date }>(
    `SELECT DISTINCT ON (contract_id, period_start) contract_id::text AS contract_id, id::text AS id, period_start, period_end, issued_at
     FROM documents WHERE contract_id = ANY($1::uuid[])
     ORDER BY contract_id, period_start, issued_at DESC, id DESC`,
    [sorted],
    "issued_periods",
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

export async function contractIdentifiers(sql: Sql, contractId: string): Promise<string[]> {
  const rows = await sql.query<{ identifier: string }>("SELECT identifier FROM contract_identifiers WHERE contract_id = $1::uuid", [contractId]);
  return rows.map((r) => r.identifier);
}

/** The details of an exception, locked, so concurrent batches add their unmapped counts up instead of overwriting. */
export async function lockedExceptionDetails<T>(sql: Sql, dedupeKey: string): Promise<T | undefined> {
  const [row] = await sql.query<{ details: T }>("SELECT details FROM exceptions WHERE dedupe_key = $1 FOR UPDATE", [dedupeKey]);
  return row?.details;
}

// ---------------------------------------------------------------------------------------------------------
// Rollup dimensions: the properties the meters of an id's contracts filter on

/**
 * The advisory locks of customer and account ids. Ids share 64 of them (by bucket of their hash): a batch of
 * 10,000 customers must not hold 10,000 (the lock table is finite).
 */
const IDENTIFIER_LOCKS: AdvisoryLockClass = { id: 7301, name: "identifiers", buckets: 64 };

/**
 * Transaction-scoped advisory locks on ids (by bucket of their hash), in one sorted order: ingestion takes
 * them shared, creating or amending a contract exclusive, so an id's rollups are never rebuilt under new
 * dimensions while a batch of its events is being rolled up under the old ones (across every service
 * process). Taken before any row lock, in every transaction that takes them, so the order never inverts.
 */
export async function lockIdentifiers(sql: Sql, identifiers: readonly string[], mode: "shared" | "exclusive"): Promise<void> {
  await takeAdvisoryLocks(sql, IDENTIFIER_LOCKS, identifiers, mode);
}

/**
 * Brings usage_dimensions up to date for these ids: per id and metric, every property a meter of any version of
 * any contract of the id filters on, and every property a unique_count meter counts (uniqueBy). Returns the
 * (id, metric) pairs whose sets grew (new rows included): their rollups must be rebuilt, the hourly ones only
 * where the filtered properties grew (`dims_grew`). Reads the versions as stored, so call it after the version
 * is written.
 */
export async function refreshUsageDimensions(sql: Sql, identifiers: string[]): Promise<GrownDimensions[]> {
  if (identifiers.length === 0) return [];
  return sql.query<GrownDimensions>(
    `WITH meters AS (
       SELECT ci.identifier AS customer_id, m ->> 'metric' AS metric, m
       FROM contract_identifiers ci
       JOIN contract_versions v ON v.contract_id = ci.contract_id
       CROSS JOIN LATERAL jsonb_array_elements(v.terms -> 'meters') AS m
       WHERE ci.identifier = ANY($1::text[])
     ),
     wanted AS (
       SELECT customer_id, metric,
              coalesce(array_agg(DISTINCT k ORDER BY k) FILTER (WHERE k IS NOT NULL), '{}') AS properties,
              coalesce(array_agg(DISTINCT m ->> 'uniqueBy' ORDER BY m ->> 'uniqueBy')
                         FILTER (WHERE m ->> 'aggregation' = 'unique_count' AND m ->> 'uniqueBy' IS NOT NULL), '{}') AS unique_by
       FROM meters
       LEFT JOIN LATERAL jsonb_object_keys(CASE WHEN jsonb_typeof(m -> 'filter') = 'object' THEN m -> 'filter' ELSE '{}'::jsonb END) AS k ON TRUE
       GROUP BY 1, 2
     )
     INSERT INTO usage_dimensions (customer_id, metric, properties, unique_by)
     SELECT customer_id, metric, properties, unique_by FROM wanted
     WHERE properties <> '{}' OR unique_by <> '{}'
     ORDER BY customer_id, metric
     ON CONFLICT (customer_id, metric) DO UPDATE SET properties = EXCLUDED.properties, unique_by = EXCLUDED.unique_by
       WHERE NOT (usage_dimensions.properties @> EXCLUDED.properties AND usage_dimensions.unique_by @> EXCLUDED.unique_by)
     RETURNING customer_id, metric, coalesce(NOT (old.properties @> new.properties), new.properties <> '{}') AS dims_grew`,
    [[...new Set(identifiers)].sort()],
  );
}

/** A pair whose usage_dimensions grew; `dims_grew` when its filtered properties did (the hourly rollups' dims). */
export interface GrownDimensions {
  customer_id: string;
  metric: string;
  dims_grew: boolean;
}

/**
 * Recomputes the rollups of these (id, metric) pairs from their non-voided events, under their current
 * dimensions: the hourly sums and, for the properties unique_count meters count, the distinct-value rows.
 */
export async function rebuildRollups(sql: Sql, pairs: readonly { customer_id: string; metric: string }[]): Promise<void> {
  await rebuildHourlyRollups(sql, pairs);
  await rebuildUniqueValues(sql, pairs);
}

/** The hourly sums of these pairs, from their non-voided events, under their current dims. */
export async function rebuildHourlyRollups(sql: Sql, pairs: readonly { customer_id: string; metric: string }[]): Promise<void> {
  if (pairs.length === 0) return;
  const params = [pairs.map((p) => p.customer_id), pairs.map((p) => p.metric)];
  // Emptied, not deleted (the runtime role deletes nothing): rows left at zero events (or no hour) are read as absent.
  await sql.query(
    `UPDATE usage_rollups r SET quantity = 0, events = 0, max_quantity = NULL
     FROM unnest($1::text[], $2::text[]) AS p(customer_id, metric)
     WHERE r.customer_id = p.customer_id AND r.metric = p.metric`,
    params,
  );
  await sql.query(
    `INSERT INTO usage_rollups (customer_id, metric, hour, dims, quantity, events, max_quantity)
     SELECT e.customer_id, e.metric, date_trunc('hour', e.occurred_at, 'UTC'), ${dimsOf("e.properties")},
            sum(e.quantity), count(*), max(e.quantity)
     FROM unnest($1::text[], $2::text[]) AS p(customer_id, metric)
     JOIN usage_events e ON e.customer_id = p.customer_id AND e.metric = p.metric AND e.voided_at IS NULL
     LEFT JOIN usage_dimensions d ON d.customer_id = e.customer_id AND d.metric = e.metric
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
     ON CONFLICT (customer_id, metric, hour, dims) DO UPDATE
       SET quantity = EXCLUDED.quantity, events = EXCLUDED.events, max_quantity = EXCLUDED.max_quantity`,
    params,
  );
}

/** The distinct-value rows of these pairs (usage_dimensions.unique_by), from their non-voided events. */
export async function rebuildUniqueValues(sql: Sql, pairs: readonly { customer_id: string; metric: string }[]): Promise<void> {
  if (pairs.length === 0) return;
  // Only the pairs that count some property (or kept rows for one: none is ever dropped from unique_by).
  const counted = await sql.query<{ customer_id: string; metric: string }>(
    `SELECT d.customer_id, d.metric FROM usage_dimensions d
     JOIN unnest($1::text[], $2::text[]) AS p(customer_id, metric) ON d.customer_id = p.customer_id AND d.metric = p.metric
     WHERE d.unique_by <> '{}'`,
    [pairs.map((p) => p.customer_id), pairs.map((p) => p.metric)],
  );
  if (counted.length === 0) return;
  // One id and metric at a time, so the planner knows the id's event count and hashes the values (a few per
  // distinct value and month) rather than sorting the events.
  await sql.query("SET LOCAL work_mem = '256MB'");
  for (const p of counted) {
    await sql.query(
      `UPDATE usage_unique_values SET hours = ${NO_HOURS} WHERE customer_id = $1 AND metric = $2 AND hours <> ${NO_HOURS}`,
      [p.customer_id, p.metric],
    );
    await sql.query(
      `INSERT INTO usage_unique_values (customer_id, metric, property, month, dims, value, hours)
       ${distinctValuesOfEvents("d.customer_id = $1 AND d.metric = $2")}
       ON CONFLICT (customer_id, metric, property, month, dims, value) DO UPDATE SET hours = EXCLUDED.hours`,
      [p.customer_id, p.metric],
    );
  }
  await sql.query("SET LOCAL work_mem TO DEFAULT");
}

// ---------------------------------------------------------------------------------------------------------
// Ingestion

/** An event as stored: ids as given, quantity and instant normalised, properties as JSON text. */
export interface NewUsageEvent {
  customerId: string;
  eventId: string;
  metric: string;
  quantity: string;
  /** UTC, six fraction digits. */
  iso: string;
  properties: string | null;
  hash: string;
  late: boolean;
}

/**
 * An event's rollup dimensions: the values of the properties some meter of its id's contracts filters on
 * (usage_dimensions `d`, joined on the event's id and metric), '{}' for the common case of none.
 */
export const dimsOf = (props: string) => `CASE WHEN d.properties IS NULL OR d.properties = '{}' THEN '{}' ELSE usage_dims(${props}, d.properties) END`;
const DIMS_OF_INS = dimsOf("ins.properties");

// The UTC month and hour by arithmetic on the instant: date_trunc(…, 'UTC') on a timestamptz looks the zone up
// for every row, which costs several times more over a million events.
/** The start of the UTC month of `at` (a timestamptz). */
export const monthOf = (at: string) => `(date_trunc('month', ${at} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;
/** A distinct-value row's bit for the UTC hour of `at` within its UTC month (bit 0: the month's first hour). */
export const hourBit = (at: string) =>
  `(B'1'::bit(744) >> (floor(extract(epoch FROM ${at}) / 3600) - extract(epoch FROM date_trunc('month', ${at} AT TIME ZONE 'UTC')) / 3600)::int)`;
/**
 * The distinct-value rows the non-voided events stand for, of the usage_dimensions rows `d` matching `where`:
 * per id, metric, counted property, UTC month, dims and value, the hours it occurs in (each key computed once:
 * OFFSET 0 keeps the planner from copying its expression into the filter). What a rebuild writes and the deep
 * audit compares.
 */
export const distinctValuesOfEvents = (where: string) => `
  SELECT x.customer_id, x.metric, x.property, x.month, x.dims, x.value, bit_or(x.bit) AS hours
  FROM (
    SELECT e.customer_id, e.metric, k.property, ${monthOf("e.occurred_at")} AS month, ${dimsOf("e.properties")} AS dims,
           usage_unique_key(e.properties -> k.property) AS value, ${hourBit("e.occurred_at")} AS bit
    FROM usage_dimensions d CROSS JOIN unnest(d.unique_by) AS k(property)
    JOIN usage_events e ON e.customer_id = d.customer_id AND e.metric = d.metric AND e.voided_at IS NULL
    WHERE ${where}
    OFFSET 0
  ) x
  WHERE x.value IS NOT NULL
  GROUP BY x.customer_id, x.metric, x.property, x.month, x.dims, x.value`;

/** A distinct-value row whose value occurs in no hour (emptied by a rebuild, or every event voided). */
export const NO_HOURS = "B'0'::bit(744)";

// One INSERT … SELECT FROM unnest(…) ORDER BY (customer_id, event_id) ON CONFLICT DO NOTHING, whose
// RETURNING rows feed, in the same statement, the hourly rollup upsert (sorted by its key). The unique
// index on (customer_id, event_id) is what makes it exactly once, also under concurrency; the fixed lock
// order keeps concurrent batches from deadlocking (and 40P01/40001 are retried).
const INSERT_SQL = `
WITH ins AS (
  INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, properties, body_hash, late, received_at, batch_id)
  SELECT u.customer_id, u.event_id, u.metric, u.quantity, u.occurred_at, u.properties::jsonb, u.body_hash, u.late,
         (SELECT clock_timestamp()), $9::uuid
  FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::timestamptz[], $6::text[], $7::text[], $8::boolean[])
       AS u(customer_id, event_id, metric, quantity, occurred_at, properties, body_hash, late)
  ORDER BY u.customer_id, u.event_id
  ON CONFLICT (customer_id, event_id) DO NOTHING
  RETURNING customer_id, event_id, metric, quantity, occurred_at, properties
),
hours AS (
  SELECT ins.customer_id, ins.metric, date_trunc('hour', ins.occurred_at, 'UTC') AS hour,
         ${DIMS_OF_INS} AS dims,
         sum(ins.quantity) AS quantity, count(*) AS events, max(ins.quantity) AS max_quantity
  FROM ins LEFT JOIN usage_dimensions d ON d.customer_id = ins.customer_id AND d.metric = ins.metric
  GROUP BY 1, 2, 3, 4
),
rolled AS (
  INSERT INTO usage_rollups (customer_id, metric, hour, dims, quantity, events, max_quantity)
  SELECT customer_id, metric, hour, dims, quantity, events, max_quantity FROM hours ORDER BY customer_id, metric, hour, dims
  ON CONFLICT (customer_id, metric, hour, dims) DO UPDATE
    SET quantity = usage_rollups.quantity + EXCLUDED.quantity, events = usage_rollups.events + EXCLUDED.events,
        max_quantity = GREATEST(usage_rollups.max_quantity, EXCLUDED.max_quantity)
),
-- The distinct values unique_count meters count (usage_dimensions.unique_by, usually none): the hours they occur in.
uniq AS (
  INSERT INTO usage_unique_values (customer_id, metric, property, month, dims, value, hours)
  SELECT ins.customer_id, ins.metric, k.property, ${monthOf("ins.occurred_at")}, ${DIMS_OF_INS},
         usage_unique_key(ins.properties -> k.property), bit_or(${hourBit("ins.occurred_at")})
  FROM ins JOIN usage_dimensions d ON d.customer_id = ins.customer_id AND d.metric = ins.metric AND d.unique_by <> '{}'
  CROSS JOIN unnest(d.unique_by) AS k(property)
  WHERE usage_unique_key(ins.properties -> k.property) IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
  ON CONFLICT (customer_id, metric, property, month, dims, value) DO UPDATE SET hours = usage_unique_values.hours | EXCLUDED.hours
)
-- Only the events that were NOT inserted come back (usually none), not the thousand that were.
SELECT u.customer_id, u.event_id FROM unnest($1::text[], $2::text[]) AS u(customer_id, event_id)
WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.customer_id = u.customer_id AND ins.event_id = u.event_id)`;

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
 * Inserts the events (ids unique within the call) and adds them to the hourly rollups, exactly once per
 * (customerId, eventId). Returns the ids that were already stored, hence not inserted.
 */
export async function insertUsageEvents(
  sql: Sql,
  events: readonly NewUsageEvent[],
  batchId: string,
): Promise<{ customer_id: string; event_id: string }[]> {
  return sql.query<{ customer_id: string; event_id: string }>(INSERT_SQL, [
    pgTextArray(events.map((e) => e.customerId)),
    pgTextArray(events.map((e) => e.eventId)),
    pgPlainArray(events.map((e) => e.metric)),
    pgPlainArray(events.map((e) => e.quantity)),
    pgPlainArray(events.map((e) => e.iso)),
    pgTextArray(events.map((e) => e.properties)),
    pgPlainArray(events.map((e) => e.hash)),
    `{${events.map((e) => (e.late ? "t" : "f")).join(",")}}`,
    batchId,
  ], "insert_usage_events");
}

/** The stored body hashes of these events. */
export async function storedBodyHashes(
  sql: Sql,
  events: readonly { customerId: string; eventId: string }[],
): Promise<{ customer_id: string; event_id: string; body_hash: string }[]> {
  return sql.query<{ customer_id: string; event_id: string; body_hash: string }>(
    `SELECT customer_id, event_id, body_hash FROM usage_events
     WHERE (customer_id, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [events.map((e) => e.customerId), events.map((e) => e.eventId)],
  );
}

/** The stored bodies of these events, the instant in the stored form (UTC, six fraction digits). */
export async function storedBodies(
  sql: Sql,
  events: readonly { customerId: string; eventId: string }[],
): Promise<{ customer_id: string; event_id: string; metric: string; quantity: string; occurred: string; properties: unknown }[]> {
  return sql.query<{ customer_id: string; event_id: string; metric: string; quantity: string; occurred: string; properties: unknown }>(
    `SELECT customer_id, event_id, metric, quantity::text AS quantity,
            to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred, properties
     FROM usage_events WHERE (customer_id, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [events.map((e) => e.customerId), events.map((e) => e.eventId)],
  );
}

// ---------------------------------------------------------------------------------------------------------
// Voids: corrections, never deletes

const VOID_SQL = `
WITH v AS (
  UPDATE usage_events SET voided_at = clock_timestamp(), void_reason = $3, voided_by = $4
  WHERE customer_id = $1 AND event_id = ANY($2::text[]) AND voided_at IS NULL
  RETURNING event_id, metric, quantity, occurred_at, properties
),
hours AS (
  SELECT v.metric, date_trunc('hour', v.occurred_at, 'UTC') AS hour, ${dimsOf("v.properties")} AS dims,
         sum(v.quantity) AS quantity, count(*) AS events
  FROM v LEFT JOIN usage_dimensions d ON d.customer_id = $1 AND d.metric = v.metric
  GROUP BY 1, 2, 3
),
rolled AS (
  -- The rollup row exists (its events were counted there); the upsert keeps the same lock order as ingestion.
  -- The hour's largest quantity is read again without the voided events (this statement's snapshot still
  -- sees them unvoided, hence the explicit NOT event_id = ANY).
  INSERT INTO usage_rollups (customer_id, metric, hour, dims, quantity, events, max_quantity)
  SELECT $1, h.metric, h.hour, h.dims, -h.quantity, -h.events,
         (SELECT max(e.quantity) FROM usage_events e LEFT JOIN usage_dimensions d ON d.customer_id = $1 AND d.metric = e.metric
          WHERE e.customer_id = $1 AND e.metric = h.metric AND e.occurred_at >= h.hour AND e.occurred_at < h.hour + interval '1 hour'
            AND e.voided_at IS NULL AND NOT (e.event_id = ANY($2::text[])) AND ${dimsOf("e.properties")} = h.dims)
  FROM hours h ORDER BY h.metric, h.hour, h.dims
  ON CONFLICT (customer_id, metric, hour, dims) DO UPDATE
    SET quantity = usage_rollups.quantity + EXCLUDED.quantity, events = usage_rollups.events + EXCLUDED.events,
        max_quantity = EXCLUDED.max_quantity
),
-- A voided event's value leaves its hour unless another non-voided event of that hour still has it (read as
-- above: the voided ones excluded by id). The ids are locked exclusive first (voidUsage), so no batch is
-- adding one meanwhile.
gone AS (
  SELECT v.metric, k.property, date_trunc('hour', v.occurred_at, 'UTC') AS hour, ${dimsOf("v.properties")} AS dims,
         usage_unique_key(v.properties -> k.property) AS value
  FROM v JOIN usage_dimensions d ON d.customer_id = $1 AND d.metric = v.metric AND d.unique_by <> '{}'
  CROSS JOIN unnest(d.unique_by) AS k(property)
  WHERE usage_unique_key(v.properties -> k.property) IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5
),
unhoured AS (
  UPDATE usage_unique_values u SET hours = u.hours & ~x.bits
  FROM (
    SELECT g.metric, g.property, ${monthOf("g.hour")} AS month, g.dims, g.value, bit_or(${hourBit("g.hour")}) AS bits
    FROM gone g
    WHERE NOT EXISTS (
      SELECT 1 FROM usage_events e LEFT JOIN usage_dimensions d ON d.customer_id = $1 AND d.metric = e.metric
      WHERE e.customer_id = $1 AND e.metric = g.metric AND e.occurred_at >= g.hour AND e.occurred_at < g.hour + interval '1 hour'
        AND e.voided_at IS NULL AND NOT (e.event_id = ANY($2::text[])) AND usage_unique_key(e.properties -> g.property) = g.value
        AND ${dimsOf("e.properties")} = g.dims)
    GROUP BY 1, 2, 3, 4, 5
  ) x
  WHERE u.customer_id = $1 AND u.metric = x.metric AND u.property = x.property AND u.month = x.month AND u.dims = x.dims AND u.value = x.value
)
SELECT event_id, occurred_at FROM v`;

/** The customer's stored events among these ids, voided or not. */
export async function findUsageEvents(sql: Sql, customerId: string, eventIds: string[]): Promise<{ event_id: string; occurred_at: Date }[]> {
  return sql.query<{ event_id: string; occurred_at: Date }>(
    "SELECT event_id, occurred_at FROM usage_events WHERE customer_id = $1 AND event_id = ANY($2::text[])",
    [customerId, eventIds],
  );
}

/** Voids the customer's events not voided yet and takes them out of the rollups; returns those it voided. */
export async function voidUsageEvents(
  sql: Sql,
  customerId: string,
  eventIds: string[],
  reason: string,
  actor: string,
): Promise<{ event_id: string; occurred_at: Date }[]> {
  return sql.query<{ event_id: string; occurred_at: Date }>(VOID_SQL, [customerId, eventIds, reason, actor]);
}

// ---------------------------------------------------------------------------------------------------------
// Aggregates

const SUM_USAGE_SQL = `
WITH w AS (
  SELECT u.i, u.f, u.t,
         CASE WHEN date_trunc('hour', u.f, 'UTC') = u.f THEN u.f
              ELSE date_trunc('hour', u.f, 'UTC') + interval '1 hour' END AS hs,
         date_trunc('hour', u.t, 'UTC') AS he
  FROM unnest($2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS u(f, t, i)
  WHERE u.f < u.t
),
pieces AS (
  -- The parts of each window that whole hours do not cover: [f, hs) and [he, t), or all of [f, t)
  -- when the window holds no whole hour.
  SELECT i, f AS a, CASE WHEN hs < he THEN hs ELSE t END AS b FROM w
  UNION ALL
  SELECT i, he, t FROM w WHERE hs < he AND he < t
),
whole AS (
  SELECT w.i, r.metric, r.quantity
  FROM w CROSS JOIN LATERAL (
    SELECT r.metric, sum(r.quantity) AS quantity FROM usage_rollups r
    WHERE r.customer_id = ANY($1::text[]) AND r.hour >= w.hs AND r.hour < w.he
    GROUP BY r.metric
  ) r
  WHERE w.hs < w.he
),
partial AS (
  -- LATERAL per (piece, customer, metric): always a parameterised range scan of the events index, never a
  -- join the planner could turn into a scan of the whole table.
  SELECT p.i, k.metric, s.quantity
  FROM pieces p
  CROSS JOIN LATERAL (
    SELECT DISTINCT r.customer_id, r.metric FROM usage_rollups r
    WHERE r.customer_id = ANY($1::text[]) AND r.hour >= date_trunc('hour', p.a, 'UTC') AND r.hour < p.b AND r.events > 0
  ) k
  CROSS JOIN LATERAL (
    SELECT sum(e.quantity) AS quantity FROM usage_events e
    WHERE e.customer_id = k.customer_id AND e.metric = k.metric
      AND e.occurred_at >= p.a AND e.occurred_at < p.b AND e.voided_at IS NULL
  ) s
  WHERE p.a < p.b AND s.quantity IS NOT NULL
)
SELECT x.i::int AS i, x.metric, sum(x.quantity)::text AS quantity
FROM (SELECT i, metric, quantity FROM whole UNION ALL SELECT i, metric, quantity FROM partial) x
GROUP BY x.i, x.metric
HAVING sum(x.quantity) <> 0
ORDER BY x.i, x.metric`;

/**
 * For each half-open window [from, to) (ISO instants), the sum of non-voided event quantities per metric
 * over the given customer ids, in one round trip. Zero sums are omitted; `from` and `to` are echoed as
 * given; quantities are plain decimal strings without trailing zeros.
 */
export async function sumUsage(sql: Sql, customerIds: string[], windows: UsageWindow[]): Promise<UsageAggregate[]> {
  if (customerIds.length === 0 || windows.length === 0) return [];
  const rows = await sql.query<{ i: number; metric: string; quantity: string }>(
    SUM_USAGE_SQL,
    [[...new Set(customerIds)], windows.map((w) => w.from), windows.map((w) => w.to)],
    "sum_usage", // every rating runs it: parsed and planned once per connection
  );
  return rows.map((r) => {
    const w = windows[r.i - 1]!;
    return { from: w.from, to: w.to, metric: r.metric, quantity: formatDecimal(new Decimal(r.quantity)) };
  });
}

/**
 * Activity in a period after an instant (for the late_usage check of a preview): `arrived` = events of the
 * period (start ≤ timestamp < end; with `lookBack`, any timestamp before end) received after `since`, voided or
 * not; `voided` = such events voided after `since`. An event that arrives after its period's document is
 * always flagged `late` by ingestion (it locks the contract and sees the document), so both counts read small
 * partial indexes.
 */
export async function lateActivity(
  sql: Sql,
  customerIds: string[],
  period: { start: string; end: string },
  since: string,
  lookBack = false,
): Promise<{ arrived: number; voided: number }> {
  if (customerIds.length === 0) return { arrived: 0, voided: 0 };
  const from = lookBack ? "-infinity" : period.start;
  const [row] = await sql.query<{ arrived: number; voided: number }>(
    `SELECT (SELECT count(*) FROM usage_events
             WHERE late AND customer_id = ANY($1::text[]) AND received_at > $4::timestamptz
               AND occurred_at >= $2::timestamptz AND occurred_at < $3::timestamptz)::int AS arrived,
            (SELECT count(*) FROM usage_events
             WHERE voided_at IS NOT NULL AND customer_id = ANY($1::text[]) AND voided_at > $4::timestamptz
               AND occurred_at >= $2::timestamptz AND occurred_at < $3::timestamptz)::int AS voided`,
    [[...new Set(customerIds)], from, period.end, since],
    "late_activity",
  );
  return { arrived: row?.arrived ?? 0, voided: row?.voided ?? 0 };
}
