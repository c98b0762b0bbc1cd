// Reconciliation SQL (DESIGN.md §7.1): the raw side of the match, this service's own invoiced usage, and the
// runs, breaks, dispositions and sign-offs.
//
// The raw side is one pass over the window's events, grouped by (customer id, metric): the sum and the latest
// arrival. Only keys whose latest arrival is after their latest invoice are read again, through the
// (customer_id, metric, occurred_at) index, for their late units. The rollups would not help here: a
// quarter of sparse usage has about as many hourly rollup rows as events.
import type { Sql } from "../sql.js";

// ---------------------------------------------------------------------------------------------------------
// Pull

export interface RawUsageRow {
  customer_id: string;
  metric: string;
  quantity: string;
  last_received_at: Date;
}

/** Per stored customer id and metric: the non-voided events of [from, to), their sum and latest arrival. */
export async function rawUsageByKey(sql: Sql, from: string, to: string): Promise<RawUsageRow[]> {
  return sql.query<RawUsageRow>(
    `SELECT customer_id, metric, sum(quantity)::text AS quantity, max(received_at) AS last_received_at
     FROM usage_events
     WHERE occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz AND voided_at IS NULL
     GROUP BY customer_id, metric`,
    [from, to],
  );
}

/** For each ask (stored customer id, metric, instant): the units of the window's events received after the instant. */
export async function lateUnits(
  sql: Sql,
  from: string,
  to: string,
  asks: readonly { customerId: string; metric: string; since: Date }[],
): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (asks.length === 0) return out;
  const rows = await sql.query<{ i: string; quantity: string }>(
    `SELECT k.i::text AS i, s.quantity::text AS quantity
     FROM unnest($3::text[], $4::text[], $5::timestamptz[]) WITH ORDINALITY AS k(customer_id, metric, since, i)
     CROSS JOIN LATERAL (
       SELECT sum(e.quantity) AS quantity FROM usage_events e
       WHERE e.customer_id = k.customer_id AND e.metric = k.metric AND e.occurred_at >= $1::timestamptz AND e.occurred_at < $2::timestamptz
         AND e.voided_at IS NULL AND e.received_at > k.since
     ) s
     WHERE s.quantity IS NOT NULL`,
    [from, to, asks.map((a) => a.customerId), asks.map((a) => a.metric), asks.map((a) => a.since)],
  );
  for (const r of rows) out.set(Number(r.i) - 1, r.quantity);
  return out;
}

/**
 * For each ask (stored customer id, metric, [from, to)): the units of its non-voided events, in one statement:
 * whole UTC hours from usage_rollups, the partial hours at the edges from the events (as sumUsage does for one
 * contract), each ask a LATERAL range read of an index (a plain join, the planner guessing 100 asks, hashes the
 * window's events). These are the breaks' usage per segment, which the engine prices.
 */
export async function unitsInWindows(
  sql: Sql,
  asks: readonly { customerId: string; metric: string; from: string; to: string }[],
): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (asks.length === 0) return out;
  const rows = await sql.query<{ i: string; quantity: string }>(
    `WITH w AS (
       SELECT k.i, k.customer_id, k.metric, k.f, k.t,
              CASE WHEN date_trunc('hour', k.f, 'UTC') = k.f THEN k.f ELSE date_trunc('hour', k.f, 'UTC') + interval '1 hour' END AS hs,
              date_trunc('hour', k.t, 'UTC') AS he
       FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS k(customer_id, metric, f, t, i)
       WHERE k.f < k.t
     ),
     pieces AS (
       -- The parts whole hours do not cover: [f, hs) and [he, t), or all of [f, t) when it holds no whole hour.
       SELECT i, customer_id, metric, f AS a, CASE WHEN hs < he THEN hs ELSE t END AS b FROM w
       UNION ALL
       SELECT i, customer_id, metric, he, t FROM w WHERE hs < he AND he < t
     ),
     whole AS (
       SELECT w.i, s.quantity FROM w CROSS JOIN LATERAL (
         SELECT sum(r.quantity) AS quantity FROM usage_rollups r
         WHERE r.customer_id = w.customer_id AND r.metric = w.metric AND r.hour >= w.hs AND r.hour < w.he
       ) s
       WHERE w.hs < w.he
     ),
     partial AS (
       SELECT p.i, s.quantity FROM pieces p CROSS JOIN LATERAL (
         SELECT sum(e.quantity) AS quantity FROM usage_events e
         WHERE e.customer_id = p.customer_id AND e.metric = p.metric AND e.occurred_at >= p.a AND e.occurred_at < p.b AND e.voided_at IS NULL
       ) s
       WHERE p.a < p.b
     )
     SELECT i::text AS i, sum(quantity)::text AS quantity
     FROM (SELECT i, quantity FROM whole UNION ALL SELECT i, quantity FROM partial) x
     WHERE quantity IS NOT NULL
     GROUP BY i`,
    [asks.map((a) => a.customerId), asks.map((a) => a.metric), asks.map((a) => a.from), asks.map((a) => a.to)],
  );
  for (const r of rows) out.set(Number(r.i) - 1, r.quantity);
  return out;
}

