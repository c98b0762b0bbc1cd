// Rule 10 — Prepaid credits (docs/rating.md): grants of the versions in force in the period (a later
// version's definition of a grant id wins), valid in the period, earliest expiry first (then grant id), pay
// the rounded usage and shortfall lines net of contract discount/cap lines — not platform fees — up to their
// balance. One negative credit_applied line per grant used.
import { Decimal, ZERO, formatDecimal as q, formatMoney, max, min, sum, truncateMoney } from "../money.js";
import { moneyText } from "./describe.js";
import { type CompiledGrant, type ParsedVersion, type PeriodPlan, parseDecimalInput } from "./plan.js";
import { type CreditAmount, type Line, type RatingInput, RatingInputError } from "./types.js";

/** A rounded line with its amount as a Decimal (the value of `line.amount`). */
export interface RoundedLine {
  line: Line;
  amount: Decimal;
}

export interface Credits {
  lines: Line[];
  /** The amounts of `lines`, as Decimals. */
  amounts: Decimal[];
  creditsApplied: CreditAmount[];
}

/**
 * `versions`: every version of the contract. A grant absent from `creditBalances` has its full amount: the one
 * the latest version defining it gives (by version number, in force or not), as the service computes the
 * balances it passes (services/true-ups/rating-inputs.ts) — so a version that never takes effect (it shares
 * its effectiveFrom with a later one) still amends the grant's amount, whichever way the balance arrives.
 */
export function applyCredits(
  period: PeriodPlan,
  versions: readonly ParsedVersion[],
  creditBalances: RatingInput["creditBalances"],
  lines: readonly RoundedLine[],
  currency: string,
): Credits {
  const balances = parseBalances(creditBalances);
  const amounts = latestAmounts(versions);
  const payable = max(
    ZERO,
    sum(lines.filter((l) => l.line.kind !== "platform_fee").map((l) => l.amount)),
  );
  const valid = validGrants(period);
  let remaining = payable;
  const out: Credits = { lines: [], amounts: [], creditsApplied: [] };
  for (const g of valid) {
    if (!remaining.isPositive() || remaining.isZero()) break;
    // A balance is never exceeded: it is truncated (not rounded) to the minor unit before use.
    const available = max(ZERO, truncateMoney(balances.get(g.id) ?? amounts.get(g.id) ?? g.amount, currency));
    const applied = min(remaining, available);
    if (applied.isZero()) continue;
    remaining = remaining.minus(applied);
    out.creditsApplied.push({ grantId: g.id, amount: formatMoney(applied, currency), balanceAfter: formatMoney(available.minus(applied), currency) });
    out.lines.push(creditLine(g, available, applied, currency));
    out.amounts.push(applied.negated());
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

function creditLine(g: CompiledGrant, available: Decimal, applied: Decimal, currency: string): Line {
  const money = (d: Decimal) => moneyText(d, currency);
  return {
    kind: "credit_applied", segment: null, usage: null, included: null, billable: null, fraction: null,
    // The grant's balance once this period's use is recorded (what the next period sees as available).
    grantId: g.id, available: formatMoney(available, currency), balanceAfter: formatMoney(available.minus(applied), currency), expiresAt: g.expiresAt,
    unroundedAmount: q(applied.negated()),
    amount: formatMoney(applied.negated(), currency),
    description:
      `Prepaid credit ${g.id} (expires ${g.expiresAt}): ${money(available)} available, ${money(applied)} applied, ` +
      `${money(available.minus(applied))} left`,
  };
}
