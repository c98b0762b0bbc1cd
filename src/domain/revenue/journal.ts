// Journal entries for an ERP (DESIGN.md §7.2, docs/revenue.md): a contract's month of the revenue report as
// balanced double-entry lines. Each entry is a debit and a credit of one amount, so every month balances to
// the cent; the revenue accounts' credits less their debits are the month's recognized total.
//
//  - Billed: receivable → deferred revenue (a contract liability until earned; a credit memo the reverse).
//  - Recognized: deferred revenue → revenue (platform fees, usage and shortfalls, breakage); in a month still
//    unbilled the debit is the unbilled receivable instead (revenue accrued before it is invoiced).
//  - Catch-up of a closed month: the same entries, on their own lines, citing the month, reason and document.
import { type Decimal, ZERO, formatMoney, toDecimal } from "../money.js";

export const ACCOUNT_ROLES = ["accounts_receivable", "unbilled_receivable", "deferred_revenue", "revenue_platform", "revenue_usage", "revenue_breakage"] as const;
export type AccountRole = (typeof ACCOUNT_ROLES)[number];
export type Accounts = Record<AccountRole, string>;
export const DEFAULT_ACCOUNTS: Accounts = Object.fromEntries(ACCOUNT_ROLES.map((r) => [r, r])) as Accounts;
export const REVENUE_ROLES: ReadonlySet<AccountRole> = new Set(["revenue_platform", "revenue_usage", "revenue_breakage"]);

export interface JournalLine {
  date: string;
  account: string;
  debit: string;
  credit: string;
  currency: string;
  contractId: string;
  documentId: string | null;
  memo: string;
}

export interface JournalMonth {
  month: string;
  basis: "finalized" | "unbilled";
  recognized: { platformFee: string; usage: string; commitment: string; breakage: string };
  billed: string;
  catchUp: readonly { month: string; component: string; reason: string; documentId: string | null; amount: string }[];
}

const REVENUE_OF: Record<string, AccountRole> = {
  platformFee: "revenue_platform",
  usage: "revenue_usage",
  commitment: "revenue_usage",
  breakage: "revenue_breakage",
};

/** The journal lines of one contract's month; `date` is the month's last day. */
export function journalOf(m: JournalMonth, contract: { id: string; currency: string }, date: string, accounts: Accounts): JournalLine[] {
  const lines: JournalLine[] = [];
  const money = (d: Decimal) => formatMoney(d, contract.currency);
  /** One entry: `amount` from `debit` to `credit` (a negative amount the other way round). */
  const entry = (amount: Decimal, debit: AccountRole, credit: AccountRole, memo: string, documentId: string | null) => {
    if (amount.isZero()) return;
    const [dr, cr] = amount.isNegative() ? [credit, debit] : [debit, credit];
    const a = amount.abs();
    const base = { date, currency: contract.currency, contractId: contract.id, documentId, memo };
    lines.push({ ...base, account: accounts[dr], debit: money(a), credit: money(ZERO) });
    lines.push({ ...base, account: accounts[cr], debit: money(ZERO), credit: money(a) });
  };
  const caughtUp = (component: string) => m.catchUp.filter((c) => c.component === component).reduce((s, c) => s.plus(toDecimal(c.amount)), ZERO);

  entry(toDecimal(m.billed).minus(caughtUp("billed")), "accounts_receivable", "deferred_revenue", `billed for ${m.month}`, null);
  const earnedFrom: AccountRole = m.basis === "finalized" ? "deferred_revenue" : "unbilled_receivable";
  for (const [component, role] of Object.entries(REVENUE_OF)) {
    const amount = toDecimal(m.recognized[component as keyof JournalMonth["recognized"]]).minus(caughtUp(component));
    // Breakage is always the prepaid liability released.
    entry(amount, component === "breakage" ? "deferred_revenue" : earnedFrom, role, `${component} recognized in ${m.month}`, null);
  }
  for (const c of m.catchUp) {
    const memo = `catch-up of ${c.month} (${c.reason}): ${c.component}`;
    if (c.component === "billed") entry(toDecimal(c.amount), "accounts_receivable", "deferred_revenue", memo, c.documentId);
    else entry(toDecimal(c.amount), "deferred_revenue", REVENUE_OF[c.component]!, memo, c.documentId);
  }
  return lines;
}
