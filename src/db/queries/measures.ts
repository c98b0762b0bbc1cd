// The figures of meters other than an unfiltered sum (docs/rating.md, "What a meter measures"), one per window
// and measure, over a contract's customer and account ids; what each figure means is said once, in
// src/domain/rating/measures.ts.
//
// Where each is read from (docs/rating.md, "Where the figures come from"):
//  - sum, count, max: whole UTC hours from usage_rollups (filtered by their dims), the partial hours at the
//    window's edges from the events index: never a period's events;
//  - latest: one backward step of the (customer_id, metric, occurred_at) index per id;
//  - unique_count: the distinct-value rollups (usage_unique_values: per UTC month and value, the hours it
//    occurs in) for whole hours, the edges from the events index; from the window's events only when the ids
//    do not keep them for that property (a what-if's new meter);
//  - time_weighted: the window's events of the metric through that index, plus the latest level before it.
// Events at one instant are ordered by arrival, then customer and event id (the last is the latest).
//
// Cost (bench:trueup): a filter is plain SQL on the row (`properties -> key = ANY(values)`), never a function
// call per row, and on the rollups it is applied to each distinct dims once, after the hours are summed;
// time_weighted reads its events in index order (one index range per id, merged), so its window function
// sorts only the events of one instant, and the level carried in is a separate one-row lookup;
// unique_count reads one row per distinct value and month and counts them as one merged sorted stream (its
// filter is applied to each row's dims).
import { createHash } from "node:crypto";
import { Decimal, formatDecimal } from "../../domain/money.js";
import type { Filter, Measure, MeasuredUsage } from "../../domain/rating/measures.js";
import type { Sql } from "../sql.js";

const HOUR_MS = 3_600_000;
/** A distinct-value row's hours: one bit per hour of a UTC month, 31 × 24 (usage_unique_values.hours). */
const MONTH_BITS = 744;

/**
 * A prepared statement's name for a measure's text when it has no filter: those texts are few (one per
 * aggregation and, for time_weighted, per number of ids), so each connection parses and plans each once. A
 * filter's text depends on its shape, which contracts choose: those stay unnamed.
 */
const statementName = (filter: Filter | null, text: string): string | undefined =>
  filter === null ? `measure_${createHash("sha1").update(text).digest("hex").slice(0, 16)}` : undefined;

/**
 * The meter's filter as a condition on `props` (an event's properties, or a rollup's dims as jsonb), its values
 * appended to `params`: for every property named, its value is one of the values. jsonb equality with the
 * filter's JSON scalars (so "1" and 1 differ, 1 and 1.0 do not; a missing property is NULL: no match) is what
 * the usage_matches function means, without its per-row call. Use it only where NULL counts as false (WHERE).
 * Also what a document line's drill-down selects (queries/line-events.ts): one definition of a meter's events.
 */
export function filterSql(props: string, filter: Filter | null, params: unknown[]): string {
  if (filter === null) return "TRUE";
  const parts: string[] = [];
  for (const [property, values] of Object.entries(filter)) {
    params.push(property, values.map((v) => JSON.stringify(v)));
    parts.push(`(${props} -> $${params.length - 1}::text) = ANY($${params.length}::jsonb[])`);
  }
  return parts.join(" AND ");
}

interface Part {
  quantity: string | null;
  events: string | null;
  max_quantity: string | null;
}

/** Whole hours [$3, $4) from the rollups; a filter is applied to each distinct dims once, after the hours are summed. */
function rollupSql(filter: Filter | null, params: unknown[]): string {
  const where = `r.customer_id = ANY($1::text[]) AND r.metric = $2 AND r.hour >= $3::timestamptz AND r.hour < $4::timestamptz AND r.events > 0`;
  if (filter === null) {
    return `SELECT sum(r.quantity)::text AS quantity, sum(r.events)::text AS events, max(r.max_quantity)::text AS max_quantity
            FROM usage_rollups r WHERE ${where}`;
  }
  // MATERIALIZED: the filter must not be pushed down into the scan (it only names the grouping column).
  return `WITH g AS MATERIALIZED (
            SELECT r.dims, sum(r.quantity) AS quantity, sum(r.events) AS events, max(r.max_quantity) AS max_quantity
            FROM usage_rollups r WHERE ${where} GROUP BY r.dims
          )
          SELECT sum(g.quantity)::text AS quantity, sum(g.events)::text AS events, max(g.max_quantity)::text AS max_quantity
          FROM g WHERE ${filterSql("g.dims::jsonb", filter, params)}`;
}

