// The rating order (docs/rating.md), rule by rule, for one contract and one billing period [start, end).
// Pure: no I/O, no clock. Every amount is a Decimal (50 significant digits) until rule 8 rounds the lines.
// ratePeriod is the pipeline; each step is a module beside it: measures.ts (what a meter measures, rule 2),
// usage-charges.ts (rules 2–6), lines.ts (rules 2–7 as lines), commitment.ts (9), credits.ts (10),
// compare.ts (11), exceptions.ts.
//
// Where the contract is silent, this engine decides (and the tests pin down; docs/rating.md lists these too):
//  - Segments: the version in force at an instant is the one with the latest effectiveFrom at or before it;
//    of two versions sharing an effectiveFrom the higher version number wins (and amendment_conflict is raised).
//    A part of the period before the first version is a segment with version null (missing_terms, not rated).
//  - Fractions are against the NOMINAL period length, so a period clipped by the term end is prorated like a
//    mid-period amendment (fees, included units, tier bounds, caps and commitments all × fraction).
//  - Tier flat fees are per-period amounts: × fraction whatever the aggregation. The first tier's is due even
//    at zero billable units (graduated and volume); a later tier's once it holds a unit. Package sizes are not
//    prorated; zero billable units cost nothing in the package and per-unit models.
//  - Levels (max, latest, unique_count, time_weighted): included units and tier bounds are not prorated.
//  - One usage line per meter per segment, even at zero usage; contract_discount/contract_cap lines only
//    when non-zero; a platform_fee line whenever the version has a platformFee.
//  - Commitment shortfall = the rounded commitment − the ROUNDED usage, contract discount and contract cap
//    lines (rule 9), so the usage charges and the shortfall add up to the rounded commitment to the cent.
//    A period-scope and a term-scope shortfall, if both apply, are two lines (each with its `scope`).
//  - Credits: available balances are truncated (never rounded up) to the minor unit, so a grant's balance is
//    never exceeded; the amount credits may pay is the sum of the rounded non-fee lines, floored at 0.
//  - alreadyBilled is rounded to the minor unit before delta = total − alreadyBilled.
//  - Action: delta > 0 → invoice; delta < 0 → credit_memo (allowTrueDown) or none + over_billed; delta = 0 →
//    invoice when the credits applied differ from the period's latest issued document (a zero-amount
//    invoice records the drawdown), else none. A credit memo carries the new credits too.
//  - usage_spike uses the spikeFactor and the meters of the version in force at the period's end, and compares
//    each meter's usage over the whole period (its own aggregation and filter) with the average of the same
//    figure over the prior periods that exist.
//  - materiality uses the version in force at the period's end and is not raised when delta is 0.
//  - amendment_conflict only for what affects this period: a shared effectiveFrom in force during it, or a
//    version strictly inside an issued period that overlaps it.
//  - Descriptions (describe.ts) state proration in whole time units ("× 10 of 31 days"), a commitment across
//    segments by its parts, and a credit with the balance it leaves (also `balanceAfter`, on the line and in
//    creditsApplied); figures are never rounded for display.
import { type Decimal, type RoundingMode, ZERO, addsExactly, formatDecimal as q, formatMoney, max, roundMoney, sum } from "../money.js";
import { formatInstant } from "../periods.js";
import { compare } from "./compare.js";
import { commitmentLines, countsTowardCommitment } from "./commitment.js";
import { applyCredits } from "./credits.js";
import { conflictExceptions, dedupe, deltaExceptions, missingTermsExceptions, spikeExceptions, unpricedExceptions } from "./exceptions.js";
import { inputsHashOfPlan } from "./hash.js";
import { type LineDraft, type Wording, segmentLines } from "./lines.js";
import { KeptByInputs } from "./memo.js";
import { type PeriodPlan, indexMeasured, indexUsage, planRating } from "./plan.js";
import { ENGINE_VERSION, type Line, type RatingContract, type RatingInput, type RatingResult, type Segment } from "./types.js";
import { rateUsage } from "./usage-charges.js";

/** Rates one billing period of a contract: docs/rating.md, rules 1 to 11. */
export function ratePeriod(input: RatingInput): RatingResult {
  const { contract } = input;
  // Rule 1 — Segments: planRating splits the period at every effectiveFrom inside it (fractions of the
  // nominal period length); a part with no version in force is not rated (missing_terms).
  const plan = planRating(input);
  const { span } = plan.current;
  const usage = indexUsage(input.usage, plan);
  const measured = indexMeasured(input.measured, plan);
  const wording: Wording = { currency: contract.currency, timezone: contract.timezone, nominalMs: span.nominalEndMs - span.startMs };
  const round = rounding(contract.currency, contract.roundingMode);

  const charges = rateUsage(plan.current, usage, measured); // rules 2–6
  const rounded = roundLines(segmentLines(charges, wording), contract); // rules 2–8
  const usageAmounts = rounded.filter((r) => countsTowardCommitment(r.line.kind)).map((r) => r.amount);
  const roundedUsageCharges = keptSums.get(plan.current, usageAmounts, () => sum(usageAmounts));
  const shortfalls = roundLines(commitmentLines(plan, usage, measured, roundedUsageCharges, round, wording), contract); // rule 9
  rounded.push(...shortfalls);
  const sums = keptLineSums.get(plan.current, [roundedUsageCharges, ...rounded.flatMap((r) => [r.line.kind, r.amount])], () =>
    lineSums(rounded, roundedUsageCharges, shortfalls),
  );
  const credits = applyCredits(plan.current, plan.versions, input.creditBalances, max(ZERO, sums.nonFee), contract.currency); // rule 10
  const lines = [...rounded.map((r) => r.line), ...credits.lines];
  const comparison = compare(input, totalOf(sums, credits.amounts), credits.creditsApplied); // rule 11

  // Exceptions, reported in this order, each once per kind and subject.
  const exceptions = [
    ...missingTermsExceptions(plan.current, usage),
    ...unpricedExceptions(charges),
    ...spikeExceptions(plan, usage, measured),
    ...conflictExceptions(plan, input.issuedPeriods),
    ...deltaExceptions(plan, comparison, contract.currency, contract.allowTrueDown),
  ];
  return {
    engineVersion: ENGINE_VERSION,
    contractId: contract.id,
    period: { start: formatInstant(span.startMs), end: formatInstant(span.endMs) },
    currency: contract.currency,
    segments: resultSegments(plan.current),
    lines,
    total: formatMoney(comparison.total, contract.currency),
    alreadyBilled: formatMoney(comparison.alreadyBilled, contract.currency),
    delta: formatMoney(comparison.delta, contract.currency),
    action: comparison.action,
    creditsApplied: credits.creditsApplied,
    exceptions: dedupe(exceptions),
    inputsHash: inputsHashOfPlan(input, plan, usage, measured),
  };
}

