// The book-wide revenue report (DESIGN.md §7.2): every contract's months summed per month and currency, the
// credits summed over grants. Each contract's months are its own timezone's; the book adds them by name.
//
// Most of a book is plain: contracts without grants whose periods each lie inside one month and are all issued.
// A plain contract's month is its period's latest document, line kinds summed, and what was billed for it,
// so the database sums those per calendar (contracts sharing currency, timezone, billing period and term)
// rather than each contract being read and reported on its own; every other contract is reported on as the
// per-contract report does, and added (docs/revenue.md, "The book").
import type { Database } from "../../db/client.js";
import { contractsWithVersions } from "../../db/queries/contracts.js";
import {
  type BookContractRow,
  type PlainBilledRow,
  type PlainRecognizedRow,
  billedAmounts,
  bookContracts,
  closedMonthsOf,
  contractsOfBook,
  latestClose,
  latestDocumentsOf,
  plainBookSums,
} from "../../db/queries/revenue.js";
import type { Sql } from "../../db/sql.js";
import { transaction } from "../../db/tx.js";
import { type Decimal, ZERO, formatMoney, minorUnits, monthAt, monthIndex, monthIndexAt, monthText, monthsOverlapping } from "../../domain/index.js";
import { type CatchUpEntry, type ContractRevenueView, type MonthFigures, monthRange, periodsThrough, reportOf, termMonths } from "./contract-revenue.js";

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

type Range = { fromIndex: number; toIndex: number };

export async function bookRevenue(db: Database, q: { from: string; to: string; currency?: string | undefined }, now: Date): Promise<BookView> {
  const range = monthRange(q.from, q.to);
  return transaction(db, async (sql) => ({ books: await bookOf(sql, range, q.currency ?? null, now) }), { isolation: "repeatable read", readOnly: true });
}

/** The instants a book reads between: a day of slack each side, as contracts' months are their own timezones' (±14 h around UTC). */
function windowOf(range: Range): { from: Date; to: Date } {
  return { from: new Date(monthAt(range.fromIndex, "UTC").startMs - 86_400_000), to: new Date(monthAt(range.toIndex, "UTC").endMs + 86_400_000) };
}

async function bookOf(sql: Sql, range: Range, currency: string | null, now: Date): Promise<BookView["books"]> {
  const window = windowOf(range);
  const contracts = await bookContracts(sql, currency, window.from, window.to);
  const close = await latestClose(sql);
  const closedThrough = close ? monthIndex(close.month)! : null;
  const totals = new BookTotals();
  // Once the range reaches a closed month (or the first open one, which carries catch-up), every contract's
  // months come from what was stored and what changed since: contract by contract.
  const plain = closedThrough === null || range.fromIndex > closedThrough + 1 ? await addPlainContracts(sql, contracts, range, now, window, totals) : new Set<string>();
  const rest = contracts.filter((c) => !plain.has(c.id)).map((c) => c.id);
  for (const report of await reportsOf(sql, rest, range, now, closedThrough)) totals.addReport(report);
  return totals.books();
}

/**
 * The report of every contract of the book over the range (the journal's source), contract by contract.
 */
export async function reportsOfBook(sql: Sql, range: Range, currency: string | null, now: Date): Promise<ContractRevenueView[]> {
  const window = windowOf(range);
  const ids = await contractsOfBook(sql, currency, window.from, window.to);
  const close = await latestClose(sql);
  return reportsOf(sql, ids, range, now, close ? monthIndex(close.month)! : null);
}

/**
 * The reports of these contracts. What each needs from the database is read for all of them at once
 * (contracts, latest documents with lines and drawdowns, billings, closed months); only a period still
 * unbilled (a fresh rating) or a usage line across months (its units per month) reads more.
 */
