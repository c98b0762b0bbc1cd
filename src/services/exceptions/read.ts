// Reading exceptions: one, or a page of them filtered by status, contract and kind.
import { type ExceptionRow, exceptionById, listExceptionRows } from "../../db/queries/exceptions.js";
import type { Sql } from "../../db/sql.js";
import type { ExceptionKind } from "../../domain/exception-kinds.js";
import { notFound } from "../../errors.js";

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

export async function getException(sql: Sql, id: string): Promise<ExceptionView> {
  const row = await exceptionById(sql, id);
  if (!row) throw notFound("exception", id);
  return toExceptionView(row);
}

export async function listExceptions(
  sql: Sql,
  q: { status?: string | undefined; contractId?: string | undefined; kind?: string | undefined; after?: string | undefined; limit: number },
): Promise<ExceptionView[]> {
  const rows = await listExceptionRows(sql, { status: q.status ?? null, contractId: q.contractId ?? null, kind: q.kind ?? null, after: q.after ?? null, limit: q.limit });
  return rows.map(toExceptionView);
}
