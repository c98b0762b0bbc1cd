// Revenue SQL (DESIGN.md §7.2): a contract's latest document of each period with its lines and credit
// drawdowns, and what was billed per period (documents and external billings).
import type { BillingPeriodUnit } from "../../domain/periods.js";
import type { Sql } from "../sql.js";

export interface LatestDocumentRow {
  contract_id: string;
  id: string;
  kind: "invoice" | "credit_memo";
  /** Epoch ms (a number parses far faster than a timestamptz, 120,000 times in a book). */
  period_start_ms: number;
  lines: { kind: string; metric: string | null; amount: string; explanation: Record<string, unknown> }[];
  credits: { grantId: string; amount: string }[];
}

const LATEST = `SELECT DISTINCT ON (contract_id, period_start) id, contract_id, kind, period_start, period_end FROM documents
  WHERE contract_id = ANY($1::uuid[]) ORDER BY contract_id, period_start, issued_at DESC, kind_seq DESC`;

/**
 * The latest issued document of each period of these contracts, with its lines (in order, and only what
 * recognition reads of their explanation) and its credit drawdowns: three flat statements for one contract or
 * a whole book (flat rows parse several times faster than one JSON aggregate per document).
 */
export async function latestDocumentsOf(sql: Sql, contractIds: readonly string[]): Promise<LatestDocumentRow[]> {
  const ids = [[...contractIds]];
  // A book sorts and joins a few hundred thousand rows: in memory, not in temporary files (this transaction only).
  if (contractIds.length > 100) await sql.query(`SET LOCAL work_mem = '64MB'`);
  const docs = await sql.query<Omit<LatestDocumentRow, "lines" | "credits">>(
    `SELECT l.contract_id::text AS contract_id, l.id::text AS id, l.kind, (extract(epoch FROM l.period_start) * 1000)::float8 AS period_start_ms
     FROM (${LATEST}) l ORDER BY l.contract_id, l.period_start`,
    ids,
  );
  const lines = await sql.query<{ document_id: string; kind: string; metric: string | null; amount: string; seg_from: string | null; seg_to: string | null; aggregation: string | null; filter: string | null }>(
    `SELECT dl.document_id::text AS document_id, dl.kind, dl.metric, dl.amount::text AS amount,
            dl.explanation -> 'segment' ->> 'from' AS seg_from, dl.explanation -> 'segment' ->> 'to' AS seg_to,
            dl.explanation ->> 'aggregation' AS aggregation, (dl.explanation -> 'filter')::text AS filter
     FROM (${LATEST}) l JOIN document_lines dl ON dl.document_id = l.id ORDER BY dl.document_id, dl.line_no`,
    ids,
  );
  const credits = await sql.query<{ document_id: string; grant_id: string; amount: string }>(
    `SELECT d.document_id::text AS document_id, d.grant_id, d.amount::text AS amount
     FROM (${LATEST}) l JOIN credit_drawdowns d ON d.document_id = l.id ORDER BY d.document_id, d.grant_id`,
    ids,
  );
  const out = new Map<string, LatestDocumentRow>(docs.map((d) => [d.id, { ...d, lines: [], credits: [] }]));
  for (const l of lines) {
    const explanation: Record<string, unknown> = {
      segment: l.seg_from === null || l.seg_to === null ? null : { from: l.seg_from, to: l.seg_to },
      ...(l.aggregation === null ? {} : { aggregation: l.aggregation }),
      ...(l.filter === null || l.filter === "null" ? {} : { filter: JSON.parse(l.filter) as unknown }),
    };
    out.get(l.document_id)?.lines.push({ kind: l.kind, metric: l.metric, amount: l.amount, explanation });
  }
  for (const c of credits) out.get(c.document_id)?.credits.push({ grantId: c.grant_id, amount: c.amount });
  return [...out.values()];
}

export interface BilledRow {
  contract_id: string;
  at: Date;
  amount: string;
}

/** What was billed, by the instant it is billed for: documents (invoices − credit memos) by their period's start, external billings by theirs. */
export async function billedAmounts(sql: Sql, contractIds: readonly string[]): Promise<BilledRow[]> {
  return sql.query<BilledRow>(
    `SELECT contract_id::text AS contract_id, period_start AS at, (CASE kind WHEN 'invoice' THEN amount ELSE -amount END)::text AS amount
     FROM documents WHERE contract_id = ANY($1::uuid[])
     UNION ALL
     SELECT contract_id::text, period_start, amount::text FROM external_billings WHERE contract_id = ANY($1::uuid[])`,
    [[...contractIds]],
  );
}

// ---------------------------------------------------------------------------------------------------------
// The book in bulk

/** A contract of the book: what its calendar (periods, months) depends on, and whether it may hold grants. */
export interface BookContractRow {
  id: string;
  currency: string;
  timezone: string;
  billing_period: BillingPeriodUnit;
  start_date: string;
  end_date: string | null;
  term_start_ms: number;
  term_end_ms: number | null;
  /** Some version lists prepaid credits (or something other than an empty list there). */
  has_grants: boolean;
}

