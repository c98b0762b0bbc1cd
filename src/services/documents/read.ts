// Reading issued documents (invoices and credit memos): one, or a page of them, with their lines.
import { type DocumentRow, documentById, documentLineRows, listDocumentRows } from "../../db/queries/documents.js";
import type { Sql } from "../../db/sql.js";
import { Decimal, minorUnits } from "../../domain/money.js";
import { notFound } from "../../errors.js";

export interface DocumentLineView {
  lineNo: number;
  kind: string;
  /** usage lines: the meter's id. Stored inside the explanation (so the audit digest of the line covers it). */
  meterId?: string;
  metric: string | null;
  amount: string;
  explanation: Record<string, unknown>;
}

export interface DocumentView {
  id: string;
  number: string;
  kind: "invoice" | "credit_memo";
  contractId: string;
  period: { start: string; end: string };
  currency: string;
  lines: DocumentLineView[];
  subtotal: string;
  alreadyBilled: string;
  amount: string;
  /** Each grant's use by the period and its balance after this document (balanceAfter: absent on documents that predate it). */
  creditsApplied: { grantId: string; amount: string; balanceAfter?: string | undefined }[];
  calculationId: string;
  inputsHash: string;
  issuedAt: string;
  issuedBy: string;
}

/** numeric(20,6) back to the currency's exact digits ("32000.000000" → "32000.00"). */
export function trimTo(currencyDigits: number, v: string): string {
  const [i, f = ""] = v.split(".");
  return currencyDigits === 0 ? (i ?? "0") : `${i}.${f.padEnd(currencyDigits, "0").slice(0, currencyDigits)}`;
}

async function linesOf(sql: Sql, ids: string[]): Promise<Map<string, DocumentLineView[]>> {
  const out = new Map<string, DocumentLineView[]>();
  for (const r of await documentLineRows(sql, ids)) {
    const list = out.get(r.document_id) ?? [];
    const { meterId, ...explanation } = r.explanation;
    list.push({
      lineNo: r.line_no,
      kind: r.kind,
      ...(typeof meterId === "string" ? { meterId } : {}),
      metric: r.metric,
      amount: r.amount,
      explanation,
    });
    out.set(r.document_id, list);
  }
  return out;
}

/**
 * A document issued before balances were recorded with its credits: the balance after it is the grant's
 * available balance shown on its credit_applied line minus what the line applied.
 */
function balanceAfterFromLine(grantId: string, lines: DocumentLineView[]): string | undefined {
  const line = lines.find((l) => l.kind === "credit_applied" && l.explanation.grantId === grantId);
  const available = line?.explanation.available;
  if (!line || typeof available !== "string") return undefined;
  const left = new Decimal(available).plus(line.amount); // the line's amount is negative
  return left.toFixed(Math.max(0, available.split(".")[1]?.length ?? 0));
}

function toView(r: DocumentRow, lines: DocumentLineView[]): DocumentView {
  const digits = minorUnits(r.currency);
  return {
    id: r.id,
    number: r.number,
    kind: r.kind,
    contractId: r.contract_id,
    period: { start: r.period_start.toISOString(), end: r.period_end.toISOString() },
    currency: r.currency,
    lines: lines.map((l) => ({ ...l, amount: trimTo(digits, l.amount) })),
    subtotal: trimTo(digits, r.subtotal),
    alreadyBilled: trimTo(digits, r.already_billed),
    amount: trimTo(digits, r.amount),
    creditsApplied: r.credits_applied.map((c) => ({ ...c, balanceAfter: c.balanceAfter ?? balanceAfterFromLine(c.grantId, lines) })),
    calculationId: r.calculation_id,
    inputsHash: r.inputs_hash,
    issuedAt: r.issued_at.toISOString(),
    issuedBy: r.issued_by,
  };
}

export async function getDocument(sql: Sql, id: string): Promise<DocumentView> {
  const row = await documentById(sql, id);
  if (!row) throw notFound("document", id);
  const lines = await linesOf(sql, [id]);
  return toView(row, lines.get(id) ?? []);
}

export async function listDocuments(
  sql: Sql,
  q: { contractId?: string | undefined; kind?: string | undefined; after?: string | undefined; limit: number },
): Promise<DocumentView[]> {
  const rows = await listDocumentRows(sql, { contractId: q.contractId ?? null, kind: q.kind ?? null, after: q.after ?? null, limit: q.limit });
  const lines = await linesOf(sql, rows.map((r) => r.id));
  return rows.map((r) => toView(r, lines.get(r.id) ?? []));
}
