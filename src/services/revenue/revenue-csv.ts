// The revenue reports as CSV (DESIGN.md §7.2): one row per month (and per currency for the book), the columns
// named as the JSON names them, credits summed over grants. Written by csv-stringify.
import { csvText } from "../csv.js";
import type { BookView } from "./book-revenue.js";
import type { JournalView } from "./journal.js";
import type { ContractRevenueView } from "./contract-revenue.js";
import { ZERO, formatMoney } from "../../domain/index.js";

const RECOGNIZED = ["platformFee", "usage", "commitment", "breakage", "total"] as const;
const CREDITS = ["opening", "additions", "recognized", "expired", "closing"] as const;

const csv = (header: string[], rows: (string | number)[][]) => csvText([header, ...rows]);

export function contractRevenueCsv(r: ContractRevenueView): string {
  return csv(
    ["contractId", "currency", "month", ...RECOGNIZED.map((c) => `recognized.${c}`), "basis", "billed", ...CREDITS.map((c) => `credits.${c}`)],
    r.months.map((m) => [
      r.contractId,
      r.currency,
      m.month,
      ...RECOGNIZED.map((c) => m.recognized[c]),
      m.basis,
      m.billed,
      ...CREDITS.map((c) => formatMoney(m.credits.reduce((s, g) => s.plus(g[c]), ZERO), r.currency)),
    ]),
  );
}

export function bookRevenueCsv(b: BookView): string {
  return csv(
    ["currency", "month", ...RECOGNIZED.map((c) => `recognized.${c}`), "billed", ...CREDITS.map((c) => `credits.${c}`)],
    b.books.flatMap((book) => book.months.map((m) => [book.currency, m.month, ...RECOGNIZED.map((c) => m.recognized[c]), m.billed, ...CREDITS.map((c) => m.credits[c])])),
  );
}

export function journalCsv(j: JournalView): string {
  const columns = ["date", "account", "debit", "credit", "currency", "contractId", "documentId", "memo"] as const;
  return csv([...columns], j.lines.map((l) => columns.map((c) => l[c] ?? "")));
}
