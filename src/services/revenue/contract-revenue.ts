// A contract's recognized revenue and deferred-revenue rollforward per month (DESIGN.md §7.2, docs/revenue.md):
// each billing period's lines — its latest issued document's (basis finalized), or, while nothing is issued, a
// fresh rating's (basis unbilled) — spread over the months of the contract's timezone by the domain
// (recognizePeriod), the units behind each usage line read per month, what was billed in each period's last
// month, and each prepaid grant's rollforward with its breakage.
import type { Database } from "../../db/client.js";
import { type ContractRecord, contractWithVersions } from "../../db/queries/contracts.js";
import { measureUsage } from "../../db/queries/measures.js";
import { type BilledRow, type LatestDocumentRow, billedAmounts, closedMonthsOf, latestClose, latestDocumentsOf } from "../../db/queries/revenue.js";
import { sumUsage } from "../../db/queries/usage.js";
import type { Sql } from "../../db/sql.js";
import { transaction } from "../../db/tx.js";
import {
  type Aggregation,
  type CreditRow,
  Decimal,
  type Filter,
  type Measure,
  type MonthRecognition,
  type PeriodContract,
  type RevenueLine,
  type RevenueMonth,
  ZERO,
  formatInstant,
  formatMoney,
  grantRollforward,
  isPlainSum,
  latestGrantDefinitions,
  monthIndex,
  monthIndexAt,
  monthText,
  monthsOf,
  monthsOverlapping,
  periodSpanAt,
  recognizePeriod,
  sum,
} from "../../domain/index.js";
import { invalid, notFound } from "../../errors.js";
import { rateContractPeriod } from "../true-ups/rate.js";

/** A range is at most this many months apart (DESIGN.md §7.2). */
export const MAX_MONTHS_APART = 120;

export interface MoneyByComponent {
  platformFee: string;
  usage: string;
  commitment: string;
  breakage: string;
  total: string;
}

export interface CreditRowView {
  grantId: string;
  opening: string;
  additions: string;
  recognized: string;
  expired: string;
  closing: string;
}

export interface RevenueMonthView {
  month: string;
  recognized: MoneyByComponent;
  basis: "finalized" | "unbilled";
  billed: string;
  credits: CreditRowView[];
  catchUp: CatchUpEntry[];
}

export interface ContractRevenueView {
  contractId: string;
  currency: string;
  timezone: string;
  months: RevenueMonthView[];
}

/** The range of months, validated: `from` and `to` exactly YYYY-MM, from ≤ to, at most 120 months apart. */
export function monthRange(from: string, to: string): { fromIndex: number; toIndex: number } {
  const fromIndex = monthIndex(from);
  const toIndex = monthIndex(to);
  const issues = [
    ...(fromIndex === null ? [{ field: "from", message: "must be a month YYYY-MM" }] : []),
    ...(toIndex === null ? [{ field: "to", message: "must be a month YYYY-MM" }] : []),
  ];
  if (fromIndex !== null && toIndex !== null) {
    if (fromIndex > toIndex) issues.push({ field: "to", message: "must not be before from" });
    else if (toIndex - fromIndex > MAX_MONTHS_APART) issues.push({ field: "to", message: `must be at most ${MAX_MONTHS_APART} months after from` });
  }
  if (issues.length > 0) throw invalid(issues);
  return { fromIndex: fromIndex!, toIndex: toIndex! };
}

export async function contractRevenue(db: Database, contractId: string, q: { from: string; to: string }, now: Date): Promise<ContractRevenueView> {
  const range = monthRange(q.from, q.to);
  return transaction(db, (sql) => revenueOf(sql, contractId, range, now), { isolation: "repeatable read", readOnly: true });
}

interface PeriodFigures {
  startMs: number;
  endMs: number;
  basis: "finalized" | "unbilled";
  /** The document it comes from (finalized), or null. */
  source: MonthSource | null;
  recognition: Map<string, MonthRecognition>;
  credits: Map<string, Decimal>;
}

type Contract = ContractRecord & { versions: { effectiveFrom: string; terms: unknown }[] };

/** A month as computed now, with the documents it comes from (what a close stores, and catch-up cites). */
export interface MonthFigures extends RevenueMonthView {
  sources: MonthSource[];
}

