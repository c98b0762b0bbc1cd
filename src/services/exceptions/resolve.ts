// Resolving an exception: a decision by an approver, audited in the same transaction.
import type { Database } from "../../db/client.js";
import { lockException, recordDecision } from "../../db/queries/exceptions.js";
import { transaction } from "../../db/tx.js";
import { conflict, notFound } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { emitWebhookEvent } from "../webhooks/emit.js";
import { type ExceptionView, toExceptionView } from "./read.js";

/**
 * Records a decision. `approve` clears a blocking exception; `reject` keeps the issue blocked. A rejection
 * can be reconsidered (approve once the cause is understood); an approval is final, and so is a rejection
 * against another rejection. The database enforces the same (migration 20261201000000_least_privilege).
 */
export async function resolveException(
  db: Database,
  actor: string,
  id: string,
  input: { decision: "approve" | "reject"; note: string },
): Promise<ExceptionView> {
  return transaction(db, async (sql) => {
    const locked = await lockException(sql, id);
    if (!locked) throw notFound("exception", id);
    const before = toExceptionView(locked);
    if (before.status === "approved") throw conflict("the exception is already approved: an approval is final", { exception: before });
    if (before.status === "rejected" && input.decision === "reject")
      throw conflict("the exception is already rejected; approve it once the cause is understood", { exception: before });
    const status = input.decision === "approve" ? "approved" : "rejected";
    const after = toExceptionView(await recordDecision(sql, id, { status, decision: input.decision, note: input.note, actor }));
    await appendAudit(sql, {
      actor,
      action: `exception.${status}`,
      entityType: "exception",
      entityId: id,
      payload: { kind: after.kind, contractId: after.contractId, subject: after.subject, decision: input.decision, note: input.note, previousStatus: before.status },
    });
    await emitWebhookEvent(sql, "exception.resolved", after);
    return after;
  });
}
