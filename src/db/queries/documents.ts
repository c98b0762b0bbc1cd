// Documents SQL: issued invoices and credit memos — numbered, written with their lines and credit drawdowns
// inside the issuing transaction, and read back.
import type { PeriodRef } from "../../domain/rating/types.js";
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

export async function documentOfCalculation(sql: Sql, calculationId: string) {
  const [row] = await sql.query<{ id: string; number: string }>(
    `SELECT id::text AS id, number FROM documents WHERE calculation_id = $1::uuid`,
    [calculationId],
  );
  return row;
}

/**
 * The database's clock, which stamps every usage event's received_at: a document stamped by it can be
 * compared with arrivals ("received after the document") on one clock, whatever the app servers' clocks say.
 */
export async function databaseNow(sql: Sql): Promise<string> {
  const [row] = await sql.query<{ now: Date }>("SELECT clock_timestamp() AS now");
  return row!.now.toISOString();
}

/**
 * The next `count` numbers of a document kind (the first is returned): the counter row stays locked until the
 * issuing transaction ends, so numbers have no gaps.
 */
export async function nextDocumentSeq(sql: Sql, kind: "invoice" | "credit_memo", count = 1): Promise<number> {
  const [counter] = await sql.query<{ last_number: number }>(
    `UPDATE document_counters SET last_number = last_number + $2 WHERE kind = $1 RETURNING last_number`,
    [kind, count],
  );
  return counter!.last_number - count + 1;
}

export interface DocumentInsert {
  id: string;
  number: string;
  kind: "invoice" | "credit_memo";
  kindSeq: number;
  contractId: string;
  period: PeriodRef;
  currency: string;
  subtotal: string;
  alreadyBilled: string;
  amount: string;
  creditsApplied: { grantId: string; amount: string }[];
  calculationId: string;
  inputsHash: string;
  issuedAt: string;
  issuedBy: string;
  lines: { lineNo: number; kind: string; meterId?: string; metric: string | null; amount: string; explanation: Record<string, unknown> }[];
}

/** The document, its lines and its credit drawdowns (the period's full credit use; a later document for the period supersedes them). */
export async function insertDocument(sql: Sql, d: DocumentInsert): Promise<void> {
  await insertDocuments(sql, [d]);
}

/** Documents with their lines and drawdowns: three statements whatever their number (a billing run chunk's). */
export async function insertDocuments(sql: Sql, docs: readonly DocumentInsert[]): Promise<void> {
  if (docs.length === 0) return;
  await sql.query(
    `INSERT INTO documents (id, number, kind, kind_seq, contract_id, period_start, period_end, currency, subtotal, already_billed,
                            amount, credits_applied, calculation_id, inputs_hash, issued_at, issued_by)
     SELECT d.id, d.number, d.kind, d.kind_seq, d.contract_id, d.period_start, d.period_end, d.currency, d.subtotal, d.already_billed,
            d.amount, d.credits_applied, d.calculation_id, d.inputs_hash, d.issued_at, d.issued_by
     FROM jsonb_to_recordset($1::jsonb) AS d(id uuid, number text, kind text, kind_seq int, contract_id uuid, period_start timestamptz,
       period_end timestamptz, currency text, subtotal numeric, already_billed numeric, amount numeric, credits_applied jsonb,
       calculation_id uuid, inputs_hash text, issued_at timestamptz, issued_by text)`,
    [
      JSON.stringify(
        docs.map((d) => ({
          id: d.id,
          number: d.number,
          kind: d.kind,
          kind_seq: d.kindSeq,
          contract_id: d.contractId,
          period_start: d.period.start,
          period_end: d.period.end,
          currency: d.currency,
          subtotal: d.subtotal,
          already_billed: d.alreadyBilled,
          amount: d.amount,
          credits_applied: d.creditsApplied,
          calculation_id: d.calculationId,
          inputs_hash: d.inputsHash,
          issued_at: d.issuedAt,
          issued_by: d.issuedBy,
        })),
      ),
    ],
  );
  // A usage line's meterId is kept in its explanation (no column of its own): what the audit digest covers.
  const lines = docs.flatMap((d) =>
    d.lines.map((l) => ({
      document_id: d.id,
      line_no: l.lineNo,
      kind: l.kind,
      metric: l.metric,
      amount: l.amount,
      explanation: l.meterId === undefined ? l.explanation : { meterId: l.meterId, ...l.explanation },
    })),
  );
  if (lines.length > 0)
    await sql.query(
      `INSERT INTO document_lines (document_id, line_no, kind, metric, amount, explanation)
       SELECT l.document_id, l.line_no, l.kind, l.metric, l.amount, l.explanation
       FROM jsonb_to_recordset($1::jsonb) AS l(document_id uuid, line_no int, kind text, metric text, amount numeric, explanation jsonb)`,
      [JSON.stringify(lines)],
    );
  const drawdowns = docs.flatMap((d) => d.creditsApplied.map((c) => ({ document_id: d.id, grant_id: c.grantId, contract_id: d.contractId, period_start: d.period.start, amount: c.amount })));
  if (drawdowns.length > 0)
    await sql.query(
      `INSERT INTO credit_drawdowns (document_id, grant_id, contract_id, period_start, amount)
       SELECT c.document_id, c.grant_id, c.contract_id, c.period_start, c.amount
       FROM jsonb_to_recordset($1::jsonb) AS c(document_id uuid, grant_id text, contract_id uuid, period_start timestamptz, amount numeric)`,
      [JSON.stringify(drawdowns)],
    );
}
