// Revenue recognition (DESIGN.md §7.2; docs/revenue.md): what a billing period's lines earn in each calendar
// month of the contract's timezone, and the prepaid grants' rollforward. Pure: the caller gives the period's
// lines (its latest issued document's, or a fresh rating's), the units used per month behind each usage line,
// and the credits applied.
//
// Decisions where DESIGN is silent (docs/revenue.md lists them too):
//  - Platform fees by the seconds of their segment in each month; usage lines by the units used in each month of
//    their segment (by time when they have none, or when the meter holds a level: a peak or a count of seats
//    is held over the segment, not consumed in it).
//  - The contract discount and cap lines of a segment follow the segment's usage lines (in proportion to what
//    they recognize per month), as the charges they reduce.
//  - A grant's credits applied to a period are placed in its months in proportion to the usage and commitment
//    recognized there (what credits pay), all in the period's last month when there is none.
import { type Decimal, type RoundingMode, ZERO, roundMoney, sum, toDecimal } from "../money.js";
import type { LineKind } from "../rating/types.js";
import { type RevenueMonth, monthIndexAt, monthsOverlapping } from "./months.js";

/**
 * Cumulative rounding: through part k the parts hold round(A × W≤k ÷ W), so they add up to A to the cent
 * whatever the weights. Negative weights count as 0; with no weight at all, A goes to the last part.
 */
export function spreadCumulative(amount: Decimal, weights: readonly Decimal[], currency: string, mode: RoundingMode): Decimal[] {
  if (weights.length === 0) return [];
  const w = weights.map((x) => (x.isNegative() ? ZERO : x));
  const total = sum(w);
  if (total.isZero()) return w.map((_, i) => (i === w.length - 1 ? amount : ZERO));
  const out: Decimal[] = [];
  let cumulative = ZERO;
  let before = ZERO;
  for (let i = 0; i < w.length; i++) {
    cumulative = cumulative.plus(w[i]!);
    const through = i === w.length - 1 ? amount : roundMoney(amount.times(cumulative).dividedBy(total), currency, mode);
    out.push(through.minus(before));
    before = through;
  }
  return out;
}

export interface RevenueLine {
  kind: LineKind;
  /** Rounded, as on the document. */
  amount: string;
  segment: { from: string; to: string } | null;
  /** usage lines: the units used in each month of the segment (month → units); absent: by time. */
  unitsByMonth?: ReadonlyMap<string, Decimal>;
}

export interface PeriodRevenueInput {
  startMs: number;
  endMs: number;
  lines: readonly RevenueLine[];
  creditsApplied: readonly { grantId: string; amount: string }[];
}

export interface MonthRecognition {
  platformFee: Decimal;
  usage: Decimal;
  commitment: Decimal;
  /** Credits applied to the period, per grant, placed in this month. */
  credits: Map<string, Decimal>;
}

export interface RecognitionTerms {
  timezone: string;
  currency: string;
  roundingMode: RoundingMode;
}

const overlapMs = (aFrom: number, aTo: number, bFrom: number, bTo: number) => Math.max(0, Math.min(aTo, bTo) - Math.max(aFrom, bFrom));

/** What each month of the period recognizes, by month ("YYYY-MM"), every month of the period present. */
export function recognizePeriod(p: PeriodRevenueInput, t: RecognitionTerms): Map<string, MonthRecognition> {
  const months = monthsOverlapping(p.startMs, p.endMs, t.timezone);
  if (months.length === 1) return oneMonth(p, months[0]!.month);
  const out = new Map<string, MonthRecognition>(months.map((m) => [m.month, { platformFee: ZERO, usage: ZERO, commitment: ZERO, credits: new Map() }]));
  const spread = (amount: Decimal, over: RevenueMonth[], weights: Decimal[]) => spreadCumulative(amount, weights, t.currency, t.roundingMode).map((a, i) => ({ month: over[i]!.month, amount: a }));
  const byTime = (from: number, to: number) => {
    const over = months.filter((m) => overlapMs(m.startMs, m.endMs, from, to) > 0);
    return { over, weights: over.map((m) => toDecimal(String(overlapMs(m.startMs, m.endMs, from, to)))) };
  };
  const segmentOf = (l: RevenueLine) => (l.segment ? { from: Date.parse(l.segment.from), to: Date.parse(l.segment.to) } : { from: p.startMs, to: p.endMs });
  const lastMonth = months[months.length - 1]!;

  // Usage lines first: the segment's contract discount and cap follow what they recognize.
  const usageBySegment = new Map<string, Map<string, Decimal>>();
  for (const l of p.lines) {
    const amount = toDecimal(l.amount);
    if (l.kind === "platform_fee") {
      const { from, to } = segmentOf(l);
      const { over, weights } = byTime(from, to);
      for (const part of spread(amount, over, weights)) out.get(part.month)!.platformFee = out.get(part.month)!.platformFee.plus(part.amount);
    } else if (l.kind === "usage") {
      const { from, to } = segmentOf(l);
      let { over, weights } = byTime(from, to);
      const units = over.map((m) => l.unitsByMonth?.get(m.month) ?? ZERO);
      if (l.unitsByMonth && !sum(units).isZero()) weights = units;
      const key = `${from}|${to}`;
      const seg = usageBySegment.get(key) ?? new Map<string, Decimal>();
      usageBySegment.set(key, seg);
      for (const part of spread(amount, over, weights)) {
        out.get(part.month)!.usage = out.get(part.month)!.usage.plus(part.amount);
        seg.set(part.month, (seg.get(part.month) ?? ZERO).plus(part.amount));
      }
    } else if (l.kind === "commitment_shortfall") {
      out.get(lastMonth.month)!.commitment = out.get(lastMonth.month)!.commitment.plus(amount);
    }
  }
  for (const l of p.lines) {
    if (l.kind !== "contract_discount" && l.kind !== "contract_cap") continue;
    const { from, to } = segmentOf(l);
    let { over, weights } = byTime(from, to);
    const seg = usageBySegment.get(`${from}|${to}`);
    const charges = over.map((m) => seg?.get(m.month) ?? ZERO);
    if (!sum(charges.map((c) => (c.isNegative() ? ZERO : c))).isZero()) weights = charges;
    for (const part of spread(toDecimal(l.amount), over, weights)) out.get(part.month)!.usage = out.get(part.month)!.usage.plus(part.amount);
  }
  // Credits: where the usage and commitment they paid for are recognized.
  const paid = months.map((m) => out.get(m.month)!.usage.plus(out.get(m.month)!.commitment));
  for (const c of p.creditsApplied) {
    for (const part of spread(toDecimal(c.amount), months, paid)) {
      const credits = out.get(part.month)!.credits;
      credits.set(c.grantId, (credits.get(c.grantId) ?? ZERO).plus(part.amount));
    }
  }
  return out;
}

