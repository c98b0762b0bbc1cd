// Rules 2–6 for one period (docs/rating.md): usage, included units, price, meter discount and cap, contract
// discount and cap, per segment. The figures only; lines.ts writes them as lines.
import { type Decimal, HUNDRED, ZERO, max, sum } from "../money.js";
import { type CompiledMeter, type CompiledTerms, type PeriodPlan, type SegmentSpan, type UsageIndex, usageOf } from "./plan.js";
import type { PriceResult } from "./pricing.js";

export interface MeterCharge {
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
  unpriced: Array<{ metric: string; quantity: Decimal }>;
}

export interface PeriodCharges {
  segments: SegmentCharges[];
  /** The period's usage charges after rules 5–6, all segments together (unrounded). */
  usageCharges: Decimal;
}

/** Rules 2–6 for one period: usage, included units, price, meter discount and cap, contract discount and cap. */
export function rateUsage(period: PeriodPlan, usage: UsageIndex): PeriodCharges {
  const segments: SegmentCharges[] = [];
  for (const segment of period.segments) {
    if (segment.version === null) continue; // rule 1: a gap is not rated (missing_terms)
    segments.push(segmentCharges(segment, segment.version.terms, usageOf(usage, segment)));
  }
  return { segments, usageCharges: sum(segments.map((s) => s.net)) };
}

function segmentCharges(segment: SegmentSpan, terms: CompiledTerms, used: ReadonlyMap<string, Decimal>): SegmentCharges {
  const f = segment.fraction;

  // Rule 2 — Usage: per segment and metric; a metric with no meter in this version is not billed.
  const unpriced: Array<{ metric: string; quantity: Decimal }> = [];
  for (const [metric, quantity] of used) {
    if (!terms.meterByMetric.has(metric) && !quantity.isZero()) unpriced.push({ metric, quantity });
  }

  const meters = terms.meters.map((meter) => meterCharge(meter, used.get(meter.metric) ?? ZERO, f));

  // Rule 6 — Contract discount, then contract cap (scaled by fraction) on the sum of usage charges.
  const meterTotal = sum(meters.map((m) => m.amount));
  const contractDiscount = meterTotal.times(terms.discountPercent).dividedBy(HUNDRED);
  const afterContractDiscount = meterTotal.minus(contractDiscount);
  const contractCapScaled = terms.cap === null ? null : terms.cap.times(f);
  const contractCapped = contractCapScaled === null ? ZERO : max(ZERO, afterContractDiscount.minus(contractCapScaled));
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

/** Rules 3–5 for one meter in one segment. */
function meterCharge(meter: CompiledMeter, quantity: Decimal, f: Decimal): MeterCharge {
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
  const amount = capped.isZero() ? afterDiscount : (capScaled as Decimal);
  return { meter, usage: quantity, included, billable, price, gross, discount, capScaled, capped, amount };
}
