// The customer-facing backup of an issued document, as CSV (GET /v1/documents/:id/backup.csv).
import { billedBeforeOf, documentParty } from "../../db/queries/documents.js";
import type { Sql } from "../../db/sql.js";
import { minorUnits } from "../../domain/money.js";
import { inclusiveDates } from "../../domain/rating/describe.js";
import type { BilledSource } from "../../db/queries/billing.js";
import { csvText } from "../csv.js";
import { type DocumentLineView, getDocument, trimTo } from "./read.js";

function tiersText(e: Record<string, unknown>): string {
  if (!Array.isArray(e.tiers)) return "";
  return (e.tiers as { from: string; upTo: string | null; unitPrice: string; flatFee?: string }[])
    .map((t) => `${t.from}-${t.upTo ?? "∞"} @ ${t.unitPrice}${t.flatFee && t.flatFee !== "0" ? ` + ${t.flatFee}` : ""}`)
    .join("; ");
}

/** A meter's filter as one cell: "plan in [pro, team]; region in [eu]" (empty when it counts every event of its metric). */
function filterText(filter: unknown): string {
  if (!filter || typeof filter !== "object") return "";
  return Object.entries(filter as Record<string, unknown[]>)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([p, values]) => `${p} in [${values.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ")}]`)
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
  { name: "meterId", value: (l) => l.meterId },
  { name: "metric", value: (l) => l.metric },
  { name: "aggregation", value: (_, e) => e.aggregation },
  { name: "filter", value: (_, e) => filterText(e.filter) },
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
export async function documentBackupCsv(sql: Sql, id: string, detail: "customer" | "full" = "customer"): Promise<{ filename: string; csv: string }> {
  const doc = await getDocument(sql, id);
  const contract = await documentParty(sql, doc.contractId);
  const sources = await billedBeforeOf<BilledSource>(sql, doc.calculationId);
  const timezone = contract?.timezone ?? "UTC";
  const digits = minorUnits(doc.currency);
  const columns = LINE_COLUMNS.filter((c) => detail === "full" || !c.full);

  const out: unknown[][] = [
    ["customerId", contract?.customer_id],
    ["contractId", doc.contractId],
    ["number", doc.number],
    ["kind", doc.kind],
    ["period", inclusiveDates(Date.parse(doc.period.start), Date.parse(doc.period.end), timezone)],
    ["timezone", timezone],
    ["currency", doc.currency],
    ["issuedAt", doc.issuedAt],
    [],
    columns.map((c) => c.name),
  ];
  for (const l of doc.lines) out.push(columns.map((c) => c.value(l, l.explanation as Explanation)));

  // Totals under the lines: the label in `kind`, the figure in `amount`, what it cites in `description`.
  const total = (label: string, amount: string, description: string) =>
    columns.map((c) => (c.name === "kind" ? label : c.name === "amount" ? amount : c.name === "description" ? description : ""));
  out.push(total("subtotal", doc.subtotal, "the period's total"));
  if (!sources) out.push(total("alreadyBilled", doc.alreadyBilled, ""));
  else if (sources.length === 0) out.push(total("alreadyBilled", doc.alreadyBilled, "nothing billed before"));
  else for (const b of sources) out.push(total("alreadyBilled", trimTo(digits, b.amount), `${b.reference} (${SOURCE_NAMES[b.source]})`));
  out.push(total("amount", doc.amount, doc.kind === "invoice" ? "due" : "credited"));
  return { filename: `${doc.number}-backup.csv`, csv: csvText(out, { quoted: true }) };
}
