// Reading billing runs: the run with its progress and counts (from its items, so they are never out of
// step), and its items.
import { type BillingRunItemRow, type BillingRunRow, itemCounts, listItems, listRuns, runById } from "../../db/queries/billing-runs.js";
import type { Sql } from "../../db/sql.js";
import { notFound } from "../../errors.js";

export interface BillingRunView {
  id: string;
  status: BillingRunRow["status"];
  periodEnd: string;
  autoIssue: boolean;
  contractIds: string[] | null;
  progress: { total: number; done: number };
  counts: { issued: number; previewed: number; blocked: number; nothing_to_issue: number; failed: number };
  startedAt: string;
  finishedAt: string | null;
  startedBy: string;
}

export function toRunView(r: BillingRunRow, counts: ReadonlyMap<string, number>): BillingRunView {
  const n = (s: string) => counts.get(s) ?? 0;
  const done = n("issued") + n("previewed") + n("blocked") + n("nothing_to_issue") + n("failed");
  return {
    id: r.id,
    status: r.status,
    periodEnd: r.period_end.toISOString(),
    autoIssue: r.auto_issue,
    contractIds: r.contract_ids,
    progress: { total: done + n("pending"), done },
    counts: { issued: n("issued"), previewed: n("previewed"), blocked: n("blocked"), nothing_to_issue: n("nothing_to_issue"), failed: n("failed") },
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
    startedBy: r.created_by,
  };
}

async function countsOf(sql: Sql, runIds: string[]): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  for (const c of await itemCounts(sql, runIds)) {
    const m = out.get(c.run_id) ?? new Map<string, number>();
    m.set(c.status, c.n);
    out.set(c.run_id, m);
  }
  return out;
}

export async function getBillingRun(sql: Sql, id: string): Promise<BillingRunView> {
  const run = await runById(sql, id);
  if (!run) throw notFound("billing run", id);
  return toRunView(run, (await countsOf(sql, [id])).get(id) ?? new Map());
}

export async function listBillingRuns(sql: Sql, q: { after?: string | undefined; limit: number }): Promise<BillingRunView[]> {
  const runs = await listRuns(sql, q.after, q.limit);
  const counts = await countsOf(sql, runs.map((r) => r.id));
  return runs.map((r) => toRunView(r, counts.get(r.id) ?? new Map()));
}

export interface BillingRunItemView {
  contractId: string;
  periodStart: string;
  periodEnd: string;
  status: BillingRunItemRow["status"];
  calculationId: string | null;
  documentId: string | null;
  blockingExceptionIds: string[];
  error: string | null;
  finishedAt: string | null;
}

const toItemView = (r: BillingRunItemRow): BillingRunItemView => ({
  contractId: r.contract_id,
  periodStart: r.period_start.toISOString(),
  periodEnd: r.period_end.toISOString(),
  status: r.status,
  calculationId: r.calculation_id,
  documentId: r.document_id,
  blockingExceptionIds: r.blocking_exception_ids,
  error: r.error,
  finishedAt: r.finished_at?.toISOString() ?? null,
});

export async function listBillingRunItems(
  sql: Sql,
  q: { runId: string; status?: string | undefined; after?: { contractId: string; periodStart: string } | undefined; limit: number },
): Promise<BillingRunItemView[]> {
  if (!(await runById(sql, q.runId))) throw notFound("billing run", q.runId);
  return (await listItems(sql, q)).map(toItemView);
}