// Epoch ms as JavaScript's Date.parse gives them for a timestamptz (its fraction of a ms dropped).
const MS = (column: string) => `(floor(extract(epoch FROM ${column}) * 1000))::float8`;

/** The contracts of a book (as contractsOfBook), with their calendars. */
export async function bookContracts(sql: Sql, currency: string | null, from: Date, to: Date): Promise<BookContractRow[]> {
  return sql.query<BookContractRow>(
    `SELECT c.id::text AS id, c.currency::text AS currency, c.timezone, c.billing_period, c.start_date::text AS start_date, c.end_date::text AS end_date,
            ${MS("c.term_start")} AS term_start_ms, ${MS("c.term_end")} AS term_end_ms,
            EXISTS (SELECT 1 FROM contract_versions v WHERE v.contract_id = c.id AND coalesce(v.terms -> 'prepaidCredits', '[]') <> '[]') AS has_grants
     FROM contracts c
     WHERE ($1::text IS NULL OR c.currency = $1) AND c.term_start < $3::timestamptz AND (c.term_end IS NULL OR c.term_end > $2::timestamptz)
     ORDER BY c.id`,
    [currency, from, to],
  );
}

export interface PlainRecognizedRow {
  /** The caller's index of the contracts' calendar. */
  calendar: number;
  period_start_ms: number;
  /** How many of the contracts have a latest document starting there. */
  contracts: string;
  platform_fee: string;
  usage: string;
  commitment: string;
  total: string;
  /** Every line amount summed is a whole number of the currency's minor unit. */
  rounded: boolean;
}

export interface PlainBilledRow {
  calendar: number;
  at_ms: number;
  amount: string;
  /** Every amount summed is a whole number of the currency's minor unit. */
  rounded: boolean;
}

// The contracts with their calendar's index and their currency's minor unit.
const PLAIN_BOOK = `SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[]) AS b(id, calendar, digits)`;

/**
 * The plain part of a book, summed by the database per calendar (contracts the caller found to share their
 * periods and months): for each period start in [from, to), how many of the contracts have a latest document
 * there and what those documents' lines come to (platform fees; usage with the contract discount and cap;
 * shortfalls; the three together); and what was billed (invoices − credit memos, external billings) at each
 * instant. Each sum says whether every amount in it is whole minor units: only then is it the sum of the
 * contracts' months as their reports round them. One pass over the documents and lines for the whole book.
 */
export async function plainBookSums(
  sql: Sql,
  contracts: { ids: readonly string[]; calendars: readonly number[]; digits: readonly number[] },
  from: Date,
  to: Date,
): Promise<{ recognized: PlainRecognizedRow[]; billed: PlainBilledRow[] }> {
  const params = [[...contracts.ids], [...contracts.calendars], [...contracts.digits], from, to];
  const recognized = await sql.query<PlainRecognizedRow>(
    `WITH book AS MATERIALIZED (${PLAIN_BOOK}),
     latest AS MATERIALIZED (
       SELECT DISTINCT ON (d.contract_id, d.period_start) d.id, d.period_start, b.calendar, b.digits
       FROM documents d JOIN book b ON b.id = d.contract_id
       WHERE d.period_start >= $4::timestamptz AND d.period_start < $5::timestamptz
       ORDER BY d.contract_id, d.period_start, d.issued_at DESC, d.kind_seq DESC),
     issued AS (SELECT calendar, period_start, count(*) AS contracts FROM latest GROUP BY calendar, period_start),
     lines AS (
       SELECT l.calendar, l.period_start,
              sum(dl.amount) FILTER (WHERE dl.kind = 'platform_fee') AS platform_fee,
              sum(dl.amount) FILTER (WHERE dl.kind IN ('usage', 'contract_discount', 'contract_cap')) AS usage,
              sum(dl.amount) FILTER (WHERE dl.kind = 'commitment_shortfall') AS commitment,
              bool_and(dl.amount = round(dl.amount, l.digits)) FILTER (WHERE dl.kind IN ('platform_fee', 'usage', 'contract_discount', 'contract_cap', 'commitment_shortfall')) AS rounded
       FROM latest l JOIN document_lines dl ON dl.document_id = l.id
       GROUP BY l.calendar, l.period_start)
     SELECT i.calendar, ${MS("i.period_start")} AS period_start_ms, i.contracts,
            coalesce(l.platform_fee, 0)::text AS platform_fee, coalesce(l.usage, 0)::text AS usage, coalesce(l.commitment, 0)::text AS commitment,
            (coalesce(l.platform_fee, 0) + coalesce(l.usage, 0) + coalesce(l.commitment, 0))::text AS total, coalesce(l.rounded, true) AS rounded
     FROM issued i LEFT JOIN lines l ON l.calendar = i.calendar AND l.period_start = i.period_start`,
    params,
  );
  const billed = await sql.query<PlainBilledRow>(
    `WITH book AS MATERIALIZED (${PLAIN_BOOK}),
     billing AS (
       SELECT contract_id, period_start AS at, CASE kind WHEN 'invoice' THEN amount ELSE -amount END AS amount FROM documents
       WHERE contract_id = ANY($1::uuid[]) AND period_start >= $4::timestamptz AND period_start < $5::timestamptz
       UNION ALL
       SELECT contract_id, period_start, amount FROM external_billings
       WHERE contract_id = ANY($1::uuid[]) AND period_start >= $4::timestamptz AND period_start < $5::timestamptz)
     SELECT b.calendar, ${MS("x.at")} AS at_ms, sum(x.amount)::text AS amount, bool_and(x.amount = round(x.amount, b.digits)) AS rounded
     FROM billing x JOIN book b ON b.id = x.contract_id
     GROUP BY b.calendar, x.at`,
    params,
  );
  return { recognized, billed };
}

