// Rules 2–6 for one period (docs/rating.md): usage, included units, price, meter discount and cap, contract
// discount and cap, per segment. The figures only; lines.ts writes them as lines.
import { Decimal, ZERO, keepText, sum } from "../money.js";
import { usageFromFigure } from "./measures.js";
import { KeptByInputs } from "./memo.js";
import {
  type CompiledMeter,
  type CompiledTerms,
  type MeasuredIndex,
  type PeriodPlan,
  type SegmentSpan,
  type UsageIndex,
  figureOf,
  usageOf,
} from "./plan.js";
import type { PriceResult } from "./pricing.js";

const ONE = new Decimal(1);

export interface MeterCharge {
  meter: CompiledMeter;
  /** The price's share billed in the segment: the fraction for a level (a price per period), 1 for a flow. */
  priceShare: Decimal;
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

/** A segment's charges; shared by the ratings of the same figures (segmentCharges), so never changed once made. */
export interface SegmentCharges {
  segment: SegmentSpan;
  meters: MeterCharge[];
  /** Sum of the meters' charges after rule 5. */
  meterTotal: Decimal;
  contractDiscount: Decimal;
  contractCapScaled: Decimal | null;
  contractCapped: Decimal;
  /** Usage charges of the segment after rules 5–6. */
  net: Decimal;
  /** Usage no meter prices: a metric without a meter, or the events of a metered metric that match no meter's filter. */
  unpriced: Array<{ metric: string; quantity: Decimal; unmatched: boolean }>;
}

export interface PeriodCharges {
  segments: SegmentCharges[];
}

/** Rules 2–6 for one period: usage, included units, price, meter discount and cap, contract discount and cap. */
export function rateUsage(period: PeriodPlan, usage: UsageIndex, measured: MeasuredIndex): PeriodCharges {
  const segments: SegmentCharges[] = [];
  for (const segment of period.segments) {
    if (segment.version === null) continue; // rule 1: a gap is not rated (missing_terms)
    segments.push(segmentCharges(segment, segment.version.terms, usage, measured));
  }
  return { segments };
}

// A segment's charges, kept from its last rating with the figures they were rated from (memo.ts): rules 3–6
// are a few dozen multiplications and additions of the same instances when the usage did not change.
const keptCharges = new KeptByInputs<SegmentSpan, SegmentCharges>();

function segmentCharges(segment: SegmentSpan, terms: CompiledTerms, usage: UsageIndex, measured: MeasuredIndex): SegmentCharges {
  // What rules 2–6 read for this segment: the terms, the metrics' sums (by name) and every meter's figure.
  const byMetric = usageOf(usage, segment);
  const inputs: Array<CompiledTerms | string | Decimal> = [terms];
  for (const [metric, quantity] of byMetric) inputs.push(metric, quantity);
  for (const m of terms.meters) {
    inputs.push(figureOf(usage, measured, segment.key, m.measure, m.key));
    if (m.filteredSum !== null) inputs.push(figureOf(usage, measured, segment.key, m.filteredSum.measure, m.filteredSum.key));
  }
  return keptCharges.get(segment, inputs, () => rateSegment(segment, terms, usage, measured, byMetric));
}

function rateSegment(
  segment: SegmentSpan,
  terms: CompiledTerms,
  usage: UsageIndex,
  measured: MeasuredIndex,
  byMetric: ReadonlyMap<string, Decimal>,
): SegmentCharges {
  const f = segment.fraction;

  // Rule 2 — Usage: per segment and meter. A metric with no meter in this version is not billed, nor are the
  // events of a metered metric that match none of its meters' filters (the metric's sum minus theirs: the
  // filters are disjoint, so no event is in two of them).
  const unpriced: Array<{ metric: string; quantity: Decimal; unmatched: boolean }> = [];
  for (const [metric, quantity] of byMetric) {
    const meters = terms.metersByMetric.get(metric);
    if (meters === undefined) {
      if (!quantity.isZero()) unpriced.push({ metric, quantity, unmatched: false });
      continue;
    }
    if (meters.some((m) => m.filteredSum === null)) continue;
    const matched = sum(meters.map((m) => (m.filteredSum === null ? ZERO : figureOf(usage, measured, segment.key, m.filteredSum.measure, m.filteredSum.key))));
    const rest = quantity.minus(matched);
    if (!rest.isZero()) unpriced.push({ metric, quantity: rest, unmatched: true });
  }

  const meters = terms.meters.map((meter) => meterCharge(meter, meterUsage(meter, figureOf(usage, measured, segment.key, meter.measure, meter.key), segment), f));

  // Rule 6 — Contract discount, then contract cap (scaled by fraction) on the sum of usage charges.
  const meterTotal = sum(meters.map((m) => m.amount));
  const contractDiscount = meterTotal.times(terms.discountRate); // × discountPercent ÷ 100
  const afterContractDiscount = meterTotal.minus(contractDiscount);
  const contractCapScaled = terms.cap === null ? null : terms.cap.times(f);
  const contractCapped = contractCapScaled === null ? ZERO : excess(afterContractDiscount, contractCapScaled);
  return {
    segment,
    meters,
    meterTotal,
    contractDiscount,
    contractCapScaled,
    contractCapped,
    net: contractCapped.isZero() ? afterContractDiscount : (contractCapScaled ?? afterContractDiscount),
    unpriced,
  };
}

/** max(0, value − limit), subtracting only when there is something left (most charges are under their caps). */
function excess(value: Decimal, limit: Decimal): Decimal {
  return value.greaterThan(limit) ? value.minus(limit) : ZERO;
}

/** A meter's usage in a segment from its figure (time_weighted: the level-seconds ÷ the segment's seconds). */
function meterUsage(meter: CompiledMeter, figure: Decimal, s: SegmentSpan): Decimal {
  return usageFromFigure(meter.measure, figure, s.fromMs, s.toMs);
}

/**
 * The meter's included units and cap at a fraction, kept by the fraction instance: every rating of a segment
 * (its plan is cached, plan.ts) has the same fraction.
 */
function atFraction(meter: CompiledMeter, f: Decimal): { included: Decimal; capScaled: Decimal | null } {
  let known = meter.atFraction.get(f);
  if (known === undefined) {
    known = {
      included: keepText(meter.included.times(meter.level ? ONE : f)),
      capScaled: meter.cap === null ? null : keepText(meter.cap.times(f)),
    };
    meter.atFraction.set(f, known);
  }
  return known;
}

/** Rules 3–5 for one meter in one segment. */
function meterCharge(meter: CompiledMeter, quantity: Decimal, f: Decimal): MeterCharge {
  // Levels (max, latest, unique_count, time_weighted) are held, not accumulated: 100 included seats are 100
  // in any part of the period, so their included units and tier bounds are not scaled by the fraction. What a
  // level costs is a price per unit per period (a seat-month), so a segment bills its share of it: the level's
  // whole-period charge × fraction. An amendment that changes nothing then changes no amount, as for flows.
  // Rule 3 — Included units: billable = max(0, usage − included × fraction).
  const { included, capScaled } = atFraction(meter, f);
  const billable = excess(quantity, included);
  // Rule 4 — Price: the meter's pricing model on billable units, tier bounds scaled (flows), flat fees × fraction.
  const price = meter.level ? meter.price(billable, ONE, ONE) : meter.price(billable, f, f);
  const gross = meter.level ? price.amount.times(f) : price.amount;
  // Rule 5 — Meter discount, then meter cap (cap scaled by fraction whatever the aggregation: it is money).
  // A zero charge has no discount: 0 × rate and 0 − 0 are 0, not worth two operations (half the meters of a
  // segment often bill nothing).
  const zero = gross.isZero();
  const discount = zero ? ZERO : gross.times(meter.discountRate); // × discountPercent ÷ 100
  const afterDiscount = zero ? ZERO : gross.minus(discount);
  const capped = capScaled === null ? ZERO : excess(afterDiscount, capScaled);
  // A capped charge IS the cap: taken directly, not as afterDiscount − capped, which loses the cap's digits
  // when the uncapped charge is huge (50 significant digits spent on its integer part).
  const amount = capped.isZero() ? afterDiscount : (capScaled as Decimal);
  return { meter, priceShare: meter.level ? f : ONE, usage: quantity, included, billable, price, gross, discount, capScaled, capped, amount };
}
