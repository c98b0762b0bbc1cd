// Signing off a run (DESIGN.md §7.1, step 6): refused, naming the breaks, until every break other than
// `timing` (the watch-list follows it) and `credit` (expected) has a disposition; then once, audited.
import type { Database } from "../../db/client.js";
import { insertSignOff, lockRun, runById, undecidedBreakIds } from "../../db/queries/reconciliations.js";
import { transaction } from "../../db/tx.js";
import { NO_DISPOSITION_NEEDED } from "../../domain/index.js";
import { conflict, notFound } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { type RunView, toRunView } from "./read.js";

export async function signOffReconciliation(db: Database, actor: string, runId: string, input: { note: string }, now: Date): Promise<RunView> {
  return transaction(db, async (sql) => {
    const run = await lockRun(sql, runId);
    if (!run) throw notFound("reconciliation", runId);
    if (run.signed_off_at)
      throw conflict(`reconciliation ${runId} is already signed off`, { signedOff: { actor: run.signed_off_actor, note: run.signed_off_note, at: run.signed_off_at.toISOString() } });
    const breakIds = await undecidedBreakIds(sql, runId, [...NO_DISPOSITION_NEEDED]);
    if (breakIds.length > 0)
      throw conflict(`${breakIds.length} break(s) still have no disposition: resolve them before signing off`, { breakIds });
    await insertSignOff(sql, { runId, note: input.note, actor, at: now.toISOString() });
    const signed = toRunView((await runById(sql, runId))!);
    await appendAudit(sql, {
      actor,
      action: "reconciliation.signed_off",
      entityType: "reconciliation",
      entityId: runId,
      payload: { period: signed.period, note: input.note, counts: signed.counts, totals: signed.totals, byCurrency: signed.byCurrency },
    });
    return signed;
  });
}
