// The rating order (docs/rating.md), rule by rule, for one contract and one billing period [start, end).
// Pure: no I/O, no clock. Every amount is a Decimal (50 significant digits) until rule 9 rounds the lines.
//
// Where the contract is silent, this engine decides (and the tests pin down; docs/rating.md lists these too):
//  - Segments: the version in force at an instant is the one with the latest effectiveFrom at or before it;
//    of two versions sharing an effectiveFrom the higher version number wins (and amendment_conflict is raised).
//    A part of the period before the first version is a segment with version null (missing_terms, not rated).
//  - Fractions are against the NOMINAL period length, so a period clipped by the term end is prorated like a
//    mid-period amendment (fees, included units, tier bounds, caps and commitments all × fraction).
//  - Tier flat fees are per-period amounts: × fraction, charged when the tier holds at least one unit.
//    Package sizes are not prorated; zero billable units cost nothing in every model.
//  - One usage line per meter per segment, even at zero usage; contract_discount/contract_cap lines only
//    when non-zero; a platform_fee line whenever the version has a platformFee.
//  - Commitment shortfall = commitment − unrounded usage charges, then rounded as its own line (rule 9).
//    A period-scope and a term-scope shortfall, if both apply, are two lines (each with its `scope`).
//  - Credits: available balances are truncated (never rounded up) to the minor unit, so a grant's balance is
//    never exceeded; the amount credits may pay is the sum of the rounded non-fee lines, floored at 0.
//  - alreadyBilled is rounded to the minor unit before delta = total − alreadyBilled.
//  - Action: delta > 0 → invoice; delta < 0 → credit_memo (allowTrueDown) or none + over_billed; delta = 0 →
//    invoice when the credits applied differ from the period's latest issued document (a zero-amount
//    invoice records the drawdown), else none. A credit memo carries the new credits too.
//  - usage_spike uses the spikeFactor of the version in force at the period's end, compares the whole
//    period's usage of each metric metered in the period with the average of the prior periods that exist.
//  - materiality uses the version in force at the period's end and is not raised when delta is 0.
//  - amendment_conflict only for what affects this period: a shared effectiveFrom in force during it, or a
//    version strictly inside an issued period that overlaps it.
//  - Descriptions (describe.ts) state proration in whole time units ("× 10 of 31 days"), a commitment across
//    segments by its parts, and a credit with the balance it leaves (also `balanceAfter`, on the line and in
//    creditsApplied); figures are never rounded for display.
import {
  Decimal,
  HUNDRED,
  ZERO,
  formatDecimal,
  formatMoney,
  max,
  min,
  roundMoney,
  sum,
  truncateMoney,
} from "../money.js";
import { formatInstant } from "../periods.js";
import { moneyText, percentText, quantityText, shareText, spanText, timesShare } from "./describe.js";
import * as exceptions from "./exceptions.js";
import { inputsHashOfPlan } from "./hash.js";
import {
  type CompiledGrant,
  type CompiledMeter,
  type PeriodPlan,
  type RatingPlan,
  type SegmentSpan,
  parseDecimalInput,
  parseInstantInput,
  indexUsage,
  planRating,
  usageOf,
  type UsageIndex,
} from "./plan.js";
import type { PriceResult } from "./pricing.js";
import {
  ENGINE_VERSION,
  RatingInputError,
  type Action,
  type CreditAmount,
  type Line,
  type LineSegment,
  type RatingException,
  type RatingInput,
  type RatingResult,
  type Segment,
  type TierExplanation,
} from "./types.js";

interface MeterCharge {
  meter: CompiledMeter;
  usage: Decimal;
  included: Decimal;
  billable: Decimal;
  price: PriceResult;
  gross: Decimal;
  discount: Decimal;
  capScaled: Decimal | null;
  capped: Decimal;
  amount: Decimal;
}

interface SegmentCharges {
  segment: SegmentSpan;
  meters: MeterCharge[];
  /** Sum of the meters' charges after rule 5. */
  meterTotal: Decimal;
  contractDiscount: Decimal;
  contractCapScaled: Decimal | null;
  contractCapped: Decimal;
  /** Usage charges of the segment after rules 5–6. */
  net: Decimal;
  unpriced: Array<{ metric: string; quantity: Decimal }>;
}

