// The revenue journal of a month (DESIGN.md §7.2, docs/revenue.md): every contract's month of the book as
// balanced double-entry lines for an ERP, with the account names of REVENUE_ACCOUNTS.
import type { Database } from "../../db/client.js";
import { transaction } from "../../db/tx.js";
import { type Accounts, type Decimal, type JournalLine, ZERO, formatMoney, journalOf, monthIndex } from "../../domain/index.js";
import { invalid } from "../../errors.js";
import { reportsOfBook } from "./book-revenue.js";

export interface JournalView {
  month: string;
  lines: JournalLine[];
  /** Per currency: the debits and the credits (equal), and the revenue accounts' net credit (the month's recognized total). */
  totals: { currency: string; debit: string; credit: string; revenue: string }[];
}

export async function revenueJournal(db: Database, q: { month: string; currency?: string | undefined }, accounts: Accounts, now: Date): Promise<JournalView> {
  const index = monthIndex(q.month);
  if (index === null) throw invalid([{ field: "month", message: "must be a month YYYY-MM" }]);
  return transaction(
    db,
    async (sql) => {
      const lines: JournalLine[] = [];
      for (const report of await reportsOfBook(sql, { fromIndex: index, toIndex: index }, q.currency ?? null, now)) {
        const id = report.contractId;
        const m = report.months[0];
        if (!m) continue;
        // The month's last calendar day (the same in every timezone).
        const date = `${q.month}-${String(new Date(Date.UTC(Math.floor(index / 12), (index % 12) + 1, 0)).getUTCDate()).padStart(2, "0")}`;
        lines.push(...journalOf(m, { id, currency: report.currency }, date, accounts));
      }
      const revenueAccounts = new Set([accounts.revenue_platform, accounts.revenue_usage, accounts.revenue_breakage]);
      const byCurrency = new Map<string, { debit: Decimal; credit: Decimal; revenue: Decimal }>();
      for (const l of lines) {
        const t = byCurrency.get(l.currency) ?? { debit: ZERO, credit: ZERO, revenue: ZERO };
        t.debit = t.debit.plus(l.debit);
        t.credit = t.credit.plus(l.credit);
        if (revenueAccounts.has(l.account)) t.revenue = t.revenue.plus(l.credit).minus(l.debit);
        byCurrency.set(l.currency, t);
      }
      return {
        month: q.month,
        lines,
        totals: [...byCurrency]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([currency, t]) => ({ currency, debit: formatMoney(t.debit, currency), credit: formatMoney(t.credit, currency), revenue: formatMoney(t.revenue, currency) })),
      };
    },
    { isolation: "repeatable read", readOnly: true },
  );
}

