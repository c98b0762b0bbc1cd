// Exceptions: what needs a human decision before money moves (docs/rating.md, "Exceptions"). Stored once per kind
// and subject: the dedupe key makes raising idempotent, so previews and ingestion can raise freely and an
// approval survives re-previews with the same subject.
import type { Database } from "../db/client.js";
import { newId } from "../db/ids.js";
import { type Sql, sqlOf, withTransaction } from "../db/tx.js";
import { ProblemError, notFound } from "../http/problems.js";
import { appendAudit } from "./audit.js";

export type ExceptionKind =
  | "missing_terms"
  | "unpriced_metric"
  | "unmapped_usage"
  | "usage_spike"
  | "materiality"
  | "late_usage"
  | "over_billed"
  | "amendment_conflict";

export const BLOCKING: Record<ExceptionKind, boolean> = {
  missing_terms: true,
  unpriced_metric: true,
  unmapped_usage: false,
  usage_spike: true,
  materiality: true,
  late_usage: true,
  over_billed: true,
  amendment_conflict: true,
};

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

export interface ExceptionView {
  id: string;
  kind: ExceptionKind;
  blocking: boolean;
  status: "open" | "approved" | "rejected";
  contractId: string | null;
  customerId: string | null;
  period: { start: string; end: string } | null;
  subject: string;
  message: string;
  details: Record<string, unknown>;
  owner: string | null;
  calculationId: string | null;
  createdAt: string;
  lastSeenAt: string;
  resolution: { decision: string; note: string | null; actor: string; at: string } | null;
}

interface ExceptionRow {
  id: string;
  kind: string;
  blocking: boolean;
  status: string;
  contract_id: string | null;
  customer_id: string | null;
  period_start: Date | null;
  period_end: Date | null;
  subject: string;
  message: string;
  details: Record<string, unknown>;
  owner: string | null;
  calculation_id: string | null;
  created_at: Date;
  last_seen_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
  decision: string | null;
  note: string | null;
}

const COLUMNS = `id::text AS id, kind, blocking, status, contract_id::text AS contract_id, customer_id, period_start, period_end,
  subject, message, details, owner, calculation_id::text AS calculation_id, created_at, last_seen_at, resolved_at, resolved_by, decision, note`;

export function toExceptionView(r: ExceptionRow): ExceptionView {
  return {
    id: r.id,
    kind: r.kind as ExceptionKind,
    blocking: r.blocking,
    status: r.status as ExceptionView["status"],
    contractId: r.contract_id,
    customerId: r.customer_id,
    period: r.period_start && r.period_end ? { start: r.period_start.toISOString(), end: r.period_end.toISOString() } : null,
    subject: r.subject,
    message: r.message,
    details: r.details,
    owner: r.owner,
    calculationId: r.calculation_id,
    createdAt: r.created_at.toISOString(),
    lastSeenAt: r.last_seen_at.toISOString(),
    resolution:
      r.decision && r.resolved_at
        ? { decision: r.decision, note: r.note, actor: r.resolved_by ?? "", at: r.resolved_at.toISOString() }
        : null,
  };
}

/**
 * Raises an exception, or finds the one already raised for the same kind and subject (refreshing its
 * message, details and last-seen time; a decision already taken stands). Returns the stored exception.
 */
export async function raiseException(sql: Sql, e: RaiseException): Promise<ExceptionView> {
  const [row] = await sql.query<ExceptionRow>(
    `INSERT INTO exceptions (id, kind, blocking, dedupe_key, contract_id, customer_id, period_start, period_end,
                             subject, message, details, calculation_id, owner)
     VALUES ($1::uuid, $2, $3, $4, $5::uuid, $6, $7::timestamptz, $8::timestamptz, $9, $10, $11::jsonb, $12::uuid, $13)
     ON CONFLICT (dedupe_key) DO UPDATE
       SET message = EXCLUDED.message, details = EXCLUDED.details, last_seen_at = now(),
           calculation_id = COALESCE(EXCLUDED.calculation_id, exceptions.calculation_id)
     RETURNING ${COLUMNS}`,
    [
      newId(),
      e.kind,
      BLOCKING[e.kind],
      dedupeKey(e),
      e.contractId,
      e.customerId ?? null,
      e.period?.start ?? null,
      e.period?.end ?? null,
      e.subject,
      e.message,
      JSON.stringify(e.details),
      e.calculationId ?? null,
      e.owner ?? null,
    ],
  );
  return toExceptionView(row!);
}

export async function getException(sql: Sql, id: string): Promise<ExceptionView> {
  const [row] = await sql.query<ExceptionRow>(`SELECT ${COLUMNS} FROM exceptions WHERE id = $1::uuid`, [id]);
  if (!row) throw notFound("exception", id);
  return toExceptionView(row);
}

export async function listExceptions(
  sql: Sql,
  q: { status?: string | undefined; contractId?: string | undefined; kind?: string | undefined; after?: string | undefined; limit: number },
): Promise<ExceptionView[]> {
  const rows = await sql.query<ExceptionRow>(
    `SELECT ${COLUMNS} FROM exceptions
     WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR contract_id = $2::uuid)
       AND ($3::text IS NULL OR kind = $3) AND ($4::uuid IS NULL OR id > $4::uuid)
     ORDER BY id LIMIT $5`,
    [q.status ?? null, q.contractId ?? null, q.kind ?? null, q.after ?? null, q.limit],
  );
  return rows.map(toExceptionView);
}

/**
 * Records a decision. `approve` clears a blocking exception; `reject` keeps the issue blocked. A rejection
 * can be reconsidered (approve once the cause is understood); an approval is final, and so is a rejection
 * against another rejection. The database enforces the same (migration 20261201000000_least_privilege).
 * Every decision is audited in the same transaction.
 */
export async function resolveException(db: Database, actor: string, id: string, input: { decision: "approve" | "reject"; note: string }) {
  return withTransaction(db, async (tx) => {
    const sql = sqlOf(tx);
    const [locked] = await sql.query<{ id: string }>("SELECT id::text AS id FROM exceptions WHERE id = $1::uuid FOR UPDATE", [id]);
    if (!locked) throw notFound("exception", id);
    const before = await getException(sql, id);
    if (before.status === "approved")
      throw new ProblemError("conflict", "the exception is already approved: an approval is final", { exception: before });
    if (before.status === "rejected" && input.decision === "reject")
      throw new ProblemError("conflict", "the exception is already rejected; approve it once the cause is understood", { exception: before });
    const status = input.decision === "approve" ? "approved" : "rejected";
    await sql.query(
      `UPDATE exceptions SET status = $2, decision = $3, note = $4, resolved_by = $5, resolved_at = now() WHERE id = $1::uuid`,
      [id, status, input.decision, input.note, actor],
    );
    const after = await getException(sql, id);
    await appendAudit(sql, {
      actor,
      action: `exception.${input.decision === "approve" ? "approved" : "rejected"}`,
      entityType: "exception",
      entityId: id,
      payload: { kind: after.kind, contractId: after.contractId, subject: after.subject, decision: input.decision, note: input.note, previousStatus: before.status },
    });
    return after;
  });
}