interface PeriodCharges {
  segments: SegmentCharges[];
  /** The period's usage charges after rules 5–6, all segments together (unrounded). */
  usageCharges: Decimal;
}

/** Rules 2–6 for one period: usage, included units, price, meter discount and cap, contract discount and cap. */
export function rateUsage(period: PeriodPlan, usage: UsageIndex): PeriodCharges {
  const segments: SegmentCharges[] = [];
  for (const segment of period.segments) {
    const version = segment.version;
    if (version === null) continue; // rule 1: a gap is not rated (missing_terms)
    const f = segment.fraction;
    const terms = version.terms;
    const used = usageOf(usage, segment);

    // Rule 2 — Usage: per segment and metric; a metric with no meter in this version is not billed.
    const unpriced: Array<{ metric: string; quantity: Decimal }> = [];
    for (const [metric, quantity] of used) {
      if (!terms.meterByMetric.has(metric) && !quantity.isZero()) unpriced.push({ metric, quantity });
    }

    const meters = terms.meters.map((meter): MeterCharge => {
      const quantity = used.get(meter.metric) ?? ZERO;
      // Rule 3 — Included units: billable = max(0, usage − included × fraction).
      const included = meter.included.times(f);
      const billable = max(ZERO, quantity.minus(included));
      // Rule 4 — Price: the meter's pricing model on billable units, tier bounds scaled by fraction.
      const price = meter.price(billable, f);
      const gross = price.amount;
      // Rule 5 — Meter discount, then meter cap (cap scaled by fraction).
      const discount = gross.times(meter.discountPercent).dividedBy(HUNDRED);
      const afterDiscount = gross.minus(discount);
      const capScaled = meter.cap === null ? null : meter.cap.times(f);
      const capped = capScaled === null ? ZERO : max(ZERO, afterDiscount.minus(capScaled));
      // A capped charge IS the cap: taken directly, not as afterDiscount − capped, which loses the cap's digits
      // when the uncapped charge is huge (50 significant digits spent on its integer part).
      const amount = capped.isZero() ? afterDiscount : (capScaled as typeof afterDiscount);
      return { meter, usage: quantity, included, billable, price, gross, discount, capScaled, capped, amount };
    });

    // Rule 6 — Contract discount, then contract cap (scaled by fraction) on the sum of usage charges.
    const meterTotal = sum(meters.map((m) => m.amount));
    const contractDiscount = meterTotal.times(terms.discountPercent).dividedBy(HUNDRED);
    const afterContractDiscount = meterTotal.minus(contractDiscount);
    const contractCapScaled = terms.cap === null ? null : terms.cap.times(f);
    const contractCapped = contractCapScaled === null ? ZERO : max(ZERO, afterContractDiscount.minus(contractCapScaled));
    segments.push({
      segment,
      meters,
      meterTotal,
      contractDiscount,
      contractCapScaled,
      contractCapped,
      net: contractCapped.isZero() ? afterContractDiscount : (contractCapScaled ?? afterContractDiscount),
      unpriced,
    });
  }
  return { segments, usageCharges: sum(segments.map((s) => s.net)) };
}

// ---------------------------------------------------------------------------------------------------------
// Line explanations

const q = formatDecimal;

function lineSegment(s: SegmentSpan): LineSegment {
  return { from: formatInstant(s.fromMs), to: formatInstant(s.toMs), version: s.version?.version ?? 0 };
}

function tierRows(price: PriceResult): TierExplanation[] | undefined {
  return price.tiers?.map((t) => ({
    tier: t.tier,
    from: q(t.from),
    upTo: t.upTo === null ? null : q(t.upTo),
    unitPrice: q(t.unitPrice),
    flatFee: q(t.flatFee),
    units: q(t.units),
    amount: q(t.amount),
  }));
}

/** How a line's words are written: the contract's currency and timezone, and the nominal period length. */
interface Wording {
  currency: string;
  timezone: string;
  nominalMs: number;
}

const qt = quantityText;

