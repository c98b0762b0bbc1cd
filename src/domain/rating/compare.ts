// Rule 11 — Compare (docs/rating.md): the period's total, recomputed from scratch, against what was already
// billed for it, and the action that follows.
import { type Decimal, atPrecision, roundMoney } from "../money.js";
import { parseDecimalInput } from "./plan.js";
import { type Action, type CreditAmount, type RatingInput, RatingInputError } from "./types.js";

export interface Comparison {
  /** Σ rounded lines. */
  total: Decimal;
  /** Rounded to the minor unit before delta = total − alreadyBilled. */
  alreadyBilled: Decimal;
  delta: Decimal;
  action: Action;
}

/** `total`: the sum of the rounded amounts of the period's lines. */
export function compare(input: RatingInput, total: Decimal, creditsApplied: readonly CreditAmount[]): Comparison {
  const { currency, roundingMode, allowTrueDown } = input.contract;
  const alreadyBilled = roundMoney(parseDecimalInput(input.alreadyBilled, "alreadyBilled"), currency, roundingMode);
  const delta = total.minus(alreadyBilled);
  let action: Action;
  if (delta.isPositive() && !delta.isZero()) action = "invoice";
  else if (delta.isNegative() && !delta.isZero()) action = allowTrueDown ? "credit_memo" : "none";
  // A zero-amount invoice records a drawdown that differs from the period's latest document.
  else action = creditsDiffer(creditsApplied, input.previousCreditsApplied) ? "invoice" : "none";
  return { total, alreadyBilled, delta, action };
}

function creditsDiffer(applied: readonly CreditAmount[], previous: RatingInput["previousCreditsApplied"]): boolean {
  if (!Array.isArray(previous)) throw new RatingInputError("previousCreditsApplied", "must be an array");
  const totals = (rows: readonly CreditAmount[], path: string) => {
    const m = new Map<string, Decimal>();
    rows.forEach((r, i) => {
      const amount = parseDecimalInput(r.amount, `${path}[${i}].amount`);
      const prior = m.get(r.grantId);
      m.set(r.grantId, prior === undefined ? atPrecision(amount) : prior.plus(amount)); // atPrecision(a) is 0 + a
    });
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