/**
 * The contract of each identifier in the window: of the terms overlapping it, the one that starts last (a
 * renewal inside the window is the contract the customer is on by its end).
 */
export async function contractsOfIdentifiers(sql: Sql, identifiers: readonly string[], from: string, to: string): Promise<Map<string, string>> {
  const rows = await sql.query<{ identifier: string; contract_id: string }>(
    `SELECT DISTINCT ON (identifier) identifier, contract_id::text AS contract_id
     FROM contract_identifiers
     WHERE identifier = ANY($1::text[]) AND tstzrange(term_start, term_end, '[)') && tstzrange($2::timestamptz, $3::timestamptz, '[)')
     ORDER BY identifier, term_start DESC`,
    [[...identifiers], from, to],
  );
  return new Map(rows.map((r) => [r.identifier, r.contract_id]));
}

export interface DocumentUsageRow {
  contract_id: string;
  customer_id: string;
  metric: string;
  usage: string;
  kind: "invoice" | "credit_memo";
  issued_at: Date;
}

/**
 * This service's own invoiced usage: the latest document of each contract period inside [from, to), whatever
 * its kind, and the usage of its usage lines per metric (a later document supersedes; nothing is subtracted).
 */
export async function documentUsage(sql: Sql, from: string, to: string): Promise<DocumentUsageRow[]> {
  return sql.query<DocumentUsageRow>(
    `WITH latest AS (
       SELECT DISTINCT ON (contract_id, period_start) id, contract_id, kind, issued_at
       FROM documents
       WHERE period_start >= $1::timestamptz AND period_end <= $2::timestamptz
       ORDER BY contract_id, period_start, issued_at DESC, id DESC
     )
     SELECT l.contract_id::text AS contract_id, c.customer_id, dl.metric, sum((dl.explanation ->> 'usage')::numeric)::text AS usage,
            l.kind, l.issued_at
     FROM latest l
     JOIN contracts c ON c.id = l.contract_id
     JOIN document_lines dl ON dl.document_id = l.id AND dl.kind = 'usage' AND dl.metric IS NOT NULL
     GROUP BY l.id, l.contract_id, c.customer_id, dl.metric, l.kind, l.issued_at`,
    [from, to],
  );
}

// ---------------------------------------------------------------------------------------------------------
// Runs and breaks

export interface RunRow {
  id: string;
  period_start: Date;
  period_end: Date;
  unit_conversions: Record<string, string>;
  invoiced_source: "caller" | "documents";
  metered_rows: number;
  invoiced_rows: number;
  counts: Record<string, unknown>;
  totals: Record<string, unknown>;
  currency: string | null;
  by_currency: Record<string, unknown>;
  previous_run_id: string | null;
  watchlist: { cleared: number; persisting: number };
  created_at: Date;
  created_by: string;
  signed_off_actor: string | null;
  signed_off_note: string | null;
  signed_off_at: Date | null;
}

const RUN_COLUMNS = `r.id::text AS id, r.period_start, r.period_end, r.unit_conversions, r.invoiced_source, r.metered_rows, r.invoiced_rows,
  r.counts, r.totals, r.currency, r.by_currency, r.previous_run_id::text AS previous_run_id, r.watchlist, r.created_at, r.created_by,
  s.actor AS signed_off_actor, s.note AS signed_off_note, s.at AS signed_off_at`;

export interface RunInsert {
  id: string;
  periodStart: string;
  periodEnd: string;
  unitConversions: Record<string, string>;
  invoicedSource: "caller" | "documents";
  meteredRows: number;
  invoicedRows: number;
  counts: unknown;
  totals: unknown;
  currency: string | null;
  byCurrency: unknown;
  previousRunId: string | null;
  watchlist: unknown;
  createdAt: string;
  createdBy: string;
}