function priceText(price: PriceResult, billable: Decimal, w: Wording, share: string | null): string {
  const m = (d: Decimal) => moneyText(d, w.currency);
  // Tier bounds and flat fees are per-period figures: a segment's are scaled by its share (rule 4).
  const scaled = share === null ? "" : ` (tier bounds and flat fees × ${share})`;
  switch (price.model) {
    case "per_unit":
      return `${qt(billable)} × ${qt(price.unitPrice ?? ZERO)}`;
    case "graduated": {
      const used = (price.tiers ?? []).filter((t) => !t.units.isZero());
      if (used.length === 0) return "0 (graduated)";
      return `graduated${scaled}: ${used.map((t) => `tier ${t.tier} ${qt(t.units)} × ${qt(t.unitPrice)}${t.flatFee.isZero() ? "" : ` + ${m(t.flatFee)}`}`).join(" + ")}`;
    }
    case "volume": {
      const t = (price.tiers ?? []).find((r) => !r.units.isZero());
      if (!t) return "0 (volume)";
      const bound = t.upTo === null ? `above ${qt(t.from)}` : `up to ${qt(t.upTo)}`;
      return `volume tier ${t.tier} (${bound})${scaled}: ${qt(billable)} × ${qt(t.unitPrice)}${t.flatFee.isZero() ? "" : ` + ${m(t.flatFee)}`}`;
    }
    case "package":
      return `${qt(price.packages ?? ZERO)} package(s) of ${qt(price.packageSize ?? ZERO)} × ${m(price.packagePrice ?? ZERO)}`;
  }
}

/** The segment's share of the nominal period in whole time units ("10 of 31 days"), null for the whole period. */
function segmentShare(s: SegmentSpan, w: Wording): string | null {
  return shareText(s.toMs - s.fromMs, w.nominalMs, s.fraction);
}

/** "v1, Jan 1–Feb 9, 2026": the version and the segment's local dates (the share is stated where it prorates). */
function segmentText(s: SegmentSpan, w: Wording): string {
  return `v${s.version?.version ?? "-"}, ${spanText(s.fromMs, s.toMs, w.timezone)}`;
}

// ---------------------------------------------------------------------------------------------------------

function creditsDiffer(applied: readonly CreditAmount[], previous: RatingInput["previousCreditsApplied"]): boolean {
  if (!Array.isArray(previous)) throw new RatingInputError("previousCreditsApplied", "must be an array");
  const totals = (rows: readonly CreditAmount[], path: string) => {
    const m = new Map<string, Decimal>();
    rows.forEach((r, i) => m.set(r.grantId, (m.get(r.grantId) ?? ZERO).plus(parseDecimalInput(r.amount, `${path}[${i}].amount`))));
    for (const [k, v] of m) if (v.isZero()) m.delete(k);
    return m;
  };
  const a = totals(applied, "creditsApplied");
  const b = totals(previous, "previousCreditsApplied");
  if (a.size !== b.size) return true;
  for (const [grant, amount] of a) {
    const other = b.get(grant);
    if (other === undefined || !other.equals(amount)) return true;
  }
  return false;
}