/** A rounded line with its amount as a Decimal (the value of `line.amount`). */
interface RoundedLine {
  line: Line;
  amount: Decimal;
}

// The sums of the period's rounded lines, kept by period with the amounts they were made of (memo.ts): the
// same instances for the same lines, which the credits drawn from them are kept by too (credits.ts).
const keptSums = new KeptByInputs<PeriodPlan, Decimal>();
const keptLineSums = new KeptByInputs<PeriodPlan, LineSums>();

interface LineSums {
  /** Every rounded line but the platform fees (what credits may pay, rule 10). */
  nonFee: Decimal;
  /** Every rounded line (the total before credits, rule 11); null when the amounts may not be regrouped. */
  all: Decimal | null;
  /** Every rounded line's amount, in line order. */
  amounts: Decimal[];
}

/**
 * The sums of the rounded lines that rules 10 and 11 take. When every sum of the amounts is exact
 * (addsExactly), the order of the additions changes no digit: they are then taken from the usage charges and
 * the shortfalls already summed, in a few additions rather than one per line; otherwise line by line, in line
 * order.
 */
function lineSums(rounded: readonly RoundedLine[], usageCharges: Decimal, shortfalls: readonly RoundedLine[]): LineSums {
  const amounts = rounded.map((r) => r.amount);
  if (!addsExactly(amounts)) return { nonFee: sum(rounded.filter((r) => r.line.kind !== "platform_fee").map((r) => r.amount)), all: null, amounts };
  const nonFee = sum([usageCharges, ...shortfalls.map((r) => r.amount)]);
  return { nonFee, all: sum([sum(rounded.filter((r) => r.line.kind === "platform_fee").map((r) => r.amount)), nonFee]), amounts };
}

/** Rule 11's total: the rounded lines and the credits applied. */
function totalOf(sums: LineSums, credits: readonly Decimal[]): Decimal {
  const amounts = [...sums.amounts, ...credits];
  return sums.all !== null && addsExactly(amounts) ? sum([sums.all, ...credits]) : sum(amounts);
}

// One rounding function per currency and mode (rule 8), rather than a closure per rating.
const roundings = new Map<string, Map<RoundingMode, (d: Decimal) => Decimal>>();

function rounding(currency: string, mode: RoundingMode): (d: Decimal) => Decimal {
  let byMode = roundings.get(currency);
  if (byMode === undefined) roundings.set(currency, (byMode = new Map()));
  let round = byMode.get(mode);
  if (round === undefined) byMode.set(mode, (round = (d: Decimal) => roundMoney(d, currency, mode)));
  return round;
}

/** The result's segments (rule 1), gaps included (version null). */
function resultSegments(period: PeriodPlan): Segment[] {
  return period.segments.map((s) => ({
    from: formatInstant(s.fromMs),
    to: formatInstant(s.toMs),
    version: s.version?.version ?? null,
    fraction: q(s.fraction),
  }));
}

/**
 * Rule 8 — Rounding: every line to the currency's minor unit, once, with the contract's rounding mode. Each
 * line comes with its rounded amount, which the sums of rules 9–11 add up (rather than parsing the amount
 * texts back).
 */
function roundLines(drafts: readonly LineDraft[], contract: RatingContract): RoundedLine[] {
  // The drafts are this rating's own and never read again: completed in place (a copy per line was a tenth
  // of the engine's time), the two fields last as before.
  return drafts.map((d) => {
    const line = d.line as Line;
    const { currency, roundingMode } = contract;
    // A draft of unchanged charges comes with what the last rating made of the same exact amount (lines.ts).
    let r = d.rounding?.kept;
    if (r === undefined || r === null || r.currency !== currency || r.mode !== roundingMode) {
      const amount = roundMoney(d.exact, currency, roundingMode);
      r = { currency, mode: roundingMode, amount, text: formatMoney(amount, currency), unrounded: q(d.exact) };
      if (d.rounding !== undefined) d.rounding.kept = r;
    }
    line.unroundedAmount = r.unrounded;
    line.amount = r.text;
    return { line, amount: r.amount };
  });
}
