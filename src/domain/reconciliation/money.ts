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
  const invoicedRatings = scaledInputs(rated, breaks).map(ratePeriod);
  for (const [metric] of breaks) {
    const raw = sum(rated.map(({ result }) => usageChargeOf(result, metric)));
    const inv = sum(invoicedRatings.map((result) => usageChargeOf(result, metric)));
    // Scaled shares carry digits past the engine's 50 significant ones (1e-45 and below): the difference is cut
    // to 18 places first, so that noise cannot tip a half-cent tie the wrong way.
    const exact = raw.minus(inv).toDecimalPlaces(18);
    out.set(metric, { raw, invoiced: inv, amount: roundMoney(exact, contract.currency, contract.roundingMode) });
  }
  return out;
}

function usageChargeOf(result: RatingResult, metric: string): Decimal {
  return sum(result.lines.filter((l) => l.kind === "usage" && l.metric === metric).map((l) => toDecimal(l.unroundedAmount)));
}

/**
 * The inputs with each broken metric's usage and figures × I / R (multiplied before dividing; the last rated
 * segment takes what is left of I, so the rated shares add up to I exactly whenever all of R was rated), or,
 * with R = 0, all of I in the last rated segment.
 */
function scaledInputs(rated: readonly { input: RatingInput; result: RatingResult }[], breaks: ReadonlyMap<string, BreakUnits>): RatingInput[] {
  const scale = (metric: string, q: string): string | null => {
    const b = breaks.get(metric);
    if (b === undefined) return null;
    return b.raw.isZero() ? "0" : toDecimal(q).times(b.invoiced).dividedBy(b.raw).toFixed();
  };
  const inputs = rated.map(({ input }) => ({
    ...input,
    usage: input.usage.map((u) => {
      const q = scale(u.metric, u.quantity);
      return q === null ? u : { ...u, quantity: q };
    }),
    ...(input.measured
      ? { measured: input.measured.map((m) => {
          const v = scale(m.measure.metric, m.value);
          return v === null ? m : { ...m, value: v };
        }) }
      : {}),
  }));
  // The rows that are rated segments' usage (not a spike's or a term's other windows); the last one found takes the rest of I.
  const segmentRows: { period: number; row: number; metric: string }[] = [];
  rated.forEach(({ input, result }, period) => {
    const segments = new Set(result.segments.filter((s) => s.version !== null).map((s) => `${s.from}|${s.to}`));
    input.usage.forEach((u, row) => {
      if (breaks.has(u.metric) && segments.has(`${u.from}|${u.to}`)) segmentRows.push({ period, row, metric: u.metric });
    });
  });
  for (const [metric, b] of breaks) {
    const rows = segmentRows.filter((r) => r.metric === metric);
    if (b.raw.isZero()) {
      if (b.invoiced.isZero()) continue;
      const lastPeriod = rated.map((r, i) => ({ ...r, i })).reverse().find(({ result }) => result.segments.some((s) => s.version !== null));
      if (!lastPeriod) continue;
      const last = [...lastPeriod.result.segments].reverse().find((s) => s.version !== null)!;
      const usage = inputs[lastPeriod.i]!.usage;
      const row = usage.findIndex((u) => u.metric === metric && u.from === last.from && u.to === last.to);
      const all = { from: last.from, to: last.to, metric, quantity: b.invoiced.toFixed() };
      if (row >= 0) usage[row] = all;
      else usage.push(all);
      continue;
    }
    const ratedRaw = sum(rows.map((r) => toDecimal(rated[r.period]!.input.usage[r.row]!.quantity)));
    if (rows.length === 0 || !ratedRaw.eq(b.raw)) continue;
    const others = sum(rows.slice(0, -1).map((r) => toDecimal(inputs[r.period]!.usage[r.row]!.quantity)));
    const lastRow = rows[rows.length - 1]!;
    const usage = inputs[lastRow.period]!.usage;
    usage[lastRow.row] = { ...usage[lastRow.row]!, quantity: b.invoiced.minus(others).toFixed() };
  }
  return inputs;
}