/** Rates one billing period of a contract: docs/rating.md, rules 1 to 11. */
export function ratePeriod(input: RatingInput): RatingResult {
  const plan = planRating(input);
  const { contract } = input;
  const currency = contract.currency;
  const mode = contract.roundingMode;
  const { span, segments } = plan.current;
  const usage = indexUsage(input.usage, plan);
  const found: RatingException[] = [];
  const periodRef = { start: formatInstant(span.startMs), end: formatInstant(span.endMs) };
  const wording: Wording = { currency, timezone: contract.timezone, nominalMs: span.nominalEndMs - span.startMs };
  const money = (d: Decimal) => moneyText(d, currency);

  // Rule 1 — Segments (computed by planRating: split at every effectiveFrom inside the period, fraction of the
  // nominal period length). A part of the period with no version in force → missing_terms, not rated.
  const segmentsOut: Segment[] = segments.map((s) => ({
    from: formatInstant(s.fromMs),
    to: formatInstant(s.toMs),
    version: s.version?.version ?? null,
    fraction: q(s.fraction),
  }));
  for (const s of segments) {
    if (s.version !== null) continue;
    const gapUsage: Record<string, string> = {};
    for (const [metric, quantity] of [...usageOf(usage, s)].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!quantity.isZero()) gapUsage[metric] = q(quantity);
    }
    found.push(exceptions.missingTerms(formatInstant(s.fromMs), formatInstant(s.toMs), gapUsage));
  }

  // Rules 2–6 — usage, included units, price, meter discount/cap, contract discount/cap, per segment.
  const charges = rateUsage(plan.current, usage);

  // Rule 2 (exception) — usage of a metric with no meter → unpriced_metric (one per metric), not billed.
  const unpriced = new Map<string, Array<{ s: SegmentSpan; quantity: Decimal }>>();
  for (const c of charges.segments) {
    for (const u of c.unpriced) {
      const list = unpriced.get(u.metric) ?? [];
      list.push({ s: c.segment, quantity: u.quantity });
      unpriced.set(u.metric, list);
    }
  }
  for (const metric of [...unpriced.keys()].sort()) {
    const list = unpriced.get(metric) ?? [];
    found.push(
      exceptions.unpricedMetric(
        metric,
        q(sum(list.map((x) => x.quantity))),
        list.map((x) => ({ from: formatInstant(x.s.fromMs), to: formatInstant(x.s.toMs), version: x.s.version?.version ?? 0, quantity: q(x.quantity) })),
      ),
    );
  }

  // Lines before rounding, in document order: per segment platform fee, usage, contract discount, contract cap.
  interface Draft {
    line: Omit<Line, "amount" | "unroundedAmount">;
    exact: Decimal;
  }
  const drafts: Draft[] = [];
  for (const c of charges.segments) {
    const s = c.segment;
    const version = s.version;
    if (version === null) continue;
    const seg = lineSegment(s);
    const fraction = q(s.fraction);
    const share = segmentShare(s, wording);
    const where = segmentText(s, wording);

    // Rule 7 — Fixed fees: platformFee.amount × fraction per segment.
    if (version.terms.platformFee !== null) {
      const fee = version.terms.platformFee.times(s.fraction);
      drafts.push({
        exact: fee,
        line: {
          kind: "platform_fee", segment: seg, usage: null, included: null, billable: null, fraction,
          description: `Platform fee ${timesShare(money(version.terms.platformFee), share)} (${where})`,
        },
      });
    }

    for (const m of c.meters) {
      // Included units are per period: a segment includes its share of them (rule 3).
      const included =
        share === null || m.meter.included.isZero() ? `${qt(m.included)} included` : `${qt(m.included)} included (${qt(m.meter.included)} × ${share})`;
      const parts = [
        `${m.meter.metric}: ${qt(m.usage)} used − ${included} = ${qt(m.billable)} billable`,
        `${priceText(m.price, m.billable, wording, share)} = ${money(m.gross)}`,
      ];
      if (!m.discount.isZero()) parts.push(`meter discount ${percentText(m.meter.discountPercent)} −${money(m.discount)}`);
      if (!m.capped.isZero())
        parts.push(`meter cap ${share === null ? "" : `${timesShare(money(m.meter.cap ?? ZERO), share)} = `}${money(m.capScaled ?? ZERO)}: −${money(m.capped)}`);
      const line: Draft["line"] = {
        kind: "usage",
        metric: m.meter.metric,
        segment: seg,
        usage: q(m.usage),
        included: q(m.included),
        billable: q(m.billable),
        pricingModel: m.price.model,
        fraction,
        gross: q(m.gross),
        discount: q(m.discount),
        capped: q(m.capped),
        discountPercent: q(m.meter.discountPercent),
        description: `${parts.join("; ")} (${where})`,
      };
      if (m.meter.unit !== undefined) line.unit = m.meter.unit;
      if (m.price.unitPrice !== undefined) line.unitPrice = q(m.price.unitPrice);
      const tiers = tierRows(m.price);
      if (tiers) line.tiers = tiers;
      if (m.price.packageSize) line.packageSize = q(m.price.packageSize);
      if (m.price.packagePrice) line.packagePrice = q(m.price.packagePrice);
      if (m.price.packages) line.packages = q(m.price.packages);
      if (m.capScaled !== null) line.cap = q(m.capScaled);
      drafts.push({ exact: m.amount, line });
    }

    if (!c.contractDiscount.isZero()) {
      drafts.push({
        exact: c.contractDiscount.negated(),
        line: {
          kind: "contract_discount", segment: seg, usage: null, included: null, billable: null, fraction,
          discountPercent: q(version.terms.discountPercent), base: q(c.meterTotal),
          description: `Contract discount ${percentText(version.terms.discountPercent)} of usage charges ${money(c.meterTotal)} (${where})`,
        },
      });
    }
    if (!c.contractCapped.isZero()) {
      const base = c.meterTotal.minus(c.contractDiscount);
      drafts.push({
        exact: c.contractCapped.negated(),
        line: {
          kind: "contract_cap", segment: seg, usage: null, included: null, billable: null, fraction,
          cap: q(c.contractCapScaled ?? ZERO), base: q(base),
          description:
            `Contract cap ${share === null ? "" : `${timesShare(money(version.terms.cap ?? ZERO), share)} = `}${money(c.contractCapScaled ?? ZERO)} ` +
            `on usage charges ${money(base)}: −${money(c.contractCapped)} (${where})`,
        },
      });
    }
  }

  // Rule 8 — Commitment. Period scope: Σ commitment.amount × fraction over the segments, against the period's
  // usage charges after rules 5–6 (platform fees do not count) → one commitment_shortfall line.
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
  if (periodCommitment.greaterThan(charges.usageCharges)) {
    const shortfall = periodCommitment.minus(charges.usageCharges);
    // By its parts when prorated: "minimum 20,000.00 = 20,000.00 × 40 of 90 days (v1, Jan 1–Feb 9, 2026) + …".
    const only = commitmentParts.length === 1 ? commitmentParts[0] : undefined;
    const byParts =
      only !== undefined && segmentShare(only.s, wording) === null
        ? ""
        : ` = ${commitmentParts.map((p) => `${timesShare(money(p.amount), segmentShare(p.s, wording))} (${segmentText(p.s, wording)})`).join(" + ")}`;
    drafts.push({
      exact: shortfall,
      line: {
        kind: "commitment_shortfall", segment: null, usage: null, included: null, billable: null,
        fraction: q(commitmentFraction), scope: "period",
        commitment: q(periodCommitment), usageCharges: q(charges.usageCharges),
        commitmentParts: commitmentParts.map((p) => ({ segment: lineSegment(p.s), amount: q(p.amount), fraction: q(p.s.fraction), commitment: q(p.part) })),
        description:
          `Minimum commitment ${money(periodCommitment)}${byParts}; usage charges ${money(charges.usageCharges)} ` +
          `(platform fees do not count); shortfall ${money(shortfall)}`,
      },
    });
  }
  // Term scope: in the term's last period, every period of the term is recomputed (rules 1–6) from the usage
  // windows and the sum is compared with the commitment of the version in force at the term's end.
  const termCommitment = plan.termPeriods !== null ? plan.endVersion?.terms.commitment ?? null : null;
  if (plan.termPeriods !== null && termCommitment !== null && termCommitment.scope === "term") {
    const perPeriod = plan.termPeriods.map((p) => ({
      span: p.span,
      usageCharges: p === plan.current ? charges.usageCharges : rateUsage(p, usage).usageCharges,
    }));
    const termCharges = sum(perPeriod.map((p) => p.usageCharges));
    if (termCommitment.amount.greaterThan(termCharges)) {
      const shortfall = termCommitment.amount.minus(termCharges);
      drafts.push({
        exact: shortfall,
        line: {
          kind: "commitment_shortfall", segment: null, usage: null, included: null, billable: null, fraction: null,
          scope: "term", commitment: q(termCommitment.amount), usageCharges: q(termCharges),
          periods: perPeriod.map((p) => ({ start: formatInstant(p.span.startMs), end: formatInstant(p.span.endMs), usageCharges: q(p.usageCharges) })),
          description:
            `Minimum term commitment ${money(termCommitment.amount)}; usage charges of the term's ${perPeriod.length} period(s) ` +
            `${spanText(perPeriod[0]?.span.startMs ?? span.startMs, span.endMs, contract.timezone)} ${money(termCharges)} (platform fees do not count); shortfall ${money(shortfall)}`,
        },
      });
    }
  }

  // Rule 9 — Round every line to the currency's minor unit with the contract's rounding mode.
  const lines: Line[] = drafts.map((d) => ({
    ...d.line,
    unroundedAmount: q(d.exact),
    amount: formatMoney(roundMoney(d.exact, currency, mode), currency),
  }));
  const rounded = (l: Line) => new Decimal(l.amount);

  // Rule 10 — Prepaid credits: grants of the versions in force in the period (a later version's definition
  // of a grant id wins), valid in the period, earliest expiry first (then grant id), pay the rounded usage
  // and shortfall lines net of contract discount/cap lines — not platform fees — up to their balance.
  const grants = new Map<string, CompiledGrant>();
  for (const v of [...new Set(segments.map((s) => s.version).filter((v) => v !== null))].sort((a, b) => a.version - b.version)) {
    for (const g of v.terms.grants) grants.set(g.id, g);
  }
  if (!Array.isArray(input.creditBalances)) throw new RatingInputError("creditBalances", "must be an array");
  const balances = new Map<string, Decimal>();
  input.creditBalances.forEach((b, i) => {
    if (balances.has(b.grantId)) throw new RatingInputError(`creditBalances[${i}].grantId`, `grant "${b.grantId}" is listed twice`);
    balances.set(b.grantId, parseDecimalInput(b.available, `creditBalances[${i}].available`));
  });
  const payable = max(
    ZERO,
    sum(lines.filter((l) => l.kind !== "platform_fee").map(rounded)),
  );
  const valid = [...grants.values()]
    .filter((g) => g.grantedAtMs < span.endMs && g.expiresAtMs > span.startMs)
    .sort((a, b) => a.expiresAtMs - b.expiresAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let remaining = payable;
  const creditsApplied: CreditAmount[] = [];
  for (const g of valid) {
    if (!remaining.isPositive() || remaining.isZero()) break;
    // A balance is never exceeded: it is truncated (not rounded) to the minor unit before use.
    const available = max(ZERO, truncateMoney(balances.get(g.id) ?? g.amount, currency));
    const applied = min(remaining, available);
    if (applied.isZero()) continue;
    remaining = remaining.minus(applied);
    // The grant's balance once this period's use is recorded (what the next period sees as available).
    const balanceAfter = formatMoney(available.minus(applied), currency);
    creditsApplied.push({ grantId: g.id, amount: formatMoney(applied, currency), balanceAfter });
    lines.push({
      kind: "credit_applied", segment: null, usage: null, included: null, billable: null, fraction: null,
      grantId: g.id, available: formatMoney(available, currency), balanceAfter, expiresAt: g.expiresAt,
      unroundedAmount: q(applied.negated()),
      amount: formatMoney(applied.negated(), currency),
      description:
        `Prepaid credit ${g.id} (expires ${g.expiresAt}): ${money(available)} available, ${money(applied)} applied, ` +
        `${money(available.minus(applied))} left`,
    });
  }

  // Rule 11 — Compare. total = Σ rounded lines; delta = total − alreadyBilled (rounded to the minor unit).
  const total = sum(lines.map(rounded));
  const alreadyBilled = roundMoney(parseDecimalInput(input.alreadyBilled, "alreadyBilled"), currency, mode);
  const delta = total.minus(alreadyBilled);
  let action: Action;
  if (delta.isPositive() && !delta.isZero()) action = "invoice";
  else if (delta.isNegative() && !delta.isZero()) action = contract.allowTrueDown ? "credit_memo" : "none";
  else action = creditsDiffer(creditsApplied, input.previousCreditsApplied) ? "invoice" : "none";

  // Exceptions that need the whole period: usage_spike, amendment_conflict, materiality, over_billed.
  found.push(...spikeExceptions(plan, usage));
  found.push(...conflictExceptions(plan, input));
  const threshold = plan.endVersion?.terms.materialityThreshold ?? null;
  if (plan.endVersion && threshold !== null && !delta.isZero() && delta.abs().greaterThanOrEqualTo(threshold)) {
    found.push(exceptions.materiality(formatMoney(delta, currency), q(threshold), plan.endVersion.version));
  }
  if (delta.isNegative() && !delta.isZero() && !contract.allowTrueDown) {
    found.push(exceptions.overBilled(formatMoney(total, currency), formatMoney(alreadyBilled, currency), formatMoney(delta, currency)));
  }

  return {
    engineVersion: ENGINE_VERSION,
    contractId: contract.id,
    period: periodRef,
    currency,
    segments: segmentsOut,
    lines,
    total: formatMoney(total, currency),
    alreadyBilled: formatMoney(alreadyBilled, currency),
    delta: formatMoney(delta, currency),
    action,
    creditsApplied,
    exceptions: dedupe(found),
    inputsHash: inputsHashOfPlan(input, plan, usage),
  };
}

