// Issued documents (invoices and credit memos): reads and the customer-facing CSV backup.
import type { Database } from "../db/client.js";
import { pgSql } from "../db/tx.js";
import { Decimal, minorUnits } from "../domain/money.js";
import { inclusiveDates } from "../domain/rating/describe.js";
import { notFound } from "../http/problems.js";
import type { BilledSource, DocumentLineView, DocumentView } from "./true-ups.js";

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
  credits_applied: { grantId: string; amount: string; balanceAfter?: string }[];
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
    creditsApplied: r.credits_applied.map((c) => ({ ...c, balanceAfter: c.balanceAfter ?? balanceAfterFromLine(c.grantId, lines) })),
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

/** One CSV cell: quoted, quotes doubled; text that a spreadsheet would run as a formula is defused. */
function cell(v: unknown): string {
  let s = v === null || v === undefined ? "" : String(v);
  if (/^[=+@\t\r]/.test(s) || (/^-/.test(s) && !/^-\d+(\.\d+)?$/.test(s))) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

function tiersText(e: Record<string, unknown>): string {
  if (!Array.isArray(e.tiers)) return "";
  return (e.tiers as { from: string; upTo: string | null; unitPrice: string; flatFee?: string }[])
    .map((t) => `${t.from}-${t.upTo ?? "∞"} @ ${t.unitPrice}${t.flatFee && t.flatFee !== "0" ? ` + ${t.flatFee}` : ""}`)
    .join("; ");
}

type Explanation = Record<string, unknown> & { segment?: { from: string; to: string; version: number } | null };

/**
 * The backup's line columns, named as the document's JSON names them (`segment.from` is
 * `lines[].explanation.segment.from`). `full` columns are the engine's internals, only in `?detail=full`.
 */
const LINE_COLUMNS: Array<{ name: string; full?: true; value: (l: DocumentLineView, e: Explanation) => unknown }> = [
  { name: "lineNo", value: (l) => l.lineNo },
  { name: "kind", value: (l) => l.kind },
  { name: "metric", value: (l) => l.metric },
  { name: "segment.from", value: (_, e) => e.segment?.from },
  { name: "segment.to", value: (_, e) => e.segment?.to },
  { name: "segment.version", full: true, value: (_, e) => e.segment?.version },
  { name: "fraction", full: true, value: (_, e) => e.fraction },
  { name: "usage", value: (_, e) => e.usage },
  { name: "included", value: (_, e) => e.included },
  { name: "billable", value: (_, e) => e.billable },
  { name: "pricingModel", value: (_, e) => e.pricingModel },
  { name: "unitPrice", value: (_, e) => e.unitPrice },
  { name: "tiers", value: (_, e) => tiersText(e) },
  { name: "packageSize", value: (_, e) => e.packageSize },
  { name: "packagePrice", value: (_, e) => e.packagePrice },
  { name: "gross", value: (_, e) => e.gross },
  { name: "discount", value: (_, e) => e.discount },
  { name: "capped", full: true, value: (_, e) => e.capped },
  { name: "unroundedAmount", full: true, value: (_, e) => e.unroundedAmount },
  { name: "amount", value: (l) => l.amount },
  { name: "description", value: (_, e) => e.description },
];

const SOURCE_NAMES: Record<BilledSource["source"], string> = {
  invoice: "invoice",
  credit_memo: "credit memo",
  external_billing: "external billing",
};

/**
 * The customer-facing backup: who and what it is for (customer, contract, document number, the period as
 * inclusive dates in the contract's timezone), every line with its usage, included units, billable units,
 * rate or tiers and amount, then the totals: subtotal, what was already billed, one row per earlier document
 * or external billing citing its number or reference, and the amount due or credited.
 */
export async function documentBackupCsv(db: Database, id: string, detail: "customer" | "full" = "customer"): Promise<{ filename: string; csv: string }> {
  const doc = await getDocument(db, id);
  const sql = pgSql(db.pool);
  const [contract] = await sql.query<{ customer_id: string; timezone: string }>(
    `SELECT customer_id, timezone FROM contracts WHERE id = $1::uuid`,
    [doc.contractId],
  );
  // What alreadyBilled was made of when the document was previewed (its calculation keeps the rows).
  const [calc] = await sql.query<{ billed_before: BilledSource[] | null }>(
    `SELECT result->'billedBefore' AS billed_before FROM calculations WHERE id = $1::uuid`,
    [doc.calculationId],
  );
  const timezone = contract?.timezone ?? "UTC";
  const digits = minorUnits(doc.currency);
  const columns = LINE_COLUMNS.filter((c) => detail === "full" || !c.full);
  const row = (cells: unknown[]) => cells.map(cell).join(",");

  const out = [
    row(["customerId", contract?.customer_id]),
    row(["contractId", doc.contractId]),
    row(["number", doc.number]),
    row(["kind", doc.kind]),
    row(["period", inclusiveDates(Date.parse(doc.period.start), Date.parse(doc.period.end), timezone)]),
    row(["timezone", timezone]),
    row(["currency", doc.currency]),
    row(["issuedAt", doc.issuedAt]),
    "",
    row(columns.map((c) => c.name)),
  ];
  for (const l of doc.lines) out.push(row(columns.map((c) => c.value(l, l.explanation as Explanation))));

  // Totals under the lines: the label in `kind`, the figure in `amount`, what it cites in `description`.
  const total = (label: string, amount: string, description: string) =>
    row(columns.map((c) => (c.name === "kind" ? label : c.name === "amount" ? amount : c.name === "description" ? description : "")));
  out.push(total("subtotal", doc.subtotal, "the period's total"));
  const sources = calc?.billed_before;
  if (!sources) out.push(total("alreadyBilled", doc.alreadyBilled, ""));
  else if (sources.length === 0) out.push(total("alreadyBilled", doc.alreadyBilled, "nothing billed before"));
  else for (const b of sources) out.push(total("alreadyBilled", trimTo(digits, b.amount), `${b.reference} (${SOURCE_NAMES[b.source]})`));
  out.push(total("amount", doc.amount, doc.kind === "invoice" ? "due" : "credited"));
  return { filename: `${doc.number}-backup.csv`, csv: `${out.join("\r\n")}\r\n` };
}
