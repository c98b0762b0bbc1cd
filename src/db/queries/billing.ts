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

/** What rating a period needs of the contract's billing so far, in one round trip (what was five queries). */
export interface BillingHistory {
  /** alreadyBilled() of the period. */
  already_billed: string;
  /** The rows already_billed adds up, in the order they were recorded (time-ordered ids). */
  billed_sources: BilledSource[];
  /** Credits used per grant by the latest issued document of every other period (rule 10). */
  credits_used_elsewhere: { grant_id: string; used: string }[];
  /** The credits recorded by the period's latest document. */
  latest_credits: { grant_id: string; amount: string }[];
  /** Every period of the contract with an issued document. */
  issued_starts: Date[];
  issued_ends: Date[];
  /** The period's latest issued document, if any. */
  latest_id: string | null;
  latest_number: string | null;
  latest_issued_at: Date | null;
}

export async function billingHistory(sql: Sql, contractId: string, period: PeriodRef): Promise<BillingHistory> {
  const [row] = await sql.query<BillingHistory>(
    `WITH docs AS (
       SELECT id, kind, number, amount, period_start, period_end, issued_at, kind_seq FROM documents WHERE contract_id = $1::uuid),
     latest AS (SELECT DISTINCT ON (period_start) id, period_start, number, issued_at FROM docs ORDER BY period_start, issued_at DESC, kind_seq DESC),
     external AS (
       SELECT id, reference, amount FROM external_billings
       WHERE contract_id = $1::uuid AND period_start >= $2::timestamptz AND period_start < $3::timestamptz),
     sources AS (
       SELECT kind AS source, number AS reference, (CASE kind WHEN 'invoice' THEN amount ELSE -amount END) AS amount, id
       FROM docs WHERE period_start = $2::timestamptz
       UNION ALL
       SELECT 'external_billing', reference, amount, id FROM external),
     period_latest AS (SELECT * FROM latest WHERE period_start = $2::timestamptz)
     SELECT
       COALESCE((SELECT sum(amount) FROM sources), 0)::text AS already_billed,
       (SELECT COALESCE(json_agg(json_build_object('source', source, 'reference', reference, 'amount', amount::text) ORDER BY id), '[]') FROM sources) AS billed_sources,
       (SELECT COALESCE(json_agg(json_build_object('grant_id', grant_id, 'used', used::text)), '[]')
        FROM (SELECT d.grant_id, sum(d.amount) AS used FROM credit_drawdowns d JOIN latest l ON l.id = d.document_id
              WHERE l.period_start <> $2::timestamptz GROUP BY d.grant_id) u) AS credits_used_elsewhere,
       (SELECT COALESCE(json_agg(json_build_object('grant_id', d.grant_id, 'amount', d.amount::text)), '[]')
        FROM credit_drawdowns d WHERE d.document_id = (SELECT id FROM period_latest)) AS latest_credits,
       ARRAY(SELECT period_start FROM (SELECT DISTINCT period_start, period_end FROM docs) p ORDER BY period_start, period_end) AS issued_starts,
       ARRAY(SELECT period_end FROM (SELECT DISTINCT period_start, period_end FROM docs) p ORDER BY period_start, period_end) AS issued_ends,
       (SELECT id::text FROM period_latest) AS latest_id,
       (SELECT number FROM period_latest) AS latest_number,
       (SELECT issued_at FROM period_latest) AS latest_issued_at`,
    [contractId, period.start, period.end],
    "billing_history", // every rating reads it: parsed and planned once per connection
  );
  return row!;
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
