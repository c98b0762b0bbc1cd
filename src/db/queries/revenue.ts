// Revenue SQL (DESIGN.md §7.2): a contract's latest document of each period with its lines and credit
// drawdowns, and what was billed per period (documents and external billings).
import type { Sql } from "../sql.js";

export interface LatestDocumentRow {
  id: string;
  kind: "invoice" | "credit_memo";
  period_start: Date;
  period_end: Date;
  lines: { kind: string; metric: string | null; amount: string; explanation: Record<string, unknown> }[];
  credits: { grantId: string; amount: string }[];
}

/** The latest issued document of each period of the contract, with its lines (in order) and its credit drawdowns. */
export async function latestDocumentsOf(sql: Sql, contractId: string): Promise<LatestDocumentRow[]> {
  return sql.query<LatestDocumentRow>(
    `WITH latest AS (
       SELECT DISTINCT ON (period_start) id, kind, period_start, period_end FROM documents
       WHERE contract_id = $1::uuid ORDER BY period_start, issued_at DESC, kind_seq DESC)
     SELECT l.id::text AS id, l.kind, l.period_start, l.period_end,
            coalesce((SELECT json_agg(json_build_object('kind', dl.kind, 'metric', dl.metric, 'amount', dl.amount::text, 'explanation', dl.explanation)
                                      ORDER BY dl.line_no)
                      FROM document_lines dl WHERE dl.document_id = l.id), '[]'::json) AS lines,
            coalesce((SELECT json_agg(json_build_object('grantId', d.grant_id, 'amount', d.amount::text) ORDER BY d.grant_id)
                      FROM credit_drawdowns d WHERE d.document_id = l.id), '[]'::json) AS credits
     FROM latest l ORDER BY l.period_start`,
    [contractId],
  );
}

/** What was billed, by the instant it is billed for: documents (invoices − credit memos) by their period's start, external billings by theirs. */
export async function billedAmounts(sql: Sql, contractId: string): Promise<{ at: Date; amount: string }[]> {
  return sql.query<{ at: Date; amount: string }>(
    `SELECT period_start AS at, (CASE kind WHEN 'invoice' THEN amount ELSE -amount END)::text AS amount FROM documents WHERE contract_id = $1::uuid
     UNION ALL
     SELECT period_start, amount::text FROM external_billings WHERE contract_id = $1::uuid`,
    [contractId],
  );
}

/** The contracts of a book: every contract (of one currency when given) whose term overlaps [from, to). */
export async function contractsOfBook(sql: Sql, currency: string | null, from: Date, to: Date): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `SELECT id::text AS id FROM contracts
     WHERE ($1::text IS NULL OR currency = $1) AND term_start < $3::timestamptz AND (term_end IS NULL OR term_end > $2::timestamptz)
     ORDER BY id`,
    [currency, from, to],
  );
  return rows.map((r) => r.id);
}