export interface MonthSource {
  documentId: string;
  kind: "invoice" | "credit_memo";
}

/**
 * The report of [from, to]. Once books are closed, a closed month shows what was stored when it closed, and
 * the first open month carries every later change to a closed month as `catchUp` (docs/revenue.md).
 */
export async function revenueOf(sql: Sql, contractId: string, range: { fromIndex: number; toIndex: number }, now: Date): Promise<ContractRevenueView> {
  const contract = (await contractWithVersions(sql, contractId)) as Contract | undefined;
  if (!contract) throw notFound("contract", contractId);
  const close = await latestClose(sql);
  return reportOf(sql, contract, range, now, close ? monthIndex(close.month)! : null);
}

/** What a book reads for all of its contracts at once (each contract's share of it). */
export interface Preloaded {
  documents: LatestDocumentRow[];
  billed: BilledRow[];
  closed: { month: string; figures: MonthFigures }[];
}

/** The report of one contract; a book passes what it read for all of them. */
export async function reportOf(
  sql: Sql,
  contract: Contract,
  range: { fromIndex: number; toIndex: number },
  now: Date,
  closedThrough: number | null,
  preloaded?: Preloaded,
): Promise<ContractRevenueView> {
  const contractId = contract.id;
  if (closedThrough === null || range.fromIndex > closedThrough + 1) return viewOf(contract, await freshMonths(sql, contract, range, now, preloaded));
  // Catch-up compares every closed month of the contract, so they are all computed afresh.
  const firstMonth = monthIndexAt(Date.parse(contract.termStart), contract.timezone);
  const fresh = await freshMonths(sql, contract, { fromIndex: Math.min(range.fromIndex, firstMonth), toIndex: Math.max(range.toIndex, closedThrough) }, now, preloaded);
  const stored = new Map((preloaded?.closed ?? (await closedMonthsOf<MonthFigures>(sql, [contractId]))).map((r) => [r.month, r.figures]));
  const months = withCloses(fresh, stored, closedThrough, contract.currency).filter((m) => {
    const i = monthIndex(m.month)!;
    return i >= range.fromIndex && i <= range.toIndex;
  });
  return viewOf(contract, months);
}

function viewOf(contract: Contract, months: MonthFigures[]): ContractRevenueView {
  return { contractId: contract.id, currency: contract.currency, timezone: contract.timezone, months: months.map(({ sources: _sources, ...m }) => m) };
}

