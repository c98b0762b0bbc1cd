// Starting a billing run (DESIGN.md §10): in one transaction, the run, one item per contract and period due,
// and one job per chunk of contracts (src/db/queries/billing-runs.ts). The worker bills the items (bill-contracts.ts);
// the run completes when the last item does. At most one run is running: a partial unique index, so two
// concurrent starts, even on two instances, give one run and one 409.
import type { Database } from "../../db/client.js";
import { isUniqueViolation } from "../../db/errors.js";
import { newId } from "../../db/ids.js";
import {
  contractsForRun,
  insertItemsWithJobs,
  insertRun,
  latestDocumentsOf,
  latestQuietItemsOf,
  periodsWithActivity,
  runningRun,
} from "../../db/queries/billing-runs.js";
import { transaction } from "../../db/tx.js";
import { type PeriodHistory, formatInstant, periodsDue } from "../../domain/index.js";
import type { BillingPeriodUnit } from "../../domain/periods.js";
import { conflict, invalid } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { emitWebhookEvent } from "../webhooks/emit.js";
import { BILLING_CHUNK } from "./bill-contracts.js";
import { type BillingRunView, toRunView } from "./read.js";

export interface StartRunInput {
  periodEnd?: string | undefined;
  autoIssue?: boolean | undefined;
  contractIds?: string[] | undefined;
}

export async function startBillingRun(db: Database, actor: string, input: StartRunInput, now: Date): Promise<BillingRunView> {
  const periodEndMs = input.periodEnd === undefined ? now.getTime() : Date.parse(input.periodEnd);
  // A period is billed once it has ended: a run cannot close what is still running.
  if (periodEndMs > now.getTime()) throw invalid([{ field: "periodEnd", message: `must not be after now (${now.toISOString()}): only ended periods are billed` }]);
  const periodEnd = formatInstant(periodEndMs);
  const contractIds = input.contractIds ? [...new Set(input.contractIds)].sort() : null;
  try {
    return await transaction(db, async (sql) => {
      const running = await runningRun(sql);
      if (running) throw conflict(`billing run ${running.id} is still running: one run at a time`, { runId: running.id });
      const contracts = await contractsForRun(sql, periodEnd, contractIds);
      if (contractIds) {
        const found = new Set(contracts.map((c) => c.id));
        const unknown = contractIds.filter((id) => !found.has(id));
        if (unknown.length)
          throw invalid(unknown.map((id) => ({ field: `contractIds.${contractIds.indexOf(id)}`, message: `contract ${id} does not exist or starts after periodEnd` })));
      }
      const items = await duePeriods(sql, contracts, periodEndMs);
      const run = await insertRun(sql, { id: newId(), periodEnd, autoIssue: input.autoIssue ?? false, contractIds, createdBy: actor, empty: items.length === 0 });
      await insertItemsWithJobs(sql, run.id, items, BILLING_CHUNK);
      const view = toRunView(run, new Map([["pending", items.length]]));
      if (items.length === 0) await emitWebhookEvent(sql, "billing_run.completed", view);
      await appendAudit(sql, {
        actor,
        action: "billing_run.started",
        entityType: "billing_run",
        entityId: run.id,
        payload: { periodEnd, autoIssue: run.auto_issue, contractIds, items: items.length },
      });
      return view;
    });
  } catch (e) {
    // The other start committed first.
    if (isUniqueViolation(e)) throw conflict("another billing run started at the same time: one run at a time");
    throw e;
  }
}

type RunContract = Awaited<ReturnType<typeof contractsForRun>>[number];

/** Every contract's due periods: what was issued, what a run found quiet, and what changed since either. */
async function duePeriods(sql: Parameters<typeof contractsForRun>[0], contracts: RunContract[], periodEndMs: number) {
  const ids = contracts.map((c) => c.id);
  // Per contract, per period start: its history, and since when activity counts.
  const history = new Map<string, Map<string, PeriodHistory>>();
  const lookups: { contractId: string; start: Date; end: Date; since: Date }[] = [];
  const record = (contractId: string, start: Date, end: Date, since: Date, h: PeriodHistory) => {
    const own = history.get(contractId) ?? new Map<string, PeriodHistory>();
    history.set(contractId, own);
    if (own.has(start.toISOString())) return; // a document outranks a quiet item
    own.set(start.toISOString(), h);
    lookups.push({ contractId, start, end, since });
  };
  for (const d of await latestDocumentsOf(sql, ids)) record(d.contract_id, d.period_start, d.period_end, d.issued_at, { documented: true, quiet: false, activitySince: false });
  for (const q of await latestQuietItemsOf(sql, ids)) record(q.contract_id, q.period_start, q.period_end, q.finished_at, { documented: false, quiet: true, activitySince: false });
  // Activity since, for the known periods only, in one statement.
  for (const a of await periodsWithActivity(sql, lookups)) history.get(a.contract_id)!.get(a.period_start.toISOString())!.activitySince = true;

  const none = new Map<string, PeriodHistory>();
  return contracts.flatMap((c) => periodsDue(periodContract(c), periodEndMs, history.get(c.id) ?? none).map((p) => ({ contractId: c.id, start: p.start, end: p.end })));
}

const periodContract = (c: RunContract) => ({
  startDate: c.start_date,
  endDate: c.end_date,
  timezone: c.timezone,
  billingPeriod: c.billing_period as BillingPeriodUnit,
});