function periodUsage(p: PeriodPlan, usage: UsageIndex, metric: string): Decimal {
  return sum(p.segments.map((s) => usageOf(usage, s).get(metric) ?? ZERO));
}

/** usage_spike: a meter's usage this period > spikeFactor × the average of the (up to) 3 prior periods' usage. */
function spikeExceptions(plan: RatingPlan, usage: UsageIndex): RatingException[] {
  const factor = plan.endVersion?.terms.spikeFactor ?? null;
  if (factor === null || plan.priorPeriods.length === 0) return [];
  const metrics = new Set<string>();
  for (const s of plan.current.segments) s.version?.terms.meters.forEach((m) => metrics.add(m.metric));
  const out: RatingException[] = [];
  for (const metric of [...metrics].sort()) {
    const current = periodUsage(plan.current, usage, metric);
    const prior = plan.priorPeriods.map((p) => ({ p, used: periodUsage(p, usage, metric) }));
    const average = sum(prior.map((x) => x.used)).dividedBy(prior.length);
    if (!average.isPositive() || average.isZero()) continue;
    const limit = factor.times(average);
    if (current.greaterThan(limit)) {
      out.push(
        exceptions.usageSpike({
          metric,
          usage: q(current),
          average: q(average),
          spikeFactor: q(factor),
          limit: q(limit),
          priorPeriods: prior.map((x) => ({ start: formatInstant(x.p.span.startMs), end: formatInstant(x.p.span.endMs), usage: q(x.used) })),
        }),
      );
    }
  }
  return out;
}