/** The partial hours ($3[i], $4[i]) from the events index. */
function edgesSql(filter: Filter | null, params: unknown[]): string {
  return `
SELECT sum(x.quantity)::text AS quantity, sum(x.events)::text AS events, max(x.max_quantity)::text AS max_quantity
FROM unnest($3::timestamptz[], $4::timestamptz[]) AS p(a, b)
CROSS JOIN LATERAL (
  SELECT sum(e.quantity) AS quantity, count(*) AS events, max(e.quantity) AS max_quantity FROM usage_events e
  WHERE e.customer_id = ANY($1::text[]) AND e.metric = $2 AND e.occurred_at >= p.a AND e.occurred_at < p.b
    AND e.voided_at IS NULL AND ${filterSql("e.properties", filter, params)}
) x`;
}

/** The last event before `at`, per id (one index step each), then the last of those; $1 ids, $2 metric. */
const lastBefore = (at: string, filter: string) => `
  SELECT x.quantity, x.occurred_at, x.received_at, x.customer_id, x.event_id
  FROM unnest($1::text[]) AS c(id)
  CROSS JOIN LATERAL (
    SELECT e.quantity, e.occurred_at, e.received_at, e.customer_id, e.event_id FROM usage_events e
    WHERE e.customer_id = c.id AND e.metric = $2 AND e.occurred_at < ${at} AND e.voided_at IS NULL AND ${filter}
    ORDER BY e.occurred_at DESC, e.received_at DESC, e.event_id DESC LIMIT 1
  ) x
  ORDER BY x.occurred_at DESC, x.received_at DESC, x.customer_id DESC, x.event_id DESC LIMIT 1`;

function latestSql(filter: Filter | null, params: unknown[]): string {
  return `SELECT l.quantity::text AS value FROM (${lastBefore("$3::timestamptz", filterSql("e.properties", filter, params))}) l`;
}

/**
 * Distinct non-null values of properties[$5] in [$3, $4) from the events, hashed (GROUP BY), never a sort. jsonb
 * equality is the canonical-JSON comparison ("1" and 1 differ, 1 and 1.0 do not), but extracting a jsonb per
 * event (`->`) and hashing it costs twice what the text (`->>`) does, so the distinct texts are counted first:
 * a string's text is the string itself (bytes equal iff the strings are equal), and while no text could
 * also be a number's, a boolean's, an object's or an array's (none looks like one), the texts are the
 * values. Otherwise the exact jsonb count runs instead (an uncorrelated sub-select: only when asked for).
 * An absent property and a JSON null are NULL texts (not counted); `<> 'null'` excludes the latter as jsonb.
 * Only for ids whose distinct values are not kept (a what-if's new meter): see uniqueFromRollupsSql.
 */
function uniqueFromEventsSql(filter: Filter | null, params: unknown[]): string {
  const where = `e.customer_id = ANY($1::text[]) AND e.metric = $2 AND e.occurred_at >= $3::timestamptz AND e.occurred_at < $4::timestamptz
      AND e.voided_at IS NULL AND ${filterSql("e.properties", filter, params)}`;
  // What a non-string's ->> text looks like: a number (numeric's output), true, false, {…} or […].
  const couldBeOther = `CASE WHEN ascii(d.t) IN (45, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57) THEN d.t ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$'
                        ELSE ascii(d.t) IN (91, 123) OR d.t IN ('true', 'false') END`;
  return `
SELECT (CASE WHEN NOT g.ambiguous THEN g.n
             ELSE (SELECT count(*) FROM (SELECT e.properties -> $5::text FROM usage_events e
                                         WHERE ${where} AND (e.properties -> $5::text) <> 'null'::jsonb GROUP BY 1) v) END)::text AS value
FROM (
  SELECT count(d.t) AS n, coalesce(bool_or(${couldBeOther}), false) AS ambiguous
  FROM (SELECT e.properties ->> $5::text AS t FROM usage_events e WHERE ${where} GROUP BY 1) d
) g`;
}

/**
 * Distinct non-null values of properties[$3] over a window, from the events of the partial hours at its edges
 * ($4, $5) and from the distinct-value rollups (usage_unique_values: per UTC month and value, the hours it occurs
 * in) for its whole hours: months $6, each with the mask $7 of its hours the window covers. Values are
 * usage_unique_key texts (equal exactly when the values are equal as jsonb, as in the events' count). Each id
 * and month is one range of the primary key in value order, so the ranges are merged (Merge Append) and the
 * distinct values counted on the sorted stream: no hash or sort of a period's values. A filter is applied to
 * the rows' dims, as on the hourly rollups.
 */
