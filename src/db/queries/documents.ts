// Documents SQL: issued invoices and credit memos with their lines, read back.
import type { Sql } from "../sql.js";

export interface DocumentRow {
  id: string;
  number: string;
  kind: "invoice" | "credit_memo";
  contract_id: string;
  period_start: Date;
  period_end: Date;
  currency: string;
  subtotal: string;
  already_billed: string;
  amount: string;
  credits_applied: { grantId: string; amount: string; balanceAfter?: string }[];
  calculation_id: string;
  inputs_hash: string;
  issued_at: Date;
  issued_by: string;
}

const COLUMNS = `id::text AS id, number, kind, contract_id::text AS contract_id, period_start, period_end, currency, subtotal::text AS subtotal,
  already_billed::text AS already_billed, amount::text AS amount, credits_applied, calculation_id::text AS calculation_id, inputs_hash, issued_at, issued_by`;

export async function documentById(sql: Sql, id: string): Promise<DocumentRow | undefined> {
  const [row] = await sql.query<DocumentRow>(`SELECT ${COLUMNS} FROM documents WHERE id = $1::uuid`, [id]);
  return row;
}

export async function listDocumentRows(
  sql: Sql,
  q: { contractId: string | null; kind: string | null; after: string | null; limit: number },
): Promise<DocumentRow[]> {
  return sql.query<DocumentRow>(
    `SELECT ${COLUMNS} FROM documents
     WHERE ($1::uuid IS NULL OR contract_id = $1::uuid) AND ($2::text IS NULL OR kind = $2) AND ($3::uuid IS NULL OR id > $3::uuid)
     ORDER BY id LIMIT $4`,
    [q.contractId, q.kind, q.after, q.limit],
  );
}

export interface DocumentLineRow {
  document_id: string;
  line_no: number;
  kind: string;
  metric: string | null;
  amount: string;
  explanation: Record<string, unknown>;
}

/** The lines of these documents, in document and line order. */
export async function documentLineRows(sql: Sql, documentIds: string[]): Promise<DocumentLineRow[]> {
  return sql.query<DocumentLineRow>(
    `SELECT document_id::text AS document_id, line_no, kind, metric, amount::text AS amount, explanation
     FROM document_lines WHERE document_id = ANY($1::uuid[]) ORDER BY document_id, line_no`,
    [documentIds],
  );
}

/** Whose document it is, for the backup's header: the contract's customer and timezone. */
export async function documentParty(sql: Sql, contractId: string): Promise<{ customer_id: string; timezone: string } | undefined> {
  const [row] = await sql.query<{ customer_id: string; timezone: string }>(`SELECT customer_id, timezone FROM contracts WHERE id = $1::uuid`, [contractId]);
  return row;
}

/** What alreadyBilled was made of when the document was previewed (its calculation keeps the rows); null if not kept. */
export async function billedBeforeOf<T>(sql: Sql, calculationId: string): Promise<T[] | null> {
  const [row] = await sql.query<{ billed_before: T[] | null }>(`SELECT result->'billedBefore' AS billed_before FROM calculations WHERE id = $1::uuid`, [calculationId]);
  return row?.billed_before ?? null;
}
