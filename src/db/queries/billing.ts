// Billing SQL: what was billed for a contract's periods — by documents issued here (written by
// queries/documents.ts) and by external billings recorded from elsewhere — and the credits drawn down.
import type { PeriodRef } from "../../domain/rating/types.js";
import type { Sql } from "../sql.js";

/**
 * Already billed for the period (docs/rating.md, rule 11): invoices minus credit memos issued here for it,
 * plus the external billings whose span starts in it. A decimal string.
 */
export async function alreadyBilled(sql: Sql, contractId: string, period: PeriodRef): Promise<string> {
  const [row] = await sql.query<{ amount: string }>(
    `SELECT (COALESCE((SELECT sum(CASE kind WHEN 'invoice' THEN amount ELSE -amount END) FROM documents
                       WHERE contract_id = $1::uuid AND period_start = $2::timestamptz), 0)
           + COALESCE((SELECT sum(amount) FROM external_billings
                       WHERE contract_id = $1::uuid AND period_start >= $2::timestamptz AND period_start < $3::timestamptz), 0))::text AS amount`,
    [contractId, period.start, period.end],
  );
  return row?.amount ?? "0";
}

/** One amount already billed for the period: a document issued here (credit memos negative) or an external billing. */
export interface BilledSource {
  source: "invoice" | "credit_memo" | "external_billing";
  /** The document number (INV-000001) or the external billing's reference. */
  reference: string;
  amount: string;
}

/** The rows alreadyBilled() adds up, in the order they were recorded (time-ordered ids). */
export async function billedSources(sql: Sql, contractId: string, period: PeriodRef): Promise<BilledSource[]> {
  return sql.query<BilledSource>(
    `SELECT source, reference, amount FROM (
       SELECT kind AS source, number AS reference, (CASE kind WHEN 'invoice' THEN amount ELSE -amount END)::text AS amount, id
       FROM documents WHERE contract_id = $1::uuid AND period_start = $2::timestamptz
       UNION ALL
       SELECT 'external_billing', reference, amount::text, id
       FROM external_billings WHERE contract_id = $1::uuid AND period_start >= $2::timestamptz AND period_start < $3::timestamptz) b
     ORDER BY id`,
    [contractId, period.start, period.end],
  );
}

/** Credits used per grant by the latest issued document of every period other than `periodStart` (rule 10). */
export async function creditsUsedElsewhere(sql: Sql, contractId: string, periodStart: string) {
  return sql.query<{ grant_id: string; used: string }>(
    `WITH latest AS (
       SELECT DISTINCT ON (period_start) id, period_start FROM documents
       WHERE contract_id = $1::uuid ORDER BY period_start, issued_at DESC, kind_seq DESC)
     SELECT d.grant_id, sum(d.amount)::text AS used FROM credit_drawdowns d JOIN latest l ON l.id = d.document_id
     WHERE l.period_start <> $2::timestamptz GROUP BY d.grant_id`,
    [contractId, periodStart],
  );
}

/** The credits recorded by the period's latest document. */
export async function latestCreditsApplied(sql: Sql, contractId: string, periodStart: string) {
  return sql.query<{ grant_id: string; amount: string }>(
    `SELECT d.grant_id, d.amount::text AS amount FROM credit_drawdowns d
     WHERE d.document_id = (SELECT id FROM documents WHERE contract_id = $1::uuid AND period_start = $2::timestamptz
                            ORDER BY issued_at DESC, kind_seq DESC LIMIT 1)`,
    [contractId, periodStart],
  );
}

/** Every period of the contract with an issued document. */
export async function issuedPeriods(sql: Sql, contractId: string) {
  return sql.query<{ period_start: Date; period_end: Date }>(
    `SELECT DISTINCT period_start, period_end FROM documents WHERE contract_id = $1::uuid`,
    [contractId],
  );
}

/** The period's latest issued document, if any. */
export async function latestDocument(sql: Sql, contractId: string, periodStart: string) {
  const [row] = await sql.query<{ id: string; number: string; issued_at: Date }>(
    `SELECT id::text AS id, number, issued_at FROM documents WHERE contract_id = $1::uuid AND period_start = $2::timestamptz
     ORDER BY issued_at DESC, kind_seq DESC LIMIT 1`,
    [contractId, periodStart],
  );
  return row;
}

export interface ExternalBillingRow {
  id: string;
  contract_id: string;
  period_start: Date;
  period_end: Date;
  amount: string;
  reference: string;
  created_at: Date;
}

const EXTERNAL_BILLING_COLUMNS = `id::text AS id, contract_id::text AS contract_id, period_start, period_end, amount::text AS amount, reference, created_at`;

export async function externalBillingByReference(sql: Sql, contractId: string, reference: string): Promise<ExternalBillingRow | undefined> {
  const [row] = await sql.query<ExternalBillingRow>(
    `SELECT ${EXTERNAL_BILLING_COLUMNS} FROM external_billings WHERE contract_id = $1::uuid AND reference = $2`,
    [contractId, reference],
  );
  return row;
}

export async function insertExternalBilling(
  sql: Sql,
  b: { id: string; contractId: string; periodStart: Date; periodEnd: Date; amount: string; reference: string; createdBy: string },
): Promise<ExternalBillingRow> {
  const [row] = await sql.query<ExternalBillingRow>(
    `INSERT INTO external_billings (id, contract_id, period_start, period_end, amount, reference, created_by)
     VALUES ($1::uuid, $2::uuid, $3::timestamptz, $4::timestamptz, $5::numeric, $6, $7)
     RETURNING ${EXTERNAL_BILLING_COLUMNS}`,
    [b.id, b.contractId, b.periodStart, b.periodEnd, b.amount, b.reference, b.createdBy],
  );
  return row!;
}
