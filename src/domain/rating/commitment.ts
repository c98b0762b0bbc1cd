// Rule 8 — Commitment (docs/rating.md): a commitment_shortfall line per scope whose commitment the usage
// charges (after rules 5–6, unrounded; platform fees do not count) fall below.
import { type Decimal, ZERO, formatDecimal as q, sum } from "../money.js";
import { formatInstant } from "../periods.js";
import { moneyText, spanText, timesShare } from "./describe.js";
import { type LineDraft, type Wording, lineSegment, segmentShare, segmentText } from "./lines.js";
import type { RatingPlan, SegmentSpan, UsageIndex } from "./plan.js";
import { type PeriodCharges, rateUsage } from "./usage-charges.js";

export function commitmentLines(plan: RatingPlan, usage: UsageIndex, charges: PeriodCharges, w: Wording): LineDraft[] {
  const lines: LineDraft[] = [];
  const period = periodShortfall(plan.current.segments, charges.usageCharges, w);
  if (period !== null) lines.push(period);
  const term = termShortfall(plan, usage, charges, w);
  if (term !== null) lines.push(term);
  return lines;
}

/** Period scope: Σ commitment.amount × fraction over the segments whose version has one. */
function periodShortfall(segments: readonly SegmentSpan[], usageCharges: Decimal, w: Wording): LineDraft | null {
  const money = (d: Decimal) => moneyText(d, w.currency);
  let periodCommitment = ZERO;
  let commitmentFraction = ZERO;
  const commitmentParts: Array<{ s: SegmentSpan; amount: Decimal; part: Decimal }> = [];
  for (const s of segments) {
    const c = s.version?.terms.commitment;
    if (c && c.scope === "period") {
      const part = c.amount.times(s.fraction);
      periodCommitment = periodCommitment.plus(part);
      commitmentFraction = commitmentFraction.plus(s.fraction);
      commitmentParts.push({ s, amount: c.amount, part });
    }
  }
  if (!periodCommitment.greaterThan(usageCharges)) return null;
  const shortfall = periodCommitment.minus(usageCharges);
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
      commitment: q(periodCommitment), usageCharges: q(usageCharges),
      commitmentParts: commitmentParts.map((p) => ({ segment: lineSegment(p.s), amount: q(p.amount), fraction: q(p.s.fraction), commitment: q(p.part) })),
      description:
        `Minimum commitment ${money(periodCommitment)}${byParts}; usage charges ${money(usageCharges)} ` +
        `(platform fees do not count); shortfall ${money(shortfall)}`,
    },
  };
}

/**
 * Term scope: in the term's last period, every period of the term is re-rated (rules 1–6) from the usage
 * windows and the sum is compared with the commitment of the version in force at the term's end.
 */
function termShortfall(plan: RatingPlan, usage: UsageIndex, charges: PeriodCharges, w: Wording): LineDraft | null {
  const termCommitment = plan.termPeriods !== null ? plan.endVersion?.terms.commitment ?? null : null;
  if (plan.termPeriods === null || termCommitment === null || termCommitment.scope !== "term") return null;
  const money = (d: Decimal) => moneyText(d, w.currency);
  const { span } = plan.current;
  const perPeriod = plan.termPeriods.map((p) => ({
    span: p.span,
    usageCharges: p === plan.current ? charges.usageCharges : rateUsage(p, usage).usageCharges,
  }));
  const termCharges = sum(perPeriod.map((p) => p.usageCharges));
  if (!termCommitment.amount.greaterThan(termCharges)) return null;
  const shortfall = termCommitment.amount.minus(termCharges);
  return {
    exact: shortfall,
    line: {
      kind: "commitment_shortfall", segment: null, usage: null, included: null, billable: null, fraction: null,
      scope: "term", commitment: q(termCommitment.amount), usageCharges: q(termCharges),
      periods: perPeriod.map((p) => ({ start: formatInstant(p.span.startMs), end: formatInstant(p.span.endMs), usageCharges: q(p.usageCharges) })),
      description:
        `Minimum term commitment ${money(termCommitment.amount)}; usage charges of the term's ${perPeriod.length} period(s) ` +
        `${spanText(perPeriod[0]?.span.startMs ?? span.startMs, span.endMs, w.timezone)} ${money(termCharges)} (platform fees do not count); shortfall ${money(shortfall)}`,
    },
  };
}
