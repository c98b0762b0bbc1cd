// Rule 10 — Prepaid credits (docs/rating.md): grants of the versions in force in the period (a later
// version's definition of a grant id wins), valid in the period, earliest expiry first (then grant id), pay
// the rounded usage and shortfall lines net of contract discount/cap lines — not platform fees — up to their
// balance. One negative credit_applied line per grant used.
import { Decimal, ZERO, formatDecimal as q, formatMoney, max, min, truncateMoney } from "../money.js";
import { moneyText } from "./describe.js";
import { KeptByInputs } from "./memo.js";
import { type CompiledGrant, type ParsedVersion, type PeriodPlan, parseDecimalInput } from "./plan.js";
import { type CreditAmount, type Line, type RatingInput, RatingInputError } from "./types.js";

export interface Credits {
  lines: Line[];
  /** The amounts of `lines`, as Decimals. */
  amounts: Decimal[];
  creditsApplied: CreditAmount[];
}

/**
 * `payable`: what credits may pay, the sum of the rounded lines but platform fees, floored at 0.
 * `versions`: every version of the contract. A grant absent from `creditBalances` has its full amount: the one
 * the latest version defining it gives (by version number, in force or not), as the service computes the
 * balances it passes (services/true-ups/rating-inputs.ts) — so a version that never takes effect (it shares
 * its effectiveFrom with a later one) still amends the grant's amount, whichever way the balance arrives.
 */
export function applyCredits(
  period: PeriodPlan,
  versions: readonly ParsedVersion[],
  creditBalances: RatingInput["creditBalances"],
  payable: Decimal,
  currency: string,
): Credits {
  const balances = parseBalances(creditBalances);
  const amounts = latestAmounts(versions);
  const valid = validGrants(period);
  const available = valid.map((g) => balances.get(g.id) ?? amounts.get(g.id) ?? g.amount);
  const credits = keptCredits.get(period, [versions, currency, payable, ...available], () => drawCredits(valid, available, payable, currency));
  // The lines and amounts applied are the caller's: copies (of objects of plain values).
  return { lines: credits.lines.map((l) => ({ ...l })), amounts: [...credits.amounts], creditsApplied: credits.creditsApplied.map((c) => ({ ...c })) };
}

// A period's credits, kept with the balances and the payable amount they were drawn from (memo.ts).
const keptCredits = new KeptByInputs<PeriodPlan, Credits>();

/** The grants, in the order they are drawn, pay `payable` from their balances. */
function drawCredits(valid: readonly CompiledGrant[], balances: readonly Decimal[], payable: Decimal, currency: string): Credits {
  let remaining = payable;
  const out: Credits = { lines: [], amounts: [], creditsApplied: [] };
  for (let i = 0; i < valid.length; i++) {
    if (!remaining.isPositive() || remaining.isZero()) break;
    const g = valid[i] as CompiledGrant;
    // A balance is never exceeded: it is truncated (not rounded) to the minor unit before use.
    const available = max(ZERO, truncateMoney(balances[i] as Decimal, currency));
    const applied = min(remaining, available);
    if (applied.isZero()) continue;
    remaining = remaining.minus(applied);
    const left = available.minus(applied);
    out.creditsApplied.push({ grantId: g.id, amount: formatMoney(applied, currency), balanceAfter: formatMoney(left, currency) });
    const amount = applied.negated();
    out.lines.push(creditLine(g, available, applied, left, amount, currency));
    out.amounts.push(amount);
  }
  return out;
}

const amountsByVersions = new WeakMap<readonly ParsedVersion[], Map<string, Decimal>>();

/** Each grant's amount as the latest version defining it (by version number) says; cached per plan's version list. */
function latestAmounts(versions: readonly ParsedVersion[]): Map<string, Decimal> {
  let amounts = amountsByVersions.get(versions);
  if (amounts === undefined) {
    amounts = new Map();
    for (const v of [...versions].sort((a, b) => a.version - b.version)) for (const g of v.terms.grants) amounts.set(g.id, g.amount);
    amountsByVersions.set(versions, amounts);
  }
  return amounts;
}

// The valid grants of a period, by period plan: plans are cached (plan.ts), and the grants depend on nothing else.
const validByPeriod = new WeakMap<PeriodPlan, CompiledGrant[]>();

/** The grants in force and valid in the period, in the order they are drawn: earliest expiry first, then id. */
function validGrants(period: PeriodPlan): CompiledGrant[] {
  let valid = validByPeriod.get(period);
  if (valid === undefined) {
    const { span } = period;
    valid = [...grantsInForce(period).values()]
      .filter((g) => g.grantedAtMs < span.endMs && g.expiresAtMs > span.startMs)
      .sort((a, b) => a.expiresAtMs - b.expiresAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    validByPeriod.set(period, valid);
  }
  return valid;
}

/** The grants of the versions in force in the period, by id; a later version's definition of an id wins. */
function grantsInForce(period: PeriodPlan): Map<string, CompiledGrant> {
  const grants = new Map<string, CompiledGrant>();
  for (const v of [...new Set(period.segments.map((s) => s.version).filter((v) => v !== null))].sort((a, b) => a.version - b.version)) {
    for (const g of v.terms.grants) grants.set(g.id, g);
  }
  return grants;
}

function parseBalances(creditBalances: RatingInput["creditBalances"]): Map<string, Decimal> {
  if (!Array.isArray(creditBalances)) throw new RatingInputError("creditBalances", "must be an array");
  const balances = new Map<string, Decimal>();
  creditBalances.forEach((b, i) => {
    if (balances.has(b.grantId)) throw new RatingInputError(`creditBalances[${i}].grantId`, `grant "${b.grantId}" is listed twice`);
    balances.set(b.grantId, parseDecimalInput(b.available, `creditBalances[${i}].available`));
  });
  return balances;
}

/** `left`: available − applied; `amount`: −applied. */
function creditLine(g: CompiledGrant, available: Decimal, applied: Decimal, left: Decimal, amount: Decimal, currency: string): Line {
  return {
    kind: "credit_applied", segment: null, usage: null, included: null, billable: null, fraction: null,
    // The grant's balance once this period's use is recorded (what the next period sees as available).
    grantId: g.id, available: formatMoney(available, currency), balanceAfter: formatMoney(left, currency), expiresAt: g.expiresAt,
    unroundedAmount: q(amount),
    amount: formatMoney(amount, currency),
    description:
      `Prepaid credit ${g.id} (expires ${g.expiresAt}): ${moneyText(available, currency)} available, ${moneyText(applied, currency)} applied, ` +
      `${moneyText(left, currency)} left`,
  };
}