/** What every month of the contract in the range comes to now (the term's months only). */
export async function freshMonths(
  sql: Sql,
  contract: Contract,
  range: { fromIndex: number; toIndex: number },
  now: Date,
  preloaded?: Pick<Preloaded, "documents" | "billed">,
): Promise<MonthFigures[]> {
  const contractId = contract.id;
  const { timezone, currency } = contract;
  const rangeEndMs = monthsOf(range.toIndex, range.toIndex, timezone)[0]!.endMs;
  const grants = grantsOf(contract);

  // Every period up to the range's end: the earlier ones carry the grants' balances into it.
  const periods = periodsThrough(contract, rangeEndMs);
  const rangeStartMs = monthsOf(range.fromIndex, range.fromIndex, timezone)[0]!.startMs;
  const needed = grants.length > 0 ? periods : periods.filter((p) => p.endMs > rangeStartMs);

  const documents = new Map((preloaded?.documents ?? (await latestDocumentsOf(sql, [contractId]))).map((d) => [d.period_start_ms, d]));
  const terms = { timezone, currency, roundingMode: contract.roundingMode };
  const figures: PeriodFigures[] = [];
  for (const p of needed) {
    const doc = documents.get(p.startMs);
    let lines: SourceLine[];
    let credits: { grantId: string; amount: string }[];
    let basis: PeriodFigures["basis"];
    if (doc) {
      basis = "finalized";
      lines = doc.lines.map((l) => ({ kind: l.kind, amount: l.amount, metric: l.metric, ...(l.explanation as Omit<SourceLine, "kind" | "amount" | "metric">) }));
      credits = doc.credits;
    } else if (p.startMs < now.getTime()) {
      // Nothing issued yet: what a fresh rating says, credits included, so finance can accrue.
      basis = "unbilled";
      const rating = await rateContractPeriod(sql, contract, { start: formatInstant(p.startMs), end: formatInstant(p.endMs) });
      lines = rating.result.lines as SourceLine[];
      credits = rating.result.creditsApplied;
    } else continue; // a period that has not started earns nothing yet
    const revenueLines = await withUnitsByMonth(sql, contract, lines, timezone);
    const recognition = recognizePeriod({ startMs: p.startMs, endMs: p.endMs, lines: revenueLines, creditsApplied: credits }, terms);
    const source = doc ? { documentId: doc.id, kind: doc.kind } : null;
    figures.push({ startMs: p.startMs, endMs: p.endMs, basis, source, recognition, credits: new Map(credits.map((c) => [c.grantId, new Decimal(c.amount)])) });
  }

  // Billed in the last month of the period it is billed for.
  const billedByMonth = new Map<string, Decimal>();
  const periodByStart = new Map(periods.map((p) => [p.startMs, p]));
  for (const b of preloaded?.billed ?? (await billedAmounts(sql, [contractId]))) {
    const at = b.at.getTime();
    const period = periodByStart.get(at) ?? periods.find((p) => p.startMs <= at && at < p.endMs);
    if (!period) continue;
    const month = monthText(monthIndexAt(period.endMs - 1, timezone));
    billedByMonth.set(month, (billedByMonth.get(month) ?? ZERO).plus(b.amount));
  }

  // The grants' rollforwards, from each grant's month (its balance carries into the range).
  const rollStart = Math.min(range.fromIndex, ...grants.map((g) => monthIndexAt(g.grantedAtMs, timezone)));
  const rollMonths = monthsOf(rollStart, range.toIndex, timezone);
  const recognizedCredit = (grantId: string, month: string) => sum((byMonthOf(figures).get(month) ?? []).map((r) => r.credits.get(grantId) ?? ZERO));
  const rollforwards = grants.map((g) =>
    grantRollforward(
      g,
      rollMonths,
      (month) => recognizedCredit(g.grantId, month),
      sum(figures.filter((f) => f.startMs < g.expiresAtMs).map((f) => f.credits.get(g.grantId) ?? ZERO)),
      timezone,
    ),
  );

  const months = termMonths(range, timezone, Date.parse(contract.termStart), contract.termEnd ? Date.parse(contract.termEnd) : null);
  const money = (d: Decimal) => formatMoney(d, currency);
  // Indexed once: a book computes this for every contract.
  const byMonth = byMonthOf(figures);
  const finalizedStarts = new Set(figures.filter((f) => f.basis === "finalized").map((f) => f.startMs));
  return months.map((m): MonthFigures => {
      const here = byMonth.get(m.month) ?? [];
      const finalized = periods.every((p) => !(p.startMs < m.endMs && p.endMs > m.startMs) || finalizedStarts.has(p.startMs));
      const credits: CreditRow[] = rollforwards.flatMap((r) => (r.has(m.month) ? [r.get(m.month)!] : []));
      const platformFee = sum(here.map((r) => r.platformFee));
      const usage = sum(here.map((r) => r.usage));
      const commitment = sum(here.map((r) => r.commitment));
      const breakage = sum(credits.map((c) => c.expired));
      return {
        month: m.month,
        recognized: {
          platformFee: money(platformFee),
          usage: money(usage),
          commitment: money(commitment),
          breakage: money(breakage),
          total: money(platformFee.plus(usage).plus(commitment).plus(breakage)),
        },
        basis: finalized ? "finalized" : "unbilled",
        billed: money(billedByMonth.get(m.month) ?? ZERO),
        credits: credits.map((c) => ({
          grantId: c.grantId,
          opening: money(c.opening),
          additions: money(c.additions),
          recognized: money(c.recognized),
          expired: money(c.expired),
          closing: money(c.closing),
        })),
        catchUp: [],
        sources: figures.filter((f) => f.source !== null && f.startMs < m.endMs && f.endMs > m.startMs).map((f) => f.source!),
      };
  });
}

