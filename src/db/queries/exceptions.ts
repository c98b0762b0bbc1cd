// Exceptions SQL: one row per kind and subject (the dedupe key), raised idempotently, decided once.
import type { Sql } from "../sql.js";

export interface ExceptionRow {
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

export interface ExceptionInsert {
  id: string;
  kind: string;
  blocking: boolean;
  dedupeKey: string;
  contractId: string | null;
  customerId: string | null;
  periodStart: string | null;
  periodEnd: string | null;
  subject: string;
  message: string;
  details: Record<string, unknown>;
  calculationId: string | null;
  owner: string | null;
}

/** Inserts the exception, or refreshes the one with the same dedupe key (a decision already taken stands). */
/** `inserted`: raised now, not refreshed (xmax is 0 on a row this statement inserted). */
export async function upsertException(sql: Sql, e: ExceptionInsert): Promise<ExceptionRow & { inserted: boolean }> {
  const [row] = await sql.query<ExceptionRow & { inserted: boolean }>(
    `INSERT INTO exceptions (id, kind, blocking, dedupe_key, contract_id, customer_id, period_start, period_end,
                             subject, message, details, calculation_id, owner)
     VALUES ($1::uuid, $2, $3, $4, $5::uuid, $6, $7::timestamptz, $8::timestamptz, $9, $10, $11::jsonb, $12::uuid, $13)
     ON CONFLICT (dedupe_key) DO UPDATE
       SET message = EXCLUDED.message, details = EXCLUDED.details, last_seen_at = now(),
           calculation_id = COALESCE(EXCLUDED.calculation_id, exceptions.calculation_id)
     RETURNING ${COLUMNS}, (xmax = 0) AS inserted`,
    [
      e.id,
      e.kind,
      e.blocking,
      e.dedupeKey,
      e.contractId,
      e.customerId,
      e.periodStart,
      e.periodEnd,
      e.subject,
      e.message,
      JSON.stringify(e.details),
      e.calculationId,
      e.owner,
    ],
  );
  return row!;
}

export async function exceptionById(sql: Sql, id: string): Promise<ExceptionRow | undefined> {
  const [row] = await sql.query<ExceptionRow>(`SELECT ${COLUMNS} FROM exceptions WHERE id = $1::uuid`, [id]);
  return row;
}

/** Locks the exception's row for a decision; undefined when there is none. */
export async function lockException(sql: Sql, id: string): Promise<ExceptionRow | undefined> {
  const [row] = await sql.query<ExceptionRow>(`SELECT ${COLUMNS} FROM exceptions WHERE id = $1::uuid FOR UPDATE`, [id]);
  return row;
}

export async function listExceptionRows(
  sql: Sql,
  q: { status: string | null; contractId: string | null; kind: string | null; after: string | null; limit: number },
): Promise<ExceptionRow[]> {
  return sql.query<ExceptionRow>(
    `SELECT ${COLUMNS} FROM exceptions
     WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR contract_id = $2::uuid)
       AND ($3::text IS NULL OR kind = $3) AND ($4::uuid IS NULL OR id > $4::uuid)
     ORDER BY id LIMIT $5`,
    [q.status, q.contractId, q.kind, q.after, q.limit],
  );
}

export async function recordDecision(
  sql: Sql,
  id: string,
  d: { status: "approved" | "rejected"; decision: string; note: string; actor: string },
): Promise<ExceptionRow> {
  const [row] = await sql.query<ExceptionRow>(
    `UPDATE exceptions SET status = $2, decision = $3, note = $4, resolved_by = $5, resolved_at = now() WHERE id = $1::uuid
     RETURNING ${COLUMNS}`,
    [id, d.status, d.decision, d.note, d.actor],
  );
  return row!;
}