function uniqueFromRollupsSql(idCount: number, monthCount: number, filter: Filter | null, params: unknown[]): string {
  const eventFilter = filterSql("e.properties", filter, params);
  // Only when there are rows to filter: a parameter no statement mentions has no type.
  const rowFilter = monthCount > 0 ? filterSql("u.dims::jsonb", filter, params) : "";
  const ranges = [
    `(SELECT usage_unique_key(e.properties -> $3::text) COLLATE "C" AS value FROM unnest($4::timestamptz[], $5::timestamptz[]) AS p(a, b)
    JOIN usage_events e ON e.customer_id = ANY($1::text[]) AND e.metric = $2 AND e.occurred_at >= p.a AND e.occurred_at < p.b
    WHERE e.voided_at IS NULL AND usage_unique_key(e.properties -> $3::text) IS NOT NULL AND ${eventFilter} ORDER BY 1)`,
  ];
  for (let i = 1; i <= idCount; i++)
    for (let j = 1; j <= monthCount; j++)
      ranges.push(`(SELECT u.value FROM usage_unique_values u
    WHERE u.customer_id = ($1::text[])[${i}] AND u.metric = $2 AND u.property = $3::text AND u.month = ($6::timestamptz[])[${j}]
      AND bit_count(u.hours & ($7::bit(744)[])[${j}]) > 0 AND ${rowFilter} ORDER BY u.value)`);
  return `SELECT count(DISTINCT v.value)::text AS value FROM (\n  ${ranges.join("\n  UNION ALL\n  ")}\n) v`;
}

/**
 * A window [from, to) as the rollups read it: its whole UTC hours [hs, he) (none when `served` is false: the
 * rollups are not split by the measure's filter) and the partial hours at its edges, from the events.
 */
function splitWindow(r: MeasureRequest, served: boolean): { hs: number; he: number; edges: Array<[number, number]> } {
  const fromMs = Date.parse(r.from);
  const toMs = Date.parse(r.to);
  const hs = served ? Math.ceil(fromMs / HOUR_MS) * HOUR_MS : toMs;
  const he = served ? Math.floor(toMs / HOUR_MS) * HOUR_MS : toMs;
  const edges: Array<[number, number]> = hs < he ? [[fromMs, hs], [he, toMs]] : [[fromMs, toMs]];
  return { hs, he, edges: edges.filter(([a, b]) => a < b) };
}

/**
 * Whether the rollups of every one of the ids are split by the measure's filter properties and keep its
 * unique_count property (usage_dimensions): always for the meters of stored contracts, whose versions
 * registered them; not for a what-if's new filter or property, which reads the events instead.
 */