/** The contract's billing periods that start before `endMs`, in order. */
export function periodsThrough(contract: PeriodContract, endMs: number): { startMs: number; endMs: number }[] {
  const periods: { startMs: number; endMs: number }[] = [];
  for (let i = 0; ; i++) {
    const span = periodSpanAt(contract, i);
    if (span === null || span.startMs >= endMs || i > 10_000) break;
    periods.push(span);
  }
  return periods;
}

/** The months of the range a report lists: those inside the term. */
export function termMonths(range: { fromIndex: number; toIndex: number }, timezone: string, termStartMs: number, termEndMs: number | null): RevenueMonth[] {
  return monthsOf(range.fromIndex, range.toIndex, timezone).filter((m) => m.endMs > termStartMs && (termEndMs === null || m.startMs < termEndMs));
}

const COMPONENTS = ["platformFee", "usage", "commitment", "breakage"] as const;

export interface CatchUpEntry {
  month: string;
  component: (typeof COMPONENTS)[number] | "billed";
  reason: "delta_invoice" | "credit_memo" | "rerated";
  documentId: string | null;
  amount: string;
}

/**
 * Closed months as they were stored; the first open month with each change since to a closed month
 * (fresh − stored, per month and component) as catch-up, added to that component, the total, and billed.
 * The grants' balances carry on from the stored closing: the first open month recognizes the difference.
 */
export function withCloses(fresh: readonly MonthFigures[], stored: ReadonlyMap<string, MonthFigures>, closedThrough: number, currency: string): MonthFigures[] {
  const money = (d: Decimal) => formatMoney(d, currency);
  const zero = (m: MonthFigures): MonthFigures => ({
    ...m,
    recognized: { platformFee: money(ZERO), usage: money(ZERO), commitment: money(ZERO), breakage: money(ZERO), total: money(ZERO) },
    billed: money(ZERO),
    credits: [],
    sources: [],
  });
  const closed = fresh.filter((m) => monthIndex(m.month)! <= closedThrough);
  const asStored = (m: MonthFigures) => stored.get(m.month) ?? zero(m);
  const catchUp: CatchUpEntry[] = [];
  for (const m of closed) {
    const was = asStored(m);
    const newDocs = m.sources.filter((s) => !was.sources.some((w) => w.documentId === s.documentId));
    const doc = newDocs[newDocs.length - 1] ?? null;
    const reason = doc === null ? "rerated" : doc.kind === "credit_memo" ? "credit_memo" : "delta_invoice";
    for (const component of [...COMPONENTS, "billed"] as const) {
      const now = new Decimal(component === "billed" ? m.billed : m.recognized[component]);
      const then = new Decimal(component === "billed" ? was.billed : was.recognized[component]);
      if (!now.eq(then)) catchUp.push({ month: m.month, component, reason, documentId: doc?.documentId ?? null, amount: money(now.minus(then)) });
    }
  }
  const lastClosed = closed.length > 0 ? asStored(closed[closed.length - 1]!) : null;
  return fresh.map((m) => {
    const i = monthIndex(m.month)!;
    if (i <= closedThrough) return asStored(m);
    if (i !== closedThrough + 1) return m;
    const add = (component: CatchUpEntry["component"]) => sum(catchUp.filter((c) => c.component === component).map((c) => new Decimal(c.amount)));
    const recognized = Object.fromEntries(COMPONENTS.map((c) => [c, money(new Decimal(m.recognized[c]).plus(add(c)))])) as Record<(typeof COMPONENTS)[number], string>;
    const total = sum(COMPONENTS.map((c) => new Decimal(recognized[c])));
    const credits = m.credits.map((row) => {
      const before = lastClosed?.credits.find((c) => c.grantId === row.grantId);
      if (!before) return row;
      // opening = the stored closing; the closing stands; the difference is recognized now.
      const recognizedNow = new Decimal(before.closing).plus(row.additions).minus(row.expired).minus(row.closing);
      return { ...row, opening: before.closing, recognized: money(recognizedNow) };
    });
    return { ...m, recognized: { ...recognized, total: money(total) }, billed: money(new Decimal(m.billed).plus(add("billed"))), credits, catchUp };
  });
}

