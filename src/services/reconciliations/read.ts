// Reading reconciliations: a run (the statement), the list of runs, the breaks of a run.
import type { Database } from "../../db/client.js";
import { type BreakRow, type RunRow, breakRows, listRunRows, runById } from "../../db/queries/reconciliations.js";
import type { Sql } from "../../db/sql.js";
import { type ClassCount, Decimal, type Disposition, type MoneyStatement, type ReconciliationClass, formatMoney } from "../../domain/index.js";
import { notFound } from "../../errors.js";

export interface RunView {
  id: string;
  period: { start: string; end: string };
  status: "open" | "signed_off";
  counts: Record<ReconciliationClass, ClassCount>;
  totals: { keys: number; breaks: number; underBilled: string | null; overBilled: string | null };
  currency: string | null;
  byCurrency: Record<string, MoneyStatement>;
  unitConversions: Record<string, string>;
  invoicedSource: "caller" | "documents";
  rows: { metered: number; invoiced: number };
  previousRunId: string | null;
  watchlist: { cleared: number; persisting: number };
  signedOff: { actor: string; note: string; at: string } | null;
  createdBy: string;
  createdAt: string;
}

export interface BreakView {
  id: string;
  runId: string;
  contractId: string | null;
  customerId: string;
  metric: string;
  class: Exclude<ReconciliationClass, "match">;
  source: "metering" | "billing" | "both" | null;
  owner: "revops" | "csm" | "watchlist" | "data" | "none";
  raw: string;
  metered: string;
  invoiced: string;
  late: string;
  units: string;
  amount: string | null;
  currency: string | null;
  previousClass: "timing" | null;
  lastInvoicedAt: string | null;
  disposition: { decision: Disposition; note: string; actor: string; at: string } | null;
}

export function toRunView(r: RunRow): RunView {
  return {
    id: r.id,
    period: { start: r.period_start.toISOString(), end: r.period_end.toISOString() },
    status: r.signed_off_at ? "signed_off" : "open",
    counts: r.counts as RunView["counts"],
    totals: r.totals as RunView["totals"],
    currency: r.currency,
    byCurrency: r.by_currency as RunView["byCurrency"],
    unitConversions: r.unit_conversions,
    invoicedSource: r.invoiced_source,
    rows: { metered: r.metered_rows, invoiced: r.invoiced_rows },
    previousRunId: r.previous_run_id,
    watchlist: r.watchlist,
    signedOff: r.signed_off_at ? { actor: r.signed_off_actor!, note: r.signed_off_note!, at: r.signed_off_at.toISOString() } : null,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
  };
}

export function toBreakView(b: BreakRow): BreakView {
  return {
    id: b.id,
    runId: b.run_id,
    contractId: b.contract_id,
    customerId: b.customer_id,
    metric: b.metric,
    class: b.class as BreakView["class"],
    source: b.source as BreakView["source"],
    owner: b.owner as BreakView["owner"],
    raw: b.raw,
    metered: b.metered,
    invoiced: b.invoiced,
    late: b.late,
    units: b.units,
    // numeric(20,6) as the currency writes it ("10.00", JPY "1200").
    amount: b.amount === null || b.currency === null ? b.amount : formatMoney(new Decimal(b.amount), b.currency),
    currency: b.currency,
    previousClass: b.previous_class as BreakView["previousClass"],
    lastInvoicedAt: b.last_invoiced_at?.toISOString() ?? null,
    disposition: b.decision ? { decision: b.decision as Disposition, note: b.note!, actor: b.actor!, at: b.decided_at!.toISOString() } : null,
  };
}

export async function runOrNotFound(sql: Sql, id: string): Promise<RunRow> {
  const run = await runById(sql, id);
  if (!run) throw notFound("reconciliation", id);
  return run;
}

export async function getReconciliation(db: Database, id: string): Promise<RunView> {
  return toRunView(await runOrNotFound(db.sql, id));
}

export async function listReconciliations(
  db: Database,
  q: { periodStart?: string | undefined; periodEnd?: string | undefined; after?: string | undefined; limit: number },
): Promise<RunView[]> {
  return (await listRunRows(db.sql, { periodStart: q.periodStart ?? null, periodEnd: q.periodEnd ?? null, after: q.after ?? null, limit: q.limit })).map(
    toRunView,
  );
}

export async function listBreaks(
  db: Database,
  runId: string,
  q: { class?: string | undefined; owner?: string | undefined; after?: string | undefined; limit: number },
): Promise<BreakView[]> {
  await runOrNotFound(db.sql, runId);
  const rows = await breakRows(db.sql, runId, { class: q.class ?? null, owner: q.owner ?? null, after: q.after ?? null, limit: q.limit });
  return rows.map(toBreakView);
}