async function rollupsServe(sql: Sql, ids: string[], m: Measure): Promise<boolean> {
  if (m.filter === null && m.aggregation !== "unique_count") return true;
  const [row] = await sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM usage_dimensions
     WHERE customer_id = ANY($1::text[]) AND metric = $2 AND properties @> $3::text[] AND ($4::text IS NULL OR $4::text = ANY(unique_by))`,
    [ids, m.metric, Object.keys(m.filter ?? {}), m.aggregation === "unique_count" ? m.uniqueBy : null],
    "rollups_serve",
  );
  return row !== undefined && row.n === ids.length;
}

/** unique_count of [from, to): the rollups' months and whole hours, the edges from the events (uniqueFromRollupsSql). */
async function uniqueFromRollups(sql: Sql, ids: string[], r: MeasureRequest): Promise<Decimal> {
  const { hs, he, edges } = splitWindow(r, true);
  const months: Date[] = [];
  const masks: string[] = [];
  if (hs < he) {
    const start = new Date(hs);
    for (let m = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), 1); m < he; ) {
      const d = new Date(m);
      const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      const a = (Math.max(hs, m) - m) / HOUR_MS;
      const b = (Math.min(he, next) - m) / HOUR_MS;
      months.push(d);
      masks.push("0".repeat(a) + "1".repeat(b - a) + "0".repeat(MONTH_BITS - b));
      m = next;
    }
  }
  const params: unknown[] = [ids, r.measure.metric, r.measure.uniqueBy, edges.map(([a]) => new Date(a)), edges.map(([, b]) => new Date(b))];
  // Only when there are whole hours: a parameter no statement mentions has no type.
  if (months.length > 0) params.push(months, masks);
  const text = uniqueFromRollupsSql(ids.length, months.length, r.measure.filter, params);
  const [row] = await sql.query<{ value: string | null }>(text, params, statementName(r.measure.filter, text));
  return new Decimal(row?.value ?? 0);
}

/**
 * Σ level × seconds over [$3, $4): each event's quantity holds from its instant to the next event's (or the
 * window's end); the level carried in from before the window (lastBefore) holds from $3 to the first event
 * (none: to the end). The events of each id are one index range in occurred_at order, merged (Merge Append)
 * when there are several ids, so the window function only sorts the events of one instant among themselves.
 */
function timeWeightedSql(idCount: number, filter: Filter | null, params: unknown[]): string {
  const f = filterSql("e.properties", filter, params);
  const branch = (i: number) => `(SELECT e.occurred_at, e.received_at, e.customer_id, e.event_id, e.quantity FROM usage_events e
    WHERE e.customer_id = ($1::text[])[${i}] AND e.metric = $2 AND e.occurred_at >= $3::timestamptz AND e.occurred_at < $4::timestamptz
      AND e.voided_at IS NULL AND ${f} ORDER BY e.occurred_at)`;
  const events = Array.from({ length: idCount }, (_, i) => branch(i + 1)).join("\n    UNION ALL\n    ");
  return `
WITH held AS (
  SELECT ev.quantity, ev.occurred_at AS at,
         lead(ev.occurred_at, 1, $4::timestamptz) OVER (ORDER BY ev.occurred_at, ev.received_at, ev.customer_id, ev.event_id) AS until
  FROM (${events}) ev
),
inside AS (SELECT min(at) AS first_at, sum(quantity * extract(epoch FROM until - at)) AS area FROM held)
SELECT (coalesce(c.quantity * extract(epoch FROM coalesce(i.first_at, $4::timestamptz) - $3::timestamptz), 0) + coalesce(i.area, 0))::text AS value
FROM inside i LEFT JOIN (${lastBefore("$3::timestamptz", f)}) c ON TRUE`;
}

export interface MeasureRequest {
  from: string;
  to: string;
  measure: Measure;
}

/**
 * sum, count or max of [from, to): whole hours from the rollups, the edges from the events; all of it from the
 * events when the rollups are not split by the filter's properties (`served` false: rollupsServe).
 */
async function fromRollups(sql: Sql, ids: string[], r: MeasureRequest, served: boolean): Promise<Decimal> {
  const { hs, he, edges } = splitWindow(r, served);
  const { metric, filter } = r.measure;
  const parts: Part[] = [];
  if (hs < he) {
    const params: unknown[] = [ids, metric, new Date(hs), new Date(he)];
    const text = rollupSql(filter, params);
    parts.push(...(await sql.query<Part>(text, params, statementName(filter, text))));
  }
  if (edges.length > 0) {
    const params: unknown[] = [ids, metric, edges.map(([a]) => new Date(a)), edges.map(([, b]) => new Date(b))];
    const text = edgesSql(filter, params);
    parts.push(...(await sql.query<Part>(text, params, statementName(filter, text))));
  }
  const pick = { sum: "quantity", count: "events", max: "max_quantity" } as const;
  const column = pick[r.measure.aggregation as keyof typeof pick];
  let value: Decimal | null = null;
  for (const p of parts) {
    const v = p[column];
    if (v === null) continue;
    const d = new Decimal(v);
    value = value === null ? d : r.measure.aggregation === "max" ? Decimal.max(value, d) : value.plus(d);
  }
  return value ?? new Decimal(0);
}

async function one(sql: Sql, ids: string[], r: MeasureRequest): Promise<Decimal> {
  const { measure: m } = r;
  const figure = async (textOf: (params: unknown[]) => string, params: unknown[]) => {
    const text = textOf(params);
    const [row] = await sql.query<{ value: string | null }>(text, params, statementName(m.filter, text));
    return new Decimal(row?.value ?? 0);
  };
  switch (m.aggregation) {
    case "sum":
    case "count":
    case "max":
      return fromRollups(sql, ids, r, await rollupsServe(sql, ids, m));
    case "latest":
      return figure((p) => latestSql(m.filter, p), [ids, m.metric, r.to]);
    case "unique_count":
      if (await rollupsServe(sql, ids, m)) return uniqueFromRollups(sql, ids, r);
      return figure((p) => uniqueFromEventsSql(m.filter, p), [ids, m.metric, r.from, r.to, m.uniqueBy]);
    case "time_weighted":
      return figure((p) => timeWeightedSql(ids.length, m.filter, p), [ids, m.metric, r.from, r.to]);
  }
}

/**
 * The figure of each requested measure over its window, for the given customer and account ids (non-voided
 * events). Zero figures are omitted; `from` and `to` are echoed as given; values are plain decimal strings.
 */
export async function measureUsage(sql: Sql, customerIds: string[], requests: readonly MeasureRequest[]): Promise<MeasuredUsage[]> {
  if (customerIds.length === 0 || requests.length === 0) return [];
  const ids = [...new Set(customerIds)];
  const out: MeasuredUsage[] = [];
  // One after the other: a transaction is one connection, which runs one query at a time anyway.
  for (const r of requests) {
    const value = await one(sql, ids, r);
    if (!value.isZero()) out.push({ from: r.from, to: r.to, measure: r.measure, value: formatDecimal(value) });
  }
  return out;
}