async function reportsOf(sql: Sql, ids: string[], range: Range, now: Date, closedThrough: number | null): Promise<ContractRevenueView[]> {
  if (ids.length === 0) return [];
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
  const closed = closedThrough !== null ? group(await closedMonthsOf<MonthFigures>(sql, ids)) : new Map();
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

/** The columns a contract's periods and months depend on. */
type CalendarColumns = Omit<BookContractRow, "id" | "has_grants">;

/** What a calendar's plain contracts need: its periods up to the range's end, those the range shows, its months. */
interface PlainCalendar {
  columns: CalendarColumns;
  ids: string[];
  periods: { startMs: number; endMs: number }[];
  /** The periods overlapping the range, each inside one month (its name), one per month. */
  shown: { startMs: number; endMs: number; month: string }[];
  months: Set<string>;
}

const calendarKey = (c: CalendarColumns) =>
  JSON.stringify([c.currency, c.timezone, c.billing_period, c.start_date, c.end_date, c.term_start_ms, c.term_end_ms]);

/**
 * A calendar whose contracts can be summed by the database (every period the range shows inside one month of
 * the timezone, and no two in one month), or null. The same periods and months as freshMonths.
 */
function plainCalendar(columns: CalendarColumns, range: Range): PlainCalendar | null {
  const { timezone } = columns;
  const calendar = { startDate: columns.start_date, endDate: columns.end_date, timezone, billingPeriod: columns.billing_period };
  const periods = periodsThrough(calendar, monthAt(range.toIndex, timezone).endMs);
  const rangeStartMs = monthAt(range.fromIndex, timezone).startMs;
  const shown: PlainCalendar["shown"] = [];
  for (const p of periods) {
    if (p.endMs <= rangeStartMs) continue;
    const over = monthsOverlapping(p.startMs, p.endMs, timezone);
    if (over.length !== 1 || shown.some((s) => s.month === over[0]!.month)) return null;
    shown.push({ ...p, month: over[0]!.month });
  }
  const months = new Set(termMonths(range, timezone, columns.term_start_ms, columns.term_end_ms).map((m) => m.month));
  return { columns, ids: [], periods, shown, months };
}

/**
 * Adds the book's plain contracts, summed by the database per calendar, to the totals; returns their ids. A
 * calendar is plain when its contracts have no grants (no rollforward, no breakage), each period the range
 * shows lies inside one month (its lines need no spreading: the month holds them all), every such period
 * that has started has a latest document for every contract of the calendar (none is unbilled: no rating),
 * and every amount summed is whole minor units (so the sum of the contracts' months, each rounded as its
 * report formats it, is the sum of the amounts). Any other calendar is left to the contract-by-contract path.
 */
async function addPlainContracts(sql: Sql, contracts: readonly BookContractRow[], range: Range, now: Date, window: { from: Date; to: Date }, totals: BookTotals): Promise<Set<string>> {
  const byKey = new Map<string, PlainCalendar | null>();
  for (const c of contracts) {
    if (c.has_grants) continue;
    const key = calendarKey(c);
    if (!byKey.has(key)) byKey.set(key, plainCalendar(c, range));
    byKey.get(key)?.ids.push(c.id);
  }
  const calendars = [...byKey.values()].filter((c): c is PlainCalendar => c !== null);
  if (calendars.length === 0) return new Set();
  const ids: string[] = [], indexes: number[] = [], digits: number[] = [];
  calendars.forEach((c, i) => {
    const d = minorUnits(c.columns.currency);
    for (const id of c.ids) ids.push(id), indexes.push(i), digits.push(d);
  });
  const sums = await plainBookSums(sql, { ids, calendars: indexes, digits }, window.from, window.to);
  const recognizedOf = calendars.map(() => new Map<number, PlainRecognizedRow>());
  for (const r of sums.recognized) recognizedOf[r.calendar]!.set(r.period_start_ms, r);
  const billedOf = calendars.map((): PlainBilledRow[] => []);
  for (const b of sums.billed) billedOf[b.calendar]!.push(b);

  const plain = new Set<string>();
  calendars.forEach((c, i) => {
    const recognized = recognizedOf[i]!;
    const billed = billedOf[i]!;
    const issued = c.shown.every((p) => p.startMs >= now.getTime() || Number(recognized.get(p.startMs)?.contracts ?? 0) === c.ids.length);
    if (!issued || c.shown.some((p) => recognized.get(p.startMs)?.rounded === false) || billed.some((b) => !b.rounded)) return;
    const { currency, timezone } = c.columns;
    for (const month of c.months) totals.month(currency, month);
    for (const p of c.shown) {
      const r = recognized.get(p.startMs);
      if (r && c.months.has(p.month)) totals.addRecognized(currency, p.month, r);
    }
    // Billed in the last month of the period it is billed for (as freshMonths).
    const periodByStart = new Map(c.periods.map((p) => [p.startMs, p]));
    for (const b of billed) {
      const period = periodByStart.get(b.at_ms) ?? c.periods.find((p) => p.startMs <= b.at_ms && b.at_ms < p.endMs);
      if (!period) continue;
      const month = monthText(monthIndexAt(period.endMs - 1, timezone));
      if (c.months.has(month)) totals.month(currency, month).billed = totals.month(currency, month).billed.plus(b.amount);
    }
    for (const id of c.ids) plain.add(id);
  });
  return plain;
}

const COMPONENTS = ["platformFee", "usage", "commitment", "breakage", "total"] as const;
const CREDIT_FIELDS = ["opening", "additions", "recognized", "expired", "closing"] as const;

interface MonthTotals {
  recognized: Record<(typeof COMPONENTS)[number], Decimal>;
  billed: Decimal;
  credits: Record<(typeof CREDIT_FIELDS)[number], Decimal>;
  catchUp: BookMonthView["catchUp"];
}

/** The book's sums per currency and month: of contract reports (their formatted figures) and of plain calendars' sums. */
class BookTotals {
  private readonly byCurrency = new Map<string, Map<string, MonthTotals>>();

  month(currency: string, month: string): MonthTotals {
    let months = this.byCurrency.get(currency);
    if (!months) this.byCurrency.set(currency, (months = new Map()));
    let t = months.get(month);
    if (!t) {
      t = {
        recognized: { platformFee: ZERO, usage: ZERO, commitment: ZERO, breakage: ZERO, total: ZERO },
        billed: ZERO,
        credits: { opening: ZERO, additions: ZERO, recognized: ZERO, expired: ZERO, closing: ZERO },
        catchUp: [],
      };
      months.set(month, t);
    }
    return t;
  }

  addReport(r: ContractRevenueView): void {
    for (const m of r.months) {
      const t = this.month(r.currency, m.month);
      for (const c of COMPONENTS) t.recognized[c] = t.recognized[c].plus(m.recognized[c]);
      t.billed = t.billed.plus(m.billed);
      for (const g of m.credits) for (const f of CREDIT_FIELDS) t.credits[f] = t.credits[f].plus(g[f]);
      for (const c of m.catchUp) t.catchUp.push({ ...c, contractId: r.contractId });
    }
  }

  /** A plain calendar's period: its contracts' months, each already rounded (no breakage: no grants). */
  addRecognized(currency: string, month: string, r: PlainRecognizedRow): void {
    const t = this.month(currency, month);
    t.recognized.platformFee = t.recognized.platformFee.plus(r.platform_fee);
    t.recognized.usage = t.recognized.usage.plus(r.usage);
    t.recognized.commitment = t.recognized.commitment.plus(r.commitment);
    t.recognized.total = t.recognized.total.plus(r.total);
  }

  books(): BookView["books"] {
    return [...this.byCurrency]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([currency, months]) => ({
        currency,
        months: [...months]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([month, t]) => ({
            month,
            recognized: Object.fromEntries(COMPONENTS.map((c) => [c, formatMoney(t.recognized[c], currency)])) as BookMonthView["recognized"],
            billed: formatMoney(t.billed, currency),
            credits: Object.fromEntries(CREDIT_FIELDS.map((c) => [c, formatMoney(t.credits[c], currency)])) as BookMonthView["credits"],
            catchUp: t.catchUp,
          })),
      }));
  }
}
