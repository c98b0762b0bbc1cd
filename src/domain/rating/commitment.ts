// Rule 9 — Commitment (docs/rating.md): a commitment_shortfall line per scope whose commitment the ROUNDED
// usage charges (the usage, contract discount and contract cap lines after rule 8; platform fees do not
// count) fall below. The commitment is rounded too, so the shortfall is already in minor units and the usage
// lines and the shortfall add up to the rounded commitment exactly: a $20,000 minimum bills 20,000.00.
import { type Decimal, ZERO, formatDecimal as q, sum } from "../money.js";
import { formatInstant } from "../periods.js";
import { moneyText, spanText, timesShare } from "./describe.js";
import { type LineDraft, type Wording, lineSegment, segmentLines, segmentShare, segmentText } from "./lines.js";
import type { MeasuredIndex, RatingPlan, SegmentSpan, UsageIndex } from "./plan.js";
import type { Line } from "./types.js";
import { rateUsage } from "./usage-charges.js";

/** Rounds an amount to the contract's minor unit with its rounding mode (rule 8). */
export type Round = (d: Decimal) => Decimal;

/** The lines that make up the usage charges a commitment is measured against (rule 9). */
export const countsTowardCommitment = (kind: Line["kind"]): boolean => kind === "usage" || kind === "contract_discount" || kind === "contract_cap";

export function commitmentLines(
  plan: RatingPlan,
  usage: UsageIndex,
  measured: MeasuredIndex,
  roundedUsageCharges: Decimal,
  round: Round,
  w: Wording,
): LineDraft[] {
  const lines: LineDraft[] = [];
  const period = periodShortfall(plan.current.segments, roundedUsageCharges, round, w);
  if (period !== null) lines.push(period);
  const term = termShortfall(plan, usage, measured, roundedUsageCharges, round, w);
  if (term !== null) lines.push(term);
  return lines;
}

/** A period's rounded usage charges, re-rated from its usage (rules 1–8): for the other periods of a term. */
function roundedUsageChargesOf(period: RatingPlan["current"], usage: UsageIndex, measured: MeasuredIndex, round: Round, w: Wording): Decimal {
  return sum(
    segmentLines(rateUsage(period, usage, measured), w)
      .filter((d) => countsTowardCommitment(d.line.kind))
      .map((d) => round(d.exact)),
  );
}

/** Period scope: Σ commitment.amount × fraction over the segments whose version has one, rounded. */
function periodShortfall(segments: readonly SegmentSpan[], usageCharges: Decimal, round: Round, w: Wording): LineDraft | null {
  const { periodCommitment, commitmentFraction, commitmentParts, commitment } = periodCommitmentOf(segments, round);
  if (!commitment.greaterThan(usageCharges)) return null;
  const money = (d: Decimal) => moneyText(d, w.currency);
  const shortfall = commitment.minus(usageCharges);
  // By its parts when prorated: "minimum 20,000.00 = 20,000.00 × 40 of 90 days (v1, Jan 1–Feb 9, 2026) + …".
  const only = commitmentParts.length === 1 ? commitmentParts[0] : undefined;
  const byParts =
    only !== undefined && segmentShare(only.s, w) === null
      ? ""
      : ` = ${commitmentParts.map((p) => `${timesShare(money(p.amount), segmentShare(p.s, w))} (${segmentText(p.s, w)})`).join(" + ")}`;
  return {
    exact: shortfall,
    line: {
      kind: "commitment_shortfall", segment: null, usage: null, included: null, billable: null,
      fraction: q(commitmentFraction), scope: "period",
      commitment: q(commitment), usageCharges: q(usageCharges),
      commitmentParts: commitmentParts.map((p) => ({ segment: lineSegment(p.s), amount: q(p.amount), fraction: q(p.s.fraction), commitment: q(p.part) })),
      description:
        `Minimum commitment ${money(periodCommitment)}${byParts}${commitment.equals(periodCommitment) ? "" : `, rounded ${money(commitment)}`}; ` +
        `usage charges ${money(usageCharges)} ` +
        `(platform fees do not count); shortfall ${money(shortfall)}`,
    },
  };
}

interface PeriodCommitment {
  periodCommitment: Decimal;
  commitmentFraction: Decimal;
  commitmentParts: Array<{ s: SegmentSpan; amount: Decimal; part: Decimal }>;
  /** periodCommitment rounded. */
  commitment: Decimal;
}

// A period's commitment depends on its segments alone, and a plan's segments are the same in every rating of
// the period (plans are cached, plan.ts): kept by segments, with the rounding it was rounded with.
const commitments = new WeakMap<readonly SegmentSpan[], { round: Round; commitment: PeriodCommitment }>();

function periodCommitmentOf(segments: readonly SegmentSpan[], round: Round): PeriodCommitment {
  const known = commitments.get(segments);
  if (known !== undefined && known.round === round) return known.commitment;
  let periodCommitment = ZERO;
  let commitmentFraction = ZERO;
  const commitmentParts: PeriodCommitment["commitmentParts"] = [];
  for (const s of segments) {
    const c = s.version?.terms.commitment;
    if (c && c.scope === "period") {
      const part = c.amount.times(s.fraction);
      periodCommitment = periodCommitment.plus(part);
      commitmentFraction = commitmentFraction.plus(s.fraction);
      commitmentParts.push({ s, amount: c.amount, part });
    }
  }
  const commitment = { periodCommitment, commitmentFraction, commitmentParts, commitment: round(periodCommitment) };
  commitments.set(segments, { round, commitment });
  return commitment;
}

/**
 * Term scope: in the term's last period, every period of the term is re-rated (rules 1–8) from the usage
 * windows and the sum of their rounded usage charges is compared with the (rounded) commitment of the version
 * in force at the term's end.
 */
function termShortfall(plan: RatingPlan, usage: UsageIndex, measured: MeasuredIndex, current: Decimal, round: Round, w: Wording): LineDraft | null {
  const termCommitment = plan.termPeriods !== null ? plan.endVersion?.terms.commitment ?? null : null;
  if (plan.termPeriods === null || termCommitment === null || termCommitment.scope !== "term") return null;
  const money = (d: Decimal) => moneyText(d, w.currency);
  const { span } = plan.current;
  const perPeriod = plan.termPeriods.map((p) => ({
    span: p.span,
    usageCharges: p === plan.current ? current : roundedUsageChargesOf(p, usage, measured, round, w),
  }));
  const termCharges = sum(perPeriod.map((p) => p.usageCharges));
  const commitment = round(termCommitment.amount);
  if (!commitment.greaterThan(termCharges)) return null;
  const shortfall = commitment.minus(termCharges);
  return {
    exact: shortfall,
    line: {
      kind: "commitment_shortfall", segment: null, usage: null, included: null, billable: null, fraction: null,
      scope: "term", commitment: q(commitment), usageCharges: q(termCharges),
      periods: perPeriod.map((p) => ({ start: formatInstant(p.span.startMs), end: formatInstant(p.span.endMs), usageCharges: q(p.usageCharges) })),
      description:
        `Minimum term commitment ${money(commitment)}; usage charges of the term's ${perPeriod.length} period(s) ` +
        `${spanText(perPeriod[0]?.span.startMs ?? span.startMs, span.endMs, w.timezone)} ${money(termCharges)} (platform fees do not count); shortfall ${money(shortfall)}`,
    },
  };
}