/** Each contract's closed months (figures as stored), for one contract or a whole book. */
export async function closedMonthsOf<T>(sql: Sql, contractIds: readonly string[]): Promise<{ contract_id: string; month: string; figures: T }[]> {
  return sql.query<{ contract_id: string; month: string; figures: T }>(
    `SELECT contract_id::text AS contract_id, month, figures FROM revenue_closed_months WHERE contract_id = ANY($1::uuid[]) ORDER BY contract_id, month`,
    [[...contractIds]],
  );
}

/** The contracts of a book: every contract (of one currency when given) whose term overlaps [from, to). */
export async function contractsOfBook(sql: Sql, currency: string | null, from: Date, to: Date): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `SELECT id::text AS id FROM contracts
     WHERE ($1::text IS NULL OR currency = $1) AND term_start < $3::timestamptz AND (term_end IS NULL OR term_end > $2::timestamptz)
     ORDER BY id`,
    [currency, from, to],
  );
  return rows.map((r) => r.id);
}

// ---------------------------------------------------------------------------------------------------------
// Closes

/** Closes queue on one advisory lock: "at or before the latest close" is decided by one at a time. */
const CLOSE_LOCK = 7302;

export async function lockCloses(sql: Sql): Promise<void> {
  await sql.query(`SELECT pg_advisory_xact_lock(${CLOSE_LOCK}, 0)`);
}

export interface CloseRow {
  month: string;
  closed_at: Date;
  actor: string;
  note: string;
  unbilled_periods: number;
  open_exceptions: number;
}

export async function latestClose(sql: Sql): Promise<CloseRow | undefined> {
  const [row] = await sql.query<CloseRow>(`SELECT month, closed_at, actor, note, unbilled_periods, open_exceptions FROM revenue_closes ORDER BY month DESC LIMIT 1`);
  return row;
}

export async function listCloseRows(sql: Sql, q: { before: string | null; limit: number }): Promise<CloseRow[]> {
  return sql.query<CloseRow>(
    `SELECT month, closed_at, actor, note, unbilled_periods, open_exceptions FROM revenue_closes
     WHERE ($1::text IS NULL OR month < $1) ORDER BY month DESC LIMIT $2`,
    [q.before, q.limit],
  );
}

export async function insertClose(sql: Sql, c: { month: string; closedAt: string; actor: string; note: string; unbilledPeriods: number; openExceptions: number }): Promise<void> {
  await sql.query(
    `INSERT INTO revenue_closes (month, closed_at, actor, note, unbilled_periods, open_exceptions) VALUES ($1, $2::timestamptz, $3, $4, $5, $6)`,
    [c.month, c.closedAt, c.actor, c.note, c.unbilledPeriods, c.openExceptions],
  );
}

/** Each contract's months as they stood, in one statement per 5,000. Months already stored are kept as they were. */
export async function insertClosedMonths(sql: Sql, closeMonth: string, rows: readonly { contractId: string; month: string; figures: unknown }[]): Promise<void> {
  for (let at = 0; at < rows.length; at += 5000) {
    const chunk = rows.slice(at, at + 5000);
    await sql.query(
      `INSERT INTO revenue_closed_months (contract_id, month, close_month, figures)
       SELECT c, m, $1, f FROM unnest($2::uuid[], $3::text[], $4::jsonb[]) AS r(c, m, f)
       ON CONFLICT (contract_id, month) DO NOTHING`,
      [closeMonth, chunk.map((r) => r.contractId), chunk.map((r) => r.month), chunk.map((r) => JSON.stringify(r.figures))],
    );
  }
}

/** Contracts whose term started before the instant (the ones a close can hold months of). */
export async function contractsStartedBefore(sql: Sql, before: Date): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(`SELECT id::text AS id FROM contracts WHERE term_start < $1::timestamptz ORDER BY id`, [before]);
  return rows.map((r) => r.id);
}

export async function openExceptionCount(sql: Sql): Promise<number> {
  const [row] = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM exceptions WHERE status = 'open'`);
  return row?.n ?? 0;
}
