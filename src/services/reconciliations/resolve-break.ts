// A disposition of one break (DESIGN.md §7.1, step 6): an approver's decision and note, audited. A break may
// be decided again until its run is signed off (the latest decision counts; every one is kept).
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { breakById, insertDisposition, lockRun } from "../../db/queries/reconciliations.js";
import { transaction } from "../../db/tx.js";
import { Decimal, type Disposition } from "../../domain/index.js";
import { conflict, notFound } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { type BreakView, toBreakView } from "./read.js";

export async function resolveBreak(
  db: Database,
  actor: string,
  runId: string,
  breakId: string,
  input: { decision: Disposition; note: string },
  now: Date,
): Promise<BreakView> {
  return transaction(db, async (sql) => {
    // The run's lock orders this decision against the sign-off: none is recorded after it.
    const run = await lockRun(sql, runId);
    if (!run) throw notFound("reconciliation", runId);
    const before = await breakById(sql, runId, breakId);
    if (!before) throw notFound("break", breakId);
    if (run.signed_off_at) throw conflict(`reconciliation ${runId} is signed off: its dispositions are final`, { signedOff: { actor: run.signed_off_actor, at: run.signed_off_at.toISOString() } });
    // Money that does not flow the way the decision says is a mistake worth stopping (an unpriced break may take either).
    const amount = before.amount === null ? null : new Decimal(before.amount);
    if (input.decision === "catch_up_charge" && amount !== null && !amount.gt(0))
      throw conflict(`a catch-up charge needs an under-billed amount; this break's amount is ${before.amount}`, { breakId, amount: before.amount });
    if (input.decision === "credit" && amount !== null && !amount.lt(0))
      throw conflict(`a credit needs an over-billed amount; this break's amount is ${before.amount}`, { breakId, amount: before.amount });
    await insertDisposition(sql, { id: newId(), breakId, decision: input.decision, note: input.note, actor, at: now.toISOString() });
    const after = (await breakById(sql, runId, breakId))!;
    await appendAudit(sql, {
      actor,
      action: "reconciliation.break_resolved",
      entityType: "reconciliation",
      entityId: runId,
      payload: {
        breakId,
        customerId: before.customer_id,
        metric: before.metric,
        class: before.class,
        amount: before.amount,
        currency: before.currency,
        decision: input.decision,
        note: input.note,
        previousDecision: before.decision,
      },
    });
    return toBreakView(after);
  });
}