/** A period inside one month (a monthly contract's): every line is that month's, nothing to spread. */
function oneMonth(p: PeriodRevenueInput, month: string): Map<string, MonthRecognition> {
  const r: MonthRecognition = { platformFee: ZERO, usage: ZERO, commitment: ZERO, credits: new Map() };
  for (const l of p.lines) {
    if (l.kind === "platform_fee") r.platformFee = r.platformFee.plus(toDecimal(l.amount));
    else if (l.kind === "usage" || l.kind === "contract_discount" || l.kind === "contract_cap") r.usage = r.usage.plus(toDecimal(l.amount));
    else if (l.kind === "commitment_shortfall") r.commitment = r.commitment.plus(toDecimal(l.amount));
  }
  for (const c of p.creditsApplied) r.credits.set(c.grantId, (r.credits.get(c.grantId) ?? ZERO).plus(toDecimal(c.amount)));
  return new Map([[month, r]]);
}

export interface GrantTerms {
  grantId: string;
  amount: Decimal;
  grantedAtMs: number;
  expiresAtMs: number;
}

export interface CreditRow {
  grantId: string;
  opening: Decimal;
  additions: Decimal;
  recognized: Decimal;
  expired: Decimal;
  closing: Decimal;
}

/**
 * One grant's rollforward over `months` (consecutive, ascending), from the month of grantedAt to the month
 * of expiresAt (or the last month its credits are placed in, when a period ending after expiresAt used it): the opening balance carries from the month before, the grant's amount is added in its month,
 * the credits placed in each month are recognized, and what periods starting before expiresAt did not use
 * expires in the month of expiresAt (breakage). Months outside the grant's life have no row.
 */
export function grantRollforward(
  grant: GrantTerms,
  months: readonly RevenueMonth[],
  recognizedIn: (month: string) => Decimal,
  usedBeforeExpiry: Decimal,
  timezone: string,
): Map<string, CreditRow> {
  const first = monthIndexAt(grant.grantedAtMs, timezone);
  const expiry = monthIndexAt(grant.expiresAtMs, timezone);
  // Credits applied to a period that ends after expiresAt are placed in its months like the usage they paid
  // for, possibly after the expiry month: the rows go on until the last of them, so the balance reaches 0.
  let last = expiry;
  for (const m of months) {
    const i = monthIndexAt(m.startMs, timezone);
    if (i > last && !recognizedIn(m.month).isZero()) last = i;
  }
  const rows = new Map<string, CreditRow>();
  let balance = ZERO;
  for (const m of months) {
    const i = monthIndexAt(m.startMs, timezone);
    if (i < first || i > last) continue;
    const additions = i === first ? grant.amount : ZERO;
    const recognized = recognizedIn(m.month);
    const expired = i === expiry ? nonNegative(grant.amount.minus(usedBeforeExpiry)) : ZERO;
    const closing = balance.plus(additions).minus(recognized).minus(expired);
    rows.set(m.month, { grantId: grant.grantId, opening: balance, additions, recognized, expired, closing });
    balance = closing;
  }
  return rows;
}

const nonNegative = (d: Decimal): Decimal => (d.isNegative() ? ZERO : d);