/**
 * amendment_conflict, limited to what affects this period: versions sharing an effectiveFrom that is in force
 * during the period (the group in force at its start, or one taking effect inside it), and versions taking
 * effect strictly inside an issued period that overlaps this period.
 */
function conflictExceptions(plan: RatingPlan, input: RatingInput): RatingException[] {
  const { span } = plan.current;
  const out: RatingException[] = [];
  const groups = new Map<number, number[]>();
  for (const v of plan.versions) groups.set(v.effectiveMs, [...(groups.get(v.effectiveMs) ?? []), v.version]);
  const inForceAtStart = plan.current.segments[0]?.version?.effectiveMs;
  for (const [ms, versions] of groups) {
    if (versions.length < 2) continue;
    const relevant = ms === inForceAtStart || (ms > span.startMs && ms < span.endMs);
    if (relevant) out.push(exceptions.sharedEffectiveFrom(formatInstant(ms), versions, Math.max(...versions)));
  }
  if (!Array.isArray(input.issuedPeriods)) throw new RatingInputError("issuedPeriods", "must be an array");
  input.issuedPeriods.forEach((p, i) => {
    const startMs = parseInstantInput(p.start, `issuedPeriods[${i}].start`);
    const endMs = parseInstantInput(p.end, `issuedPeriods[${i}].end`);
    if (!(startMs < span.endMs && endMs > span.startMs)) return;
    for (const v of plan.versions) {
      if (v.effectiveMs > startMs && v.effectiveMs < endMs) {
        out.push(exceptions.amendmentInsideIssuedPeriod(v.version, formatInstant(v.effectiveMs), { start: formatInstant(startMs), end: formatInstant(endMs) }));
      }
    }
  });
  return out;
}

/** One exception per kind and subject (e.g. the same issued period listed twice). */
function dedupe(list: RatingException[]): RatingException[] {
  const seen = new Set<string>();
  return list.filter((e) => {
    const key = `${e.kind}\u0000${e.subject}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
