// Billing one contract's items of a run one by one (what a chunk falls back to, bill-contracts.ts): each due period, oldest first, previewed
// (or its stored calculation reused, after a crash), then — with autoIssue, when something is due and nothing
// blocks — issued under the idempotency key billing-run:<contractId>:<periodStart>:<inputsHash>, so a job
// that runs again after a crash replays the document instead of issuing it twice. A failure is recorded on
// its item and the run goes on. The last item to finish completes the run and emits billing_run.completed.
import type { Database } from "../../db/client.js";
import {
  type BillingRunItemRow,
  type BillingRunRow,
  type ItemOutcome,
  completeItem,
  completeRunIfDone,
  hasPendingItems,
  pendingItemsOf,
  runById,
  setItemCalculation,
} from "../../db/queries/billing-runs.js";
import { transaction } from "../../db/tx.js";
import { itemDecision } from "../../domain/index.js";
import { DomainError } from "../../errors.js";
import { previewTrueUp } from "../true-ups/preview.js";
import { type CalculationView, getCalculation } from "../true-ups/read.js";
import { ISSUE_SCOPE, issueTrueUp } from "../true-ups/issue.js";
import type { DocumentView } from "../documents/read.js";
import { idempotencyRecord } from "../../db/queries/idempotency.js";
import { emitWebhookEvent } from "../webhooks/emit.js";
import { getBillingRun } from "./read.js";

export async function billContract(db: Database, runId: string, contractId: string, now: Date): Promise<void> {
  const run = await runById(db.sql, runId);
  if (!run || run.status !== "running") return;
  await billContractItems(db, run, contractId, now);
  await completeRunIfLast(db, runId);
}

/** A contract's pending items of the run, each in its own transactions (preview, then issue). */
export async function billContractItems(db: Database, run: BillingRunRow, contractId: string, now: Date): Promise<void> {
  for (const item of await pendingItemsOf(db.sql, run.id, contractId)) {
    const ref = { runId: run.id, contractId, periodStart: item.period_start };
    let outcome: ItemOutcome;
    try {
      outcome = await billItem(db, run.created_by, run.auto_issue, item, now);
    } catch (e) {
      // Anything else (a bug, a database error past its retries) fails this item, not the run.
      outcome = { status: "failed", documentId: null, blockingExceptionIds: [], error: e instanceof Error ? e.message : String(e) };
    }
    await completeItem(db.sql, ref, outcome);
  }
}

/** Completes the run once nothing is pending, and emits billing_run.completed (once: under the run's lock). */
export async function completeRunIfLast(db: Database, runId: string): Promise<void> {
  // Most jobs are not the last: only a job that sees nothing pending takes the run's lock and checks again.
  if (await hasPendingItems(db.sql, runId)) return;
  await transaction(db, async (sql) => {
    await runById(sql, runId, true); // the run's lock orders the last items' completions
    const completed = await completeRunIfDone(sql, runId);
    if (completed) await emitWebhookEvent(sql, "billing_run.completed", await getBillingRun(sql, runId));
  });
}

async function billItem(db: Database, actor: string, autoIssue: boolean, item: BillingRunItemRow, now: Date): Promise<ItemOutcome> {
  const ref = { runId: item.run_id, contractId: item.contract_id, periodStart: item.period_start };
  const preview = async () => {
    const calc = await previewTrueUp(db, actor, item.contract_id, { periodStart: item.period_start.toISOString() }, now);
    await setItemCalculation(db.sql, ref, calc.id);
    return calc;
  };
  let calc: CalculationView = item.calculation_id ? await getCalculation(db, item.calculation_id) : await preview();
  // The item names the calculation its outcome came from (another copy of this job may have stored its own meanwhile).
  const done = (status: ItemOutcome["status"], extra: Partial<ItemOutcome> = {}): ItemOutcome => ({
    status,
    documentId: null,
    blockingExceptionIds: [],
    error: null,
    calculationId: calc.id,
    ...extra,
  });
  // Issuing recomputes: usage that changed since the preview (stale) is previewed once more.
  for (let attempt = 0; ; attempt++) {
    const decision = itemDecision(calc, autoIssue);
    if (decision.status === "blocked") return done("blocked", { blockingExceptionIds: decision.blockingExceptionIds });
    if (decision.status !== "issue") return done(decision.status);
    const key = `billing-run:${item.contract_id}:${item.period_start.toISOString()}:${calc.inputsHash}`;
    try {
      const { document } = await issueTrueUp(db, actor, item.contract_id, { calculationId: calc.id }, key, now);
      return done("issued", { documentId: document.id, calculationId: document.calculationId });
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      if (e.code === "stale_preview" && attempt === 0) {
        calc = await preview();
        continue;
      }
      if (e.code === "blocking_exceptions") {
        const ids = ((e.details as { exceptions?: { id: string }[] }).exceptions ?? []).map((x) => x.id);
        return done("blocked", { blockingExceptionIds: ids });
      }
      if (e.code === "nothing_to_issue") return done("nothing_to_issue");
      // The same key with another calculation: a second copy of this job (a lock released as stale while the
      // first still ran) issued it first. Its document is the item's.
      if (e.code === "idempotency_conflict") {
        const prior = (await idempotencyRecord(db.sql, ISSUE_SCOPE, key))?.response as DocumentView | undefined;
        if (prior) return done("issued", { documentId: prior.id, calculationId: prior.calculationId });
      }
      return done("failed", { error: `${e.code}: ${e.message}` });
    }
  }
}
