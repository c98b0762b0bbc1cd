// Issued documents (invoices and credit memos): reads and the customer-facing CSV backup.
import type { Database } from "../db/client.js";
import { pgSql } from "../db/tx.js";
import { minorUnits } from "../domain/money.js";
import { notFound } from "../http/problems.js";
import type { DocumentLineView, DocumentView } from "./true-ups.js";

interface DocumentRow {
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
  credits_applied: { grantId: string; amount: string }[];
  calculation_id: string;
  inputs_hash: string;
  issued_at: Date;
  issued_by: string;
}

const COLUMNS = `id::text AS id, number, kind, contract_id::text AS contract_id, period_start, period_end, currency, subtotal::text AS subtotal,
  already_billed::text AS already_billed, amount::text AS amount, credits_applied, calculation_id::text AS calculation_id, inputs_hash, issued_at, issued_by`;

/** numeric(20,6) back to the currency's exact digits ("32000.000000" → "32000.00"). */
function trimTo(currencyDigits: number, v: string): string {
  const [i, f = ""] = v.split(".");
  return currencyDigits === 0 ? (i ?? "0") : `${i}.${f.padEnd(currencyDigits, "0").slice(0, currencyDigits)}`;
}

async function linesOf(db: Database, ids: string[]): Promise<Map<string, DocumentLineView[]>> {
  const rows = await pgSql(db.pool).query<{ document_id: string; line_no: number; kind: string; metric: string | null; explanation: Record<string, unknown> & { amount?: string }; amount: string }>(
    `SELECT document_id::text AS document_id, line_no, kind, metric, amount::text AS amount, explanation
     FROM document_lines WHERE document_id = ANY($1::uuid[]) ORDER BY document_id, line_no`,
    [ids],
  );
  const out = new Map<string, DocumentLineView[]>();
  for (const r of rows) {
    const list = out.get(r.document_id) ?? [];
    list.push({ lineNo: r.line_no, kind: r.kind, metric: r.metric, amount: r.amount, explanation: r.explanation });
    out.set(r.document_id, list);
  }
  return out;
}

function toView(r: DocumentRow, lines: DocumentLineView[], digits: number): DocumentView {
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
    creditsApplied: r.credits_applied,
    calculationId: r.calculation_id,
    inputsHash: r.inputs_hash,
    issuedAt: r.issued_at.toISOString(),
    issuedBy: r.issued_by,
  };
}


export async function getDocument(db: Database, id: string): Promise<DocumentView> {
  const [row] = await pgSql(db.pool).query<DocumentRow>(`SELECT ${COLUMNS} FROM documents WHERE id = $1::uuid`, [id]);
  if (!row) throw notFound("document", id);
  const lines = await linesOf(db, [id]);
  return toView(row, lines.get(id) ?? [], minorUnits(row.currency));
}

export async function listDocuments(db: Database, q: { contractId?: string | undefined; kind?: string | undefined; after?: string | undefined; limit: number }) {
  const rows = await pgSql(db.pool).query<DocumentRow>(
    `SELECT ${COLUMNS} FROM documents
     WHERE ($1::uuid IS NULL OR contract_id = $1::uuid) AND ($2::text IS NULL OR kind = $2) AND ($3::uuid IS NULL OR id > $3::uuid)
     ORDER BY id LIMIT $4`,
    [q.contractId ?? null, q.kind ?? null, q.after ?? null, q.limit],
  );
  const lines = await linesOf(db, rows.map((r) => r.id));
  return rows.map((r) => toView(r, lines.get(r.id) ?? [], minorUnits(r.currency)));
}

const CSV_COLUMNS = [
  "document", "line", "kind", "metric", "segment_from", "segment_to", "version", "fraction", "usage", "included", "billable",
  "pricing_model", "rate", "gross", "discount", "capped", "amount", "currency", "description",
] as const;

/** One CSV cell: quoted, quotes doubled; text that a spreadsheet would run as a formula is defused. */
function cell(v: unknown): string {
  let s = v === null || v === undefined ? "" : String(v);
  if (/^[=+@\t\r]/.test(s) || (/^-/.test(s) && !/^-\d+(\.\d+)?$/.test(s))) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

function rateOf(e: Record<string, unknown>): string {
  if (typeof e.unitPrice === "string") return e.unitPrice;
  if (Array.isArray(e.tiers))
    return (e.tiers as { from: string; upTo: string | null; unitPrice: string; flatFee?: string }[])
      .map((t) => `${t.from}-${t.upTo ?? "∞"} @ ${t.unitPrice}${t.flatFee && t.flatFee !== "0" ? ` + ${t.flatFee}` : ""}`)
      .join("; ");
  if (typeof e.packagePrice === "string") return `${e.packagePrice} per ${String(e.packageSize)}`;
  return "";
}

/** The customer-facing backup: every line with period, usage, included, billable, rate or tiers, and amount. */
export async function documentBackupCsv(db: Database, id: string): Promise<{ filename: string; csv: string }> {
  const doc = await getDocument(db, id);
  const out = [CSV_COLUMNS.join(",")];
  for (const l of doc.lines) {
    const e = l.explanation as Record<string, unknown> & { segment?: { from: string; to: string; version: number } | null };
    out.push(
      [
        doc.number, l.lineNo, l.kind, l.metric, e.segment?.from ?? doc.period.start, e.segment?.to ?? doc.period.end, e.segment?.version ?? "",
        e.fraction, e.usage, e.included, e.billable, e.pricingModel, rateOf(e), e.gross, e.discount, e.capped, l.amount, doc.currency, e.description,
      ].map(cell).join(","),
    );
  }
  const totals: [string, string][] = [
    ["subtotal", doc.subtotal],
    ["already_billed", doc.alreadyBilled],
    [doc.kind === "invoice" ? "amount_due" : "amount_credited", doc.amount],
  ];
  for (const [label, value] of totals)
    out.push(CSV_COLUMNS.map((c) => cell(c === "document" ? doc.number : c === "kind" ? label : c === "amount" ? value : c === "currency" ? doc.currency : "")).join(","));
  return { filename: `${doc.number}-backup.csv`, csv: `${out.join("\r\n")}\r\n` };
}
