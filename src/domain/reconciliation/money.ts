// A break's money (DESIGN.md §7.1): the usage charge the contract's terms give for the raw units minus the one
// they give for the invoiced units, both in the contract's unit, rated by the engine over the contract's
// billing periods in the window. The engine rates each period twice: once on the raw usage as stored (the
// caller clips it to the window), once with each broken metric's usage scaled so that it adds up to the
// invoiced quantity — I spread over segments and periods in proportion to R, or all to the last rated
// segment when R is 0.
//
// Decisions where DESIGN is silent (docs/reconciliation.md lists them too):
//  - "The usage charge" of a metric is the sum of its usage lines before rounding: included units, tiers,
//    the meter's discount and cap applied. The contract-wide discount and cap, the commitment and credits
//    are not attributed to one metric and stay out.
//  - A metric priced by level or filtered meters is scaled figure by figure (the peak, the distinct count
//    and each filter's sum × I/R). With R = 0 the invoiced units go to the last segment as unfiltered usage,
//    which such meters do not price: the break keeps its class and units, its money is what a plain sum
//    meter would charge, or 0.
//  - The difference is rounded once, with the contract's rounding mode, to the currency's minor unit.
import { type Decimal, ZERO, roundMoney, sum, toDecimal } from "../money.js";
import { ratePeriod } from "../rating/rate-period.js";
import type { RatingContract, RatingInput, RatingResult } from "../rating/types.js";

export interface MetricCharge {
  /** The usage charge for the raw units, and for the invoiced units (unrounded). */
  raw: Decimal;
  invoiced: Decimal;
  /** raw − invoiced, rounded: positive when under-billed. */
  amount: Decimal;
}

/** A broken metric of one contract, in the contract's unit: the key's raw units and its invoiced units. */
export interface BreakUnits {
  raw: Decimal;
  invoiced: Decimal;
}

/**
 * Prices the broken metrics of one contract. `periods` are the rating inputs of its billing periods that
 * overlap the window, their usage and figures those of the window. Each period's share of I is I × its
 * R ÷ the key's R (a part no version covers is not rated, for R or for I).
 */
export function priceBreaks(contract: RatingContract, periods: readonly RatingInput[], breaks: ReadonlyMap<string, BreakUnits>): Map<string, MetricCharge> {
  const out = new Map<string, MetricCharge>();
  if (breaks.size === 0) return out;
  const rated = periods.map((input) => ({ input, result: ratePeriod(input) }));
  const lastRated = [...rated].reverse().find(({ result }) => result.segments.some((s) => s.version !== null));
  const invoicedRatings = rated.map(({ input }) => ratePeriod(scaledInput(input, breaks, input === lastRated?.input ? lastRated.result : null)));
  for (const [metric] of breaks) {
    const raw = sum(rated.map(({ result }) => usageChargeOf(result, metric)));
    const inv = sum(invoicedRatings.map((result) => usageChargeOf(result, metric)));
    out.set(metric, { raw, invoiced: inv, amount: roundMoney(raw.minus(inv), contract.currency, contract.roundingMode) });
  }
  return out;
}

function usageChargeOf(result: RatingResult, metric: string): Decimal {
  return sum(result.lines.filter((l) => l.kind === "usage" && l.metric === metric).map((l) => toDecimal(l.unroundedAmount)));
}

/** The input with each metric's usage and figures × I / R (or, with R = 0, I in the last rated segment). */
function scaledInput(input: RatingInput, breaks: ReadonlyMap<string, BreakUnits>, lastResult: RatingResult | null): RatingInput {
  const factor = (metric: string): Decimal | null => {
    const b = breaks.get(metric);
    if (b === undefined) return null;
    return b.raw.isZero() ? ZERO : b.invoiced.dividedBy(b.raw);
  };
  const usage = input.usage.map((u) => {
    const f = factor(u.metric);
    return f === null ? u : { ...u, quantity: toDecimal(u.quantity).times(f).toFixed() };
  });
  const measured = input.measured?.map((m) => {
    const f = factor(m.measure.metric);
    return f === null ? m : { ...m, value: toDecimal(m.value).times(f).toFixed() };
  });
  if (lastResult !== null) {
    const last = [...lastResult.segments].reverse().find((s) => s.version !== null)!;
    for (const [metric, b] of breaks) {
      if (!b.raw.isZero() || b.invoiced.isZero()) continue;
      const row = usage.findIndex((u) => u.metric === metric && u.from === last.from && u.to === last.to);
      const add = { from: last.from, to: last.to, metric, quantity: b.invoiced.toFixed() };
      if (row >= 0) usage[row] = add;
      else usage.push(add);
    }
  }
  return { ...input, usage, ...(measured ? { measured } : {}) };
}