export async function insertRun(sql: Sql, r: RunInsert): Promise<void> {
  await sql.query(
    `INSERT INTO reconciliation_runs (id, period_start, period_end, unit_conversions, invoiced_source, metered_rows, invoiced_rows,
                                      counts, totals, currency, by_currency, previous_run_id, watchlist, created_at, created_by)
     VALUES ($1::uuid, $2::timestamptz, $3::timestamptz, $4::jsonb, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11::jsonb, $12::uuid, $13::jsonb,
             $14::timestamptz, $15)`,
    [r.id, r.periodStart, r.periodEnd, JSON.stringify(r.unitConversions), r.invoicedSource, r.meteredRows, r.invoicedRows,
      JSON.stringify(r.counts), JSON.stringify(r.totals), r.currency, JSON.stringify(r.byCurrency), r.previousRunId,
      JSON.stringify(r.watchlist), r.createdAt, r.createdBy],
  );
}

export interface BreakInsert {
  id: string;
  contractId: string | null;
  customerId: string;
  metric: string;
  class: string;
  source: string | null;
  owner: string;
  raw: string;
  metered: string;
  invoiced: string;
  late: string;
  units: string;
  amount: string | null;
  currency: string | null;
  previousClass: string | null;
  lastInvoicedAt: string | null;
}

/** The breaks of a run in one statement per 10,000 (arrays of columns). */
export async function insertBreaks(sql: Sql, runId: string, breaks: readonly BreakInsert[]): Promise<void> {
  for (let at = 0; at < breaks.length; at += 10_000) {
    const chunk = breaks.slice(at, at + 10_000);
    const col = <K extends keyof BreakInsert>(k: K) => chunk.map((b) => b[k]);
    await sql.query(
      `INSERT INTO reconciliation_breaks (id, run_id, contract_id, customer_id, metric, class, source, owner, raw, metered, invoiced, late,
                                          units, amount, currency, previous_class, last_invoiced_at)
       SELECT b.id, $1::uuid, b.contract_id, b.customer_id, b.metric, b.class, b.source, b.owner, b.raw, b.metered, b.invoiced, b.late,
              b.units, b.amount, b.currency, b.previous_class, b.last_invoiced_at
       FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::numeric[], $10::numeric[],
                   $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[], $15::text[], $16::text[], $17::timestamptz[])
         AS b(id, contract_id, customer_id, metric, class, source, owner, raw, metered, invoiced, late, units, amount, currency,
              previous_class, last_invoiced_at)`,
      [runId, col("id"), col("contractId"), col("customerId"), col("metric"), col("class"), col("source"), col("owner"), col("raw"),
        col("metered"), col("invoiced"), col("late"), col("units"), col("amount"), col("currency"), col("previousClass"), col("lastInvoicedAt")],
    );
  }
}

export async function runById(sql: Sql, id: string): Promise<RunRow | undefined> {
  const [row] = await sql.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM reconciliation_runs r LEFT JOIN reconciliation_sign_offs s ON s.run_id = r.id WHERE r.id = $1::uuid`,
    [id],
  );
  return row;
}

/** Locks the run: dispositions and the sign-off of one run queue up, so nothing is decided after it is signed off. */
export async function lockRun(sql: Sql, id: string): Promise<RunRow | undefined> {
  await sql.query(`SELECT id FROM reconciliation_runs WHERE id = $1::uuid FOR UPDATE`, [id]);
  return runById(sql, id);
}

export async function listRunRows(
  sql: Sql,
  q: { periodStart: string | null; periodEnd: string | null; after: string | null; limit: number },
): Promise<RunRow[]> {
  return sql.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM reconciliation_runs r LEFT JOIN reconciliation_sign_offs s ON s.run_id = r.id
     WHERE ($1::timestamptz IS NULL OR r.period_start = $1::timestamptz) AND ($2::timestamptz IS NULL OR r.period_end = $2::timestamptz)
       AND ($3::uuid IS NULL OR r.id > $3::uuid)
     ORDER BY r.id LIMIT $4`,
    [q.periodStart, q.periodEnd, q.after, q.limit],
  );
}

/** The latest run of the same window created before this one, if any. */
export async function previousRunOf(sql: Sql, from: string, to: string, before: string): Promise<string | null> {
  const [row] = await sql.query<{ id: string }>(
    `SELECT id::text AS id FROM reconciliation_runs
     WHERE period_start = $1::timestamptz AND period_end = $2::timestamptz AND id < $3::uuid
     ORDER BY id DESC LIMIT 1`,
    [from, to, before],
  );
  return row?.id ?? null;
}

