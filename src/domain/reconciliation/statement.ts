// The statement of a run (DESIGN.md §7.1): per class the keys, units and money; the totals; the watch-list
// against the previous run of the same window. Money is summed per currency: a book with contracts in two
// currencies has no one total, so the top-level amounts are those of the run's one currency, or null when
// its priced keys have several (then `byCurrency` is the statement).
import { type Decimal, ZERO, formatDecimal, formatMoney } from "../money.js";
import { RECONCILIATION_CLASSES, type ReconciliationClass } from "./classify.js";

export interface ClassifiedKey {
  customerId: string;
  metric: string;
  class: ReconciliationClass;
  /** R − I in metered units. */
  units: Decimal;
  /** The break's money (negative: an over-bill); null when it has none (a match, an unmapped key). */
  amount: Decimal | null;
  currency: string | null;
}

export interface ClassCount {
  keys: number;
  units: string;
  amount: string | null;
}

export interface MoneyStatement {
  counts: Record<ReconciliationClass, ClassCount>;
  underBilled: string;
  overBilled: string;
}

export interface Statement {
  counts: Record<ReconciliationClass, ClassCount>;
  totals: { keys: number; breaks: number; underBilled: string | null; overBilled: string | null };
  /** The run's one currency, or null when none or several. */
  currency: string | null;
  byCurrency: Record<string, MoneyStatement>;
}

export function statementOf(keys: readonly ClassifiedKey[]): Statement {
  const units = new Map<ReconciliationClass, Decimal>();
  const counts = new Map<ReconciliationClass, number>();
  const money = new Map<string, { amounts: Map<ReconciliationClass, Decimal>; keys: Map<ReconciliationClass, number>; units: Map<ReconciliationClass, Decimal> }>();
  for (const k of keys) {
    counts.set(k.class, (counts.get(k.class) ?? 0) + 1);
    units.set(k.class, (units.get(k.class) ?? ZERO).plus(k.units));
    if (k.currency === null) continue;
    let m = money.get(k.currency);
    if (!m) money.set(k.currency, (m = { amounts: new Map(), keys: new Map(), units: new Map() }));
    m.keys.set(k.class, (m.keys.get(k.class) ?? 0) + 1);
    m.units.set(k.class, (m.units.get(k.class) ?? ZERO).plus(k.units));
    m.amounts.set(k.class, (m.amounts.get(k.class) ?? ZERO).plus(k.amount ?? ZERO));
  }
  const byCurrency: Record<string, MoneyStatement> = {};
  for (const [currency, m] of [...money].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const c = Object.fromEntries(
      RECONCILIATION_CLASSES.map((cls) => [
        cls,
        { keys: m.keys.get(cls) ?? 0, units: formatDecimal(m.units.get(cls) ?? ZERO), amount: formatMoney(m.amounts.get(cls) ?? ZERO, currency) },
      ]),
    ) as Record<ReconciliationClass, ClassCount>;
    byCurrency[currency] = {
      counts: c,
      underBilled: formatMoney(m.amounts.get("under_bill") ?? ZERO, currency),
      overBilled: formatMoney((m.amounts.get("over_bill") ?? ZERO).negated(), currency),
    };
  }
  const currencies = Object.keys(byCurrency);
  const only = currencies.length === 1 ? byCurrency[currencies[0]!]! : null;
  const noMoney = currencies.length === 0;
  const counted = Object.fromEntries(
    RECONCILIATION_CLASSES.map((cls) => [
      cls,
      {
        keys: counts.get(cls) ?? 0,
        units: formatDecimal(units.get(cls) ?? ZERO),
        amount: only ? only.counts[cls].amount : noMoney ? "0" : null,
      },
    ]),
  ) as Record<ReconciliationClass, ClassCount>;
  return {
    counts: counted,
    totals: {
      keys: keys.length,
      breaks: keys.length - (counts.get("match") ?? 0),
      underBilled: only ? only.underBilled : noMoney ? "0" : null,
      overBilled: only ? only.overBilled : noMoney ? "0" : null,
    },
    currency: only ? currencies[0]! : null,
    byCurrency,
  };
}

/**
 * The watch-list: each `timing` key of the previous run of the same window is `cleared` when it matches now,
 * `persisting` otherwise (a key no source mentions any more matches: 0 = 0 = 0).
 */
export function watchlistOf(previousTiming: ReadonlySet<string>, classOfKey: (key: string) => ReconciliationClass): { cleared: number; persisting: number } {
  let cleared = 0;
  for (const key of previousTiming) if (classOfKey(key) === "match") cleared++;
  return { cleared, persisting: previousTiming.size - cleared };
}

export const keyOf = (customerId: string, metric: string) => `${customerId}\u0000${metric}`;
