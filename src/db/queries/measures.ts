// The figures of meters other than an unfiltered sum (docs/rating.md, "What a meter measures"), one per window
// and measure, over a contract's customer and account ids; what each figure means is said once, in
// src/domain/rating/measures.ts.
//
// Where each is read from (docs/rating.md, "Where the figures come from"):
//  - sum, count, max: whole UTC hours from usage_rollups (filtered by their dims), the partial hours at the
//    window's edges from the events index: never a period's events;
//  - latest: one backward step of the (customer_id, metric, occurred_at) index per id;
//  - unique_count, time_weighted: the window's events of the metric through that index (plus, for
//    time_weighted, the latest level before the window).
// Events at one instant are ordered by arrival, then customer and event id (the last is the latest).
import { Decimal, formatDecimal } from "../../domain/money.js";
import type { Measure, MeasuredUsage } from "../../domain/rating/measures.js";
import type { Sql } from "../sql.js";

const HOUR_MS = 3_600_000;

/** `$n::jsonb IS NULL OR usage_matches(<props>, $n)`: the meter's filter on an event's properties or a rollup's dims. */
const matches = (props: string, param: string) => `(${param}::jsonb IS NULL OR usage_matches(${props}, ${param}::jsonb))`;

const ROLLUP_SQL = `
SELECT sum(r.quantity)::text AS quantity, sum(r.events)::text AS events, max(r.max_quantity)::text AS max_quantity
FROM usage_rollups r
WHERE r.customer_id = ANY($1::text[]) AND r.metric = $2 AND r.hour >= $3::timestamptz AND r.hour < $4::timestamptz AND r.events > 0
  AND ${matches("r.dims::jsonb", "$5")}`;

const EDGES_SQL = `
SELECT sum(x.quantity)::text AS quantity, sum(x.events)::text AS events, max(x.max_quantity)::text AS max_quantity
FROM unnest($3::timestamptz[], $4::timestamptz[]) AS p(a, b)
CROSS JOIN LATERAL (
  SELECT sum(e.quantity) AS quantity, count(*) AS events, max(e.quantity) AS max_quantity FROM usage_events e
  WHERE e.customer_id = ANY($1::text[]) AND e.metric = $2 AND e.occurred_at >= p.a AND e.occurred_at < p.b
    AND e.voided_at IS NULL AND ${matches("e.properties", "$5")}
) x`;

/** The last event before an instant, per id (one index step each), then the last of those. */
const lastBefore = (at: string, filter: string) => `
  SELECT x.quantity, x.occurred_at, x.received_at, x.customer_id, x.event_id
  FROM unnest($1::text[]) AS c(id)
  CROSS JOIN LATERAL (
    SELECT e.quantity, e.occurred_at, e.received_at, e.customer_id, e.event_id FROM usage_events e
    WHERE e.customer_id = c.id AND e.metric = $2 AND e.occurred_at < ${at} AND e.voided_at IS NULL AND ${matches("e.properties", filter)}
    ORDER BY e.occurred_at DESC, e.received_at DESC, e.event_id DESC LIMIT 1
  ) x
  ORDER BY x.occurred_at DESC, x.received_at DESC, x.customer_id DESC, x.event_id DESC LIMIT 1`;

const LATEST_SQL = `SELECT l.quantity::text AS value FROM (${lastBefore("$3::timestamptz", "$4")}) l`;

const UNIQUE_SQL = `
SELECT count(DISTINCT e.properties -> $5)::text AS value FROM usage_events e
WHERE e.customer_id = ANY($1::text[]) AND e.metric = $2 AND e.occurred_at >= $3::timestamptz AND e.occurred_at < $4::timestamptz
  AND e.voided_at IS NULL AND jsonb_typeof(e.properties -> $5) IS DISTINCT FROM 'null' AND e.properties ? $5
  AND ${matches("e.properties", "$6")}`;

// Σ level × seconds: each event's quantity holds from its instant to the next event's (or the window's end);
// the level carried in from before the window holds from its start (and sorts before an event at the start).
const TIME_WEIGHTED_SQL = `
WITH points AS (
  SELECT $3::timestamptz AS at, 0 AS carried_first, l.received_at, l.customer_id, l.event_id, l.quantity
  FROM (${lastBefore("$3::timestamptz", "$5")}) l
  UNION ALL
  SELECT e.occurred_at, 1, e.received_at, e.customer_id, e.event_id, e.quantity FROM usage_events e
  WHERE e.customer_id = ANY($1::text[]) AND e.metric = $2 AND e.occurred_at >= $3::timestamptz AND e.occurred_at < $4::timestamptz
    AND e.voided_at IS NULL AND ${matches("e.properties", "$5")}
),
held AS (
  SELECT quantity, at, lead(at, 1, $4::timestamptz) OVER (ORDER BY at, carried_first, received_at, customer_id, event_id) AS until
  FROM points
)
SELECT coalesce(sum(quantity * extract(epoch FROM until - at)), 0)::text AS value FROM held`;

export interface MeasureRequest {
  from: string;
  to: string;
  measure: Measure;
}

const filterParam = (m: Measure): string | null => (m.filter === null ? null : JSON.stringify(m.filter));

/** sum, count or max of [from, to): whole hours from the rollups, the edges from the events. */
async function fromRollups(sql: Sql, ids: string[], r: MeasureRequest): Promise<Decimal> {
  const fromMs = Date.parse(r.from);
  const toMs = Date.parse(r.to);
  const hs = Math.ceil(fromMs / HOUR_MS) * HOUR_MS;
  const he = Math.floor(toMs / HOUR_MS) * HOUR_MS;
  const filter = filterParam(r.measure);
  const parts: { quantity: string | null; events: string | null; max_quantity: string | null }[] = [];
  const edges: Array<[number, number]> = hs < he ? [[fromMs, hs], [he, toMs]] : [[fromMs, toMs]];
  if (hs < he) {
    parts.push(...(await sql.query<(typeof parts)[number]>(ROLLUP_SQL, [ids, r.measure.metric, new Date(hs), new Date(he), filter])));
  }
  const open = edges.filter(([a, b]) => a < b);
  if (open.length > 0) {
    parts.push(
      ...(await sql.query<(typeof parts)[number]>(EDGES_SQL, [
        ids,
        r.measure.metric,
        open.map(([a]) => new Date(a)),
        open.map(([, b]) => new Date(b)),
        filter,
      ])),
    );
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
  switch (m.aggregation) {
    case "sum":
    case "count":
    case "max":
      return fromRollups(sql, ids, r);
    case "latest": {
      const [row] = await sql.query<{ value: string }>(LATEST_SQL, [ids, m.metric, r.to, filterParam(m)]);
      return new Decimal(row?.value ?? 0);
    }
    case "unique_count": {
      const [row] = await sql.query<{ value: string }>(UNIQUE_SQL, [ids, m.metric, r.from, r.to, m.uniqueBy, filterParam(m)]);
      return new Decimal(row?.value ?? 0);
    }
    case "time_weighted": {
      const [row] = await sql.query<{ value: string }>(TIME_WEIGHTED_SQL, [ids, m.metric, r.from, r.to, filterParam(m)]);
      return new Decimal(row?.value ?? 0);
    }
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