/** The keys a run classified `timing`. */
export async function timingKeysOf(sql: Sql, runId: string): Promise<{ customer_id: string; metric: string }[]> {
  return sql.query<{ customer_id: string; metric: string }>(
    `SELECT customer_id, metric FROM reconciliation_breaks WHERE run_id = $1::uuid AND class = 'timing'`,
    [runId],
  );
}

export interface BreakRow {
  id: string;
  run_id: string;
  contract_id: string | null;
  customer_id: string;
  metric: string;
  class: string;
  source: string | null;
  owner: string;
  raw: string;
  metered: string;
  invoiced: string;
  late: string;
  units: string;
  amount: string | null;
  currency: string | null;
  previous_class: string | null;
  last_invoiced_at: Date | null;
  decision: string | null;
  note: string | null;
  actor: string | null;
  decided_at: Date | null;
}

// Quantities are numeric(56,18): trim_scale gives back the decimal as computed ("1400", not "1400.000000000000000000").
const BREAK_COLUMNS = `b.id::text AS id, b.run_id::text AS run_id, b.contract_id::text AS contract_id, b.customer_id, b.metric, b.class,
  b.source, b.owner, trim_scale(b.raw)::text AS raw, trim_scale(b.metered)::text AS metered, trim_scale(b.invoiced)::text AS invoiced,
  trim_scale(b.late)::text AS late, trim_scale(b.units)::text AS units, b.amount::text AS amount, b.currency, b.previous_class,
  b.last_invoiced_at, d.decision, d.note, d.actor, d.at AS decided_at`;

const LATEST_DISPOSITION = `LEFT JOIN LATERAL (
    SELECT decision, note, actor, at FROM reconciliation_dispositions WHERE break_id = b.id ORDER BY id DESC LIMIT 1
  ) d ON true`;

export async function breakRows(
  sql: Sql,
  runId: string,
  q: { class: string | null; owner: string | null; after: string | null; limit: number },
): Promise<BreakRow[]> {
  return sql.query<BreakRow>(
    `SELECT ${BREAK_COLUMNS} FROM reconciliation_breaks b ${LATEST_DISPOSITION}
     WHERE b.run_id = $1::uuid AND ($2::text IS NULL OR b.class = $2) AND ($3::text IS NULL OR b.owner = $3)
       AND ($4::uuid IS NULL OR b.id > $4::uuid)
     ORDER BY b.id LIMIT $5`,
    [runId, q.class, q.owner, q.after, q.limit],
  );
}

export async function breakById(sql: Sql, runId: string, breakId: string): Promise<BreakRow | undefined> {
  const [row] = await sql.query<BreakRow>(
    `SELECT ${BREAK_COLUMNS} FROM reconciliation_breaks b ${LATEST_DISPOSITION} WHERE b.run_id = $1::uuid AND b.id = $2::uuid`,
    [runId, breakId],
  );
  return row;
}

export async function insertDisposition(
  sql: Sql,
  d: { id: string; breakId: string; decision: string; note: string; actor: string; at: string },
): Promise<void> {
  await sql.query(
    `INSERT INTO reconciliation_dispositions (id, break_id, decision, note, actor, at) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::timestamptz)`,
    [d.id, d.breakId, d.decision, d.note, d.actor, d.at],
  );
}

/** The breaks of a run that need a disposition and have none, in id order. */
export async function undecidedBreakIds(sql: Sql, runId: string, exempt: readonly string[]): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `SELECT b.id::text AS id FROM reconciliation_breaks b
     WHERE b.run_id = $1::uuid AND NOT (b.class = ANY($2::text[]))
       AND NOT EXISTS (SELECT 1 FROM reconciliation_dispositions d WHERE d.break_id = b.id)
     ORDER BY b.id`,
    [runId, [...exempt]],
  );
  return rows.map((r) => r.id);
}

export async function insertSignOff(sql: Sql, s: { runId: string; note: string; actor: string; at: string }): Promise<void> {
  await sql.query(`INSERT INTO reconciliation_sign_offs (run_id, note, actor, at) VALUES ($1::uuid, $2, $3, $4::timestamptz)`, [
    s.runId,
    s.note,
    s.actor,
    s.at,
  ]);
}
