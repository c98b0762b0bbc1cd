// Billing runs SQL (DESIGN.md §10): the run, its items (one per contract and period), what is due, and the
// jobs that work the items (one per contract, so a contract's periods are billed oldest first).
import type { Sql } from "../sql.js";
import { PRIORITY, TASKS } from "./jobs.js";

export interface BillingRunRow {
  id: string;
  status: "running" | "completed" | "failed";
  period_end: Date;
  auto_issue: boolean;
  contract_ids: string[] | null;
  created_by: string;
  started_at: Date;
  finished_at: Date | null;
}

const RUN_COLUMNS = `id::text AS id, status, period_end, auto_issue, contract_ids::text[] AS contract_ids, created_by, started_at, finished_at`;

/** A run; one with nothing to do is stored completed at once. */
export async function insertRun(
  sql: Sql,
  r: { id: string; periodEnd: string; autoIssue: boolean; contractIds: string[] | null; createdBy: string; empty: boolean },
): Promise<BillingRunRow> {
  const [row] = await sql.query<BillingRunRow>(
    `INSERT INTO billing_runs (id, period_end, auto_issue, contract_ids, created_by, status, finished_at)
     VALUES ($1::uuid, $2::timestamptz, $3, $4::text[], $5, CASE WHEN $6 THEN 'completed' ELSE 'running' END, CASE WHEN $6 THEN clock_timestamp() END)
     RETURNING ${RUN_COLUMNS}`,
    [r.id, r.periodEnd, r.autoIssue, r.contractIds, r.createdBy, r.empty],
  );
  return row!;
}

export async function runById(sql: Sql, id: string, lock = false): Promise<BillingRunRow | undefined> {
  const [row] = await sql.query<BillingRunRow>(`SELECT ${RUN_COLUMNS} FROM billing_runs WHERE id = $1::uuid${lock ? " FOR UPDATE" : ""}`, [id]);
  return row;
}

export async function runningRun(sql: Sql): Promise<BillingRunRow | undefined> {
  const [row] = await sql.query<BillingRunRow>(`SELECT ${RUN_COLUMNS} FROM billing_runs WHERE status = 'running'`);
  return row;
}

export async function listRuns(sql: Sql, after: string | undefined, limit: number): Promise<BillingRunRow[]> {
  return sql.query<BillingRunRow>(`SELECT ${RUN_COLUMNS} FROM billing_runs WHERE ($1::uuid IS NULL OR id < $1::uuid) ORDER BY id DESC LIMIT $2`, [after ?? null, limit]);
}

/** Items by status, for a run's progress and counts. */
export async function itemCounts(sql: Sql, runIds: string[]): Promise<{ run_id: string; status: string; n: number }[]> {
  return sql.query(`SELECT run_id::text AS run_id, status, count(*)::int AS n FROM billing_run_items WHERE run_id = ANY($1::uuid[]) GROUP BY 1, 2`, [runIds]);
}

/** The contracts a run considers: their terms overlap (-infinity, periodEnd), optionally only the named ones. */
export async function contractsForRun(sql: Sql, periodEnd: string, contractIds: string[] | null) {
  return sql.query<{ id: string; timezone: string; billing_period: string; start_date: string; end_date: string | null }>(
    `SELECT id::text AS id, timezone, billing_period, to_char(start_date, 'YYYY-MM-DD') AS start_date, to_char(end_date, 'YYYY-MM-DD') AS end_date
     FROM contracts WHERE term_start < $1::timestamptz AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[])) ORDER BY id`,
    [periodEnd, contractIds],
  );
}

/** Each contract period's latest document (its issue time), for the contracts named. */
export async function latestDocumentsOf(sql: Sql, contractIds: string[]) {
  return sql.query<{ contract_id: string; period_start: Date; period_end: Date; issued_at: Date }>(
    `SELECT DISTINCT ON (contract_id, period_start) contract_id::text AS contract_id, period_start, period_end, issued_at
     FROM documents WHERE contract_id = ANY($1::uuid[]) ORDER BY contract_id, period_start, issued_at DESC`,
    [contractIds],
  );
}

/** Each contract period's latest run item that found nothing to issue (and when). */
export async function latestQuietItemsOf(sql: Sql, contractIds: string[]) {
  return sql.query<{ contract_id: string; period_start: Date; period_end: Date; finished_at: Date }>(
    `SELECT contract_id, period_start, period_end, finished_at FROM (
       SELECT DISTINCT ON (contract_id, period_start) contract_id::text AS contract_id, period_start, period_end, finished_at, status
       FROM billing_run_items WHERE contract_id = ANY($1::uuid[]) AND finished_at IS NOT NULL
       ORDER BY contract_id, period_start, finished_at DESC) latest
     WHERE status = 'nothing_to_issue'`,
    [contractIds],
  );
}

