// Raising exceptions: what needs a human decision before money moves (docs/rating.md, "Exceptions"). Stored once
// per kind and subject: the dedupe key makes raising idempotent, so previews and ingestion can raise freely and
// an approval survives re-previews with the same subject.
import { newId } from "../../db/ids.js";
import { upsertException } from "../../db/queries/exceptions.js";
import type { Sql } from "../../db/sql.js";
import { type ExceptionKind, isBlocking } from "../../domain/exception-kinds.js";
import { emitWebhookEvent } from "../webhooks/emit.js";
import { type ExceptionView, toExceptionView } from "./read.js";

export interface RaiseException {
  kind: ExceptionKind;
  /** The contract, or null for usage that maps to none (then customerId names whose it is). */
  contractId: string | null;
  customerId?: string | null;
  period: { start: string; end: string } | null;
  /** What the exception is about within the period: a metric, a version, a document id; "" if the period itself. */
  subject: string;
  message: string;
  details: Record<string, unknown>;
  calculationId?: string | null;
  owner?: string | null;
}

export const dedupeKey = (e: Pick<RaiseException, "kind" | "contractId" | "customerId" | "period" | "subject">) =>
  [e.kind, e.contractId ?? `customer:${e.customerId ?? ""}`, e.period?.start ?? "", e.subject].join("|");

/**
 * Raises an exception, or finds the one already raised for the same kind and subject (refreshing its
 * message, details and last-seen time; a decision already taken stands). Returns the stored exception.
 */
export async function raiseException(sql: Sql, e: RaiseException): Promise<ExceptionView> {
  const row = await upsertException(sql, {
    id: newId(),
    kind: e.kind,
    blocking: isBlocking(e.kind),
    dedupeKey: dedupeKey(e),
    contractId: e.contractId,
    customerId: e.customerId ?? null,
    periodStart: e.period?.start ?? null,
    periodEnd: e.period?.end ?? null,
    subject: e.subject,
    message: e.message,
    details: e.details,
    calculationId: e.calculationId ?? null,
    owner: e.owner ?? null,
  });
  const view = toExceptionView(row);
  if (row.inserted) await emitWebhookEvent(sql, "exception.raised", view);
  return view;
}
