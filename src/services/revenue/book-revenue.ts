// The book-wide revenue report (DESIGN.md §7.2): every contract's months summed per month and currency, the
// credits summed over grants. Each contract's months are its own timezone's; the book adds them by name.
import type { Database } from "../../db/client.js";
import { contractsWithVersions } from "../../db/queries/contracts.js";
import { billedAmounts, closedMonthsOf, contractsOfBook, latestClose, latestDocumentsOf } from "../../db/queries/revenue.js";
import type { Sql } from "../../db/sql.js";
import { transaction } from "../../db/tx.js";
import { type Decimal, ZERO, formatMoney, monthAt, monthIndex } from "../../domain/index.js";
import { type CatchUpEntry, type ContractRevenueView, type MonthFigures, monthRange, reportOf } from "./contract-revenue.js";

export interface BookMonthView {
  month: string;
  recognized: { platformFee: string; usage: string; commitment: string; breakage: string; total: string };
  billed: string;
  credits: { opening: string; additions: string; recognized: string; expired: string; closing: string };
  /** Every contract's catch-up entries of the month, with its contract (already in the sums above). */
  catchUp: (CatchUpEntry & { contractId: string })[];
}

export interface BookView {
  books: { currency: string; months: BookMonthView[] }[];
}

const COMPONENTS = ["platformFee", "usage", "commitment", "breakage", "total"] as const;
const CREDIT_FIELDS = ["opening", "additions", "recognized", "expired", "closing"] as const;

export async function bookRevenue(db: Database, q: { from: string; to: string; currency?: string | undefined }, now: Date): Promise<BookView> {
  const range = monthRange(q.from, q.to);
  return transaction(
    db,
    async (sql) => ({ books: booksOf(await reportsOfBook(sql, range, q.currency ?? null, now)) }),
    { isolation: "repeatable read", readOnly: true },
  );
}

/**
 * The report of every contract of the book over the range. What each needs from the database is read for all
 * of them at once (contracts, latest documents with lines and drawdowns, billings, closed months); only a
 * period still unbilled (a fresh rating) or a usage line across months (its units per month) reads more.
 */
export async function reportsOfBook(sql: Sql, range: { fromIndex: number; toIndex: number }, currency: string | null, now: Date): Promise<ContractRevenueView[]> {
  // A day of slack each side: contracts' months are their own timezones' (±14 h around UTC).
  const from = new Date(monthAt(range.fromIndex, "UTC").startMs - 86_400_000);
  const to = new Date(monthAt(range.toIndex, "UTC").endMs + 86_400_000);
  const ids = await contractsOfBook(sql, currency, from, to);
  const contracts = await contractsWithVersions(sql, ids);
  const group = <T extends { contract_id: string }>(rows: T[]) => {
    const out = new Map<string, T[]>();
    for (const r of rows) {
      const list = out.get(r.contract_id);
      if (list) list.push(r);
      else out.set(r.contract_id, [r]);
    }
    return out;
  };
  const documents = group(await latestDocumentsOf(sql, ids));
  const billed = group(await billedAmounts(sql, ids));
  const close = await latestClose(sql);
  const closed = close ? group(await closedMonthsOf<MonthFigures>(sql, ids)) : new Map();
  const closedThrough = close ? monthIndex(close.month)! : null;
  const reports: ContractRevenueView[] = [];
  for (const [i, c] of contracts.entries()) {
    // A finalized contract is pure computation: yield now and then, so one book does not stall every other request.
    if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    reports.push(
      await reportOf(sql, c as Parameters<typeof reportOf>[1], range, now, closedThrough, {
        documents: documents.get(c.id) ?? [],
        billed: billed.get(c.id) ?? [],
        closed: closed.get(c.id) ?? [],
      }),
    );
  }
  return reports;
}

/** Sums contract reports per currency and month. */
export function booksOf(reports: readonly ContractRevenueView[]): BookView["books"] {
  type Acc = { recognized: Record<string, Decimal>; billed: Decimal; credits: Record<string, Decimal>; catchUp: BookMonthView["catchUp"] };
  const byCurrency = new Map<string, Map<string, Acc>>();
  for (const r of reports) {
    const months = byCurrency.get(r.currency) ?? new Map<string, Acc>();
    byCurrency.set(r.currency, months);
    for (const m of r.months) {
      let acc = months.get(m.month);
      if (!acc) {
        acc = { recognized: Object.fromEntries(COMPONENTS.map((c) => [c, ZERO])), billed: ZERO, credits: Object.fromEntries(CREDIT_FIELDS.map((c) => [c, ZERO])), catchUp: [] };
        months.set(m.month, acc);
      }
      for (const c of COMPONENTS) acc.recognized[c] = acc.recognized[c]!.plus(m.recognized[c]);
      acc.billed = acc.billed.plus(m.billed);
      for (const g of m.credits) for (const f of CREDIT_FIELDS) acc.credits[f] = acc.credits[f]!.plus(g[f]);
      for (const c of m.catchUp) acc.catchUp.push({ ...c, contractId: r.contractId });
    }
  }
  return [...byCurrency]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([currency, months]) => ({
      currency,
      months: [...months]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([month, acc]) => ({
          month,
          recognized: Object.fromEntries(COMPONENTS.map((c) => [c, formatMoney(acc.recognized[c]!, currency)])) as BookMonthView["recognized"],
          billed: formatMoney(acc.billed, currency),
          credits: Object.fromEntries(CREDIT_FIELDS.map((c) => [c, formatMoney(acc.credits[c]!, currency)])) as BookMonthView["credits"],
          catchUp: acc.catchUp,
        })),
    }));
}