/**
 * Of the given contract periods, those with activity since an instant: events of the contract's ids in the
 * period received after it (late ones, for a period with a document, are flagged `late` and indexed), or voided after it.
 */
export async function periodsWithActivity(
  sql: Sql,
  periods: { contractId: string; start: Date; end: Date; since: Date }[],
): Promise<{ contract_id: string; period_start: Date }[]> {
  if (periods.length === 0) return [];
  return sql.query(
    `SELECT x.contract_id::text AS contract_id, x.period_start
     FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[]) AS x(contract_id, period_start, period_end, since)
     JOIN contracts c ON c.id = x.contract_id
     WHERE EXISTS (SELECT 1 FROM usage_events e
                   WHERE e.customer_id = ANY(array_append(COALESCE(c.account_ids, '{}'), c.customer_id))
                     AND e.occurred_at >= x.period_start AND e.occurred_at < x.period_end
                     AND (e.received_at > x.since OR e.voided_at > x.since))`,
    [periods.map((p) => p.contractId), periods.map((p) => p.start), periods.map((p) => p.end), periods.map((p) => p.since)],
  );
}

/**
 * The run's items and its jobs, in the run's transaction: one job per `chunk` contracts (in id order), which
 * bills their periods oldest first; a chunk shares its transactions, its document numbers and its audit append.
 */
export async function insertItemsWithJobs(sql: Sql, runId: string, items: { contractId: string; start: string; end: string }[], chunk: number): Promise<void> {
  if (items.length === 0) return;
  await sql.query(
    `WITH i AS (
       INSERT INTO billing_run_items (run_id, contract_id, period_start, period_end)
       SELECT $1::uuid, x.contract_id, x.period_start, x.period_end FROM unnest($2::uuid[], $3::timestamptz[], $4::timestamptz[]) AS x(contract_id, period_start, period_end)
       RETURNING contract_id),
     c AS (SELECT contract_id, (row_number() OVER (ORDER BY contract_id) - 1) / $6::int AS chunk FROM (SELECT DISTINCT contract_id FROM i) d),
     chunks AS (SELECT chunk, json_agg(contract_id::text ORDER BY contract_id) AS ids FROM c GROUP BY chunk)
     SELECT graphile_worker.add_jobs(array_agg(($5::text, json_build_object('runId', $1::text, 'contractIds', chunks.ids), NULL, NULL, NULL, NULL, ${PRIORITY.billing}, NULL)::graphile_worker.job_spec ORDER BY chunks.chunk))
     FROM chunks`,
    [runId, items.map((i) => i.contractId), items.map((i) => i.start), items.map((i) => i.end), TASKS.billContracts, chunk],
  );
}

export interface BillingRunItemRow {
  run_id: string;
  contract_id: string;
  period_start: Date;
  period_end: Date;
  status: "pending" | "issued" | "previewed" | "blocked" | "nothing_to_issue" | "failed";
  calculation_id: string | null;
  document_id: string | null;
  blocking_exception_ids: string[];
  error: string | null;
  finished_at: Date | null;
}

const ITEM_COLUMNS = `run_id::text AS run_id, contract_id::text AS contract_id, period_start, period_end, status, calculation_id::text AS calculation_id,
  document_id::text AS document_id, blocking_exception_ids::text[] AS blocking_exception_ids, error, finished_at`;

/** A contract's items of a run still to do, oldest period first. */
export async function pendingItemsOf(sql: Sql, runId: string, contractId: string): Promise<BillingRunItemRow[]> {
  return sql.query<BillingRunItemRow>(
    `SELECT ${ITEM_COLUMNS} FROM billing_run_items WHERE run_id = $1::uuid AND contract_id = $2::uuid AND status = 'pending' ORDER BY period_start`,
    [runId, contractId],
  );
}

export async function setItemCalculation(sql: Sql, item: { runId: string; contractId: string; periodStart: Date }, calculationId: string): Promise<void> {
  await sql.query(
    `UPDATE billing_run_items SET calculation_id = $4::uuid WHERE run_id = $1::uuid AND contract_id = $2::uuid AND period_start = $3::timestamptz AND status = 'pending'`,
    [item.runId, item.contractId, item.periodStart, calculationId],
  );
}

