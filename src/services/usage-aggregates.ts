// Usage aggregates for true-ups and previews (docs/rating.md, rule 2).
//
// sumUsage reads whole UTC hours from usage_rollups (kept by ingestion and voids in the same transaction as
// the events) and only the partial hours at a window's edges from usage_events. A month for one customer
// is then ~720 rollup rows per metric plus at most two hours of raw events, whatever the table's size.
// Edge hours are read through the (customer_id, metric, occurred_at) index: the (customer, metric) pairs
// to probe come from the rollup rows of those hours (every stored event has one), so the index is used
// with all three columns instead of scanning a customer's whole history.
import { Decimal, formatDecimal } from "../domain/money.js";
import type { Sql } from "../db/tx.js";

export interface UsageWindow {
  from: string;
  to: string;
}

export interface UsageSum {
  from: string;
  to: string;
  metric: string;
  quantity: string;
}

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
export async function sumUsage(sql: Sql, customerIds: string[], windows: UsageWindow[]): Promise<UsageSum[]> {
  if (customerIds.length === 0 || windows.length === 0) return [];
  const rows = await sql.query<{ i: number; metric: string; quantity: string }>(SUM_USAGE_SQL, [
    [...new Set(customerIds)],
    windows.map((w) => w.from),
    windows.map((w) => w.to),
  ]);
  return rows.map((r) => {
    const w = windows[r.i - 1]!;
    return { from: w.from, to: w.to, metric: r.metric, quantity: formatDecimal(new Decimal(r.quantity)) };
  });
}

/**
 * Activity in a period after an instant (for the late_usage check of a preview): `arrived` = events of the
 * period (start ≤ timestamp < end) received after `since`, voided or not; `voided` = events of the period
 * voided after `since`. An event that arrives after a period's document is always flagged `late` by
 * ingestion (it locks the contract and sees the document), so both counts read small partial indexes.
 */
export async function lateActivity(
  sql: Sql,
  customerIds: string[],
  period: { start: string; end: string },
  since: string,
): Promise<{ arrived: number; voided: number }> {
  if (customerIds.length === 0) return { arrived: 0, voided: 0 };
  const [row] = await sql.query<{ arrived: number; voided: number }>(
    `SELECT (SELECT count(*) FROM usage_events
             WHERE late AND customer_id = ANY($1::text[]) AND received_at > $4::timestamptz
               AND occurred_at >= $2::timestamptz AND occurred_at < $3::timestamptz)::int AS arrived,
            (SELECT count(*) FROM usage_events
             WHERE voided_at IS NOT NULL AND customer_id = ANY($1::text[]) AND voided_at > $4::timestamptz
               AND occurred_at >= $2::timestamptz AND occurred_at < $3::timestamptz)::int AS voided`,
    [[...new Set(customerIds)], period.start, period.end, since],
  );
  return { arrived: row?.arrived ?? 0, voided: row?.voided ?? 0 };
}