const byMonthCache = new WeakMap<object, Map<string, MonthRecognition[]>>();
/** Each month's recognitions across the periods (computed once per list). */
function byMonthOf(figures: readonly PeriodFigures[]): Map<string, MonthRecognition[]> {
  let m = byMonthCache.get(figures);
  if (!m) {
    m = new Map();
    for (const f of figures)
      for (const [month, r] of f.recognition) {
        const list = m.get(month);
        if (list) list.push(r);
        else m.set(month, [r]);
      }
    byMonthCache.set(figures, m);
  }
  return m;
}

/** A document line or a rating's line: what recognition needs of it. */
interface SourceLine {
  kind: string;
  amount: string;
  metric?: string | null;
  segment?: { from: string; to: string } | null;
  aggregation?: Aggregation;
  filter?: Filter | null;
}

/** The grants of the contract's versions, as the latest version defining each says (as the rating's balances). */
function grantsOf(contract: Contract) {
  return [...latestGrantDefinitions(contract.versions).values()].map((g) => ({
    grantId: g.id,
    amount: new Decimal(g.amount),
    grantedAtMs: Date.parse(g.grantedAt),
    expiresAtMs: Date.parse(g.expiresAt),
  }));
}

/**
 * The lines with, for each usage line of a sum or count meter, the units used in each month of its segment
 * (one read for the plain sums, one per other measure). Levels are spread by time (no units).
 */
async function withUnitsByMonth(sql: Sql, contract: Contract, lines: SourceLine[], timezone: string): Promise<RevenueLine[]> {
  const customerIds = [contract.customerId, ...contract.accountIds];
  const asks: { line: number; month: RevenueMonth; from: string; to: string; measured: boolean }[] = [];
  lines.forEach((l, i) => {
    if (l.kind !== "usage" || !l.segment || !l.metric) return;
    const aggregation = l.aggregation ?? "sum";
    if (aggregation !== "sum" && aggregation !== "count") return;
    const from = Date.parse(l.segment.from), to = Date.parse(l.segment.to);
    const plain = isPlainSum({ metric: l.metric, aggregation, filter: l.filter ?? null, uniqueBy: null });
    const over = monthsOverlapping(from, to, timezone);
    if (over.length < 2) return; // a segment inside one month: nothing to apportion, nothing to read
    for (const m of over)
      asks.push({ line: i, month: m, from: formatInstant(Math.max(from, m.startMs)), to: formatInstant(Math.min(to, m.endMs)), measured: !plain });
  });
  const units = new Map<number, Map<string, Decimal>>();
  const put = (line: number, month: string, q: Decimal) => {
    const m = units.get(line) ?? new Map<string, Decimal>();
    m.set(month, (m.get(month) ?? ZERO).plus(q));
    units.set(line, m);
  };
  const plainAsks = asks.filter((a) => !a.measured);
  const sums = await sumUsage(sql, customerIds, plainAsks.map((a) => ({ from: a.from, to: a.to })));
  for (const a of plainAsks) {
    put(a.line, a.month.month, ZERO);
    for (const s of sums) if (s.from === a.from && s.to === a.to && s.metric === lines[a.line]!.metric) put(a.line, a.month.month, new Decimal(s.quantity));
  }
  const measuredAsks = asks.filter((a) => a.measured);
  const requests = measuredAsks.map((a) => {
    const l = lines[a.line]!;
    put(a.line, a.month.month, ZERO);
    const measure: Measure = { metric: l.metric!, aggregation: l.aggregation ?? "sum", filter: l.filter ?? null, uniqueBy: null };
    return { from: a.from, to: a.to, measure };
  });
  // measureUsage answers each request with its own measure object: that is how a figure finds its ask.
  const askOf = new Map<Measure, (typeof measuredAsks)[number]>(requests.map((r, i) => [r.measure, measuredAsks[i]!]));
  for (const f of await measureUsage(sql, customerIds, requests)) {
    const a = askOf.get(f.measure);
    if (a) put(a.line, a.month.month, new Decimal(f.value));
  }
  return lines.map((l, i) => ({
    kind: l.kind as RevenueLine["kind"],
    amount: l.amount,
    segment: l.segment ?? null,
    ...(units.has(i) ? { unitsByMonth: units.get(i)! } : {}),
  }));
}