export interface ItemOutcome {
  status: Exclude<BillingRunItemRow["status"], "pending">;
  /** The calculation the outcome came from, when it is not the one already on the item. */
  calculationId?: string | null;
  documentId: string | null;
  blockingExceptionIds: string[];
  error: string | null;
}

/** Completes a pending item once. */
export async function completeItem(sql: Sql, item: { runId: string; contractId: string; periodStart: Date }, o: ItemOutcome): Promise<void> {
  await completeItems(sql, item.runId, [{ contractId: item.contractId, periodStart: item.periodStart, outcome: o }]);
}

/** Completes pending items once, in one statement (a chunk's). */
export async function completeItems(sql: Sql, runId: string, items: { contractId: string; periodStart: Date; outcome: ItemOutcome }[]): Promise<void> {
  if (items.length === 0) return;
  await sql.query(
    `UPDATE billing_run_items i SET status = x.status, document_id = x.document_id, error = x.error, finished_at = clock_timestamp(),
       blocking_exception_ids = ARRAY(SELECT jsonb_array_elements_text(x.blocking)), calculation_id = COALESCE(x.calculation_id, i.calculation_id)
     FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::uuid[], $6::jsonb[], $7::text[], $8::uuid[])
       AS x(contract_id, period_start, status, document_id, blocking, error, calculation_id)
     WHERE i.run_id = $1::uuid AND i.contract_id = x.contract_id AND i.period_start = x.period_start AND i.status = 'pending'`,
    [
      runId,
      items.map((i) => i.contractId),
      items.map((i) => i.periodStart),
      items.map((i) => i.outcome.status),
      items.map((i) => i.outcome.documentId),
      items.map((i) => JSON.stringify(i.outcome.blockingExceptionIds)),
      items.map((i) => i.outcome.error),
      items.map((i) => i.outcome.calculationId ?? null),
    ],
  );
}

/**
 * The pending items of these contracts, locked for the caller's transaction; items another transaction holds
 * (a second copy of the job) are skipped, so each is billed by one of them.
 */
export async function claimPendingItems(sql: Sql, runId: string, contractIds: readonly string[]): Promise<BillingRunItemRow[]> {
  return sql.query<BillingRunItemRow>(
    `SELECT ${ITEM_COLUMNS} FROM billing_run_items
     WHERE run_id = $1::uuid AND contract_id = ANY($2::uuid[]) AND status = 'pending'
     ORDER BY contract_id, period_start FOR UPDATE SKIP LOCKED`,
    [runId, contractIds],
  );
}

/** Whether any item of the run is still to do (the partial index on pending items answers it). */
export async function hasPendingItems(sql: Sql, runId: string): Promise<boolean> {
  const [row] = await sql.query<{ pending: boolean }>(`SELECT EXISTS (SELECT 1 FROM billing_run_items WHERE run_id = $1::uuid AND status = 'pending') AS pending`, [runId]);
  return row!.pending;
}

/**
 * Completes the run once no item is pending. Called with the run locked (runById(…, true)), so of two last
 * items finishing together the second sees the first's commit.
 */
export async function completeRunIfDone(sql: Sql, runId: string): Promise<BillingRunRow | undefined> {
  const [row] = await sql.query<BillingRunRow>(
    `UPDATE billing_runs SET status = 'completed', finished_at = clock_timestamp()
     WHERE id = $1::uuid AND status = 'running' AND NOT EXISTS (SELECT 1 FROM billing_run_items WHERE run_id = $1::uuid AND status = 'pending')
     RETURNING ${RUN_COLUMNS}`,
    [runId],
  );
  return row;
}

export async function listItems(
  sql: Sql,
  q: { runId: string; status?: string | undefined; after?: { contractId: string; periodStart: string } | undefined; limit: number },
): Promise<BillingRunItemRow[]> {
  return sql.query<BillingRunItemRow>(
    `SELECT ${ITEM_COLUMNS} FROM billing_run_items
     WHERE run_id = $1::uuid AND ($2::text IS NULL OR status = $2)
       AND ($3::uuid IS NULL OR (contract_id, period_start) > ($3::uuid, $4::timestamptz))
     ORDER BY contract_id, period_start LIMIT $5`,
    [q.runId, q.status ?? null, q.after?.contractId ?? null, q.after?.periodStart ?? null, q.limit],
  );
}
