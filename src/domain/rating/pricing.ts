// Pricing models (docs/rating.md, rule 4) as small pure functions chosen by a factory.
// Each takes the billable units of one meter in one segment, the scale of its tier bounds and the scale of
// its flat fees, and returns the gross charge (unrounded) with what a customer needs to check it.
//
// Proration (rule 4: "tier bounds (upTo) are scaled by fraction"):
//   - graduated and volume: every tier bound is upTo × `bounds` (the segment's fraction for sum and count,
//     1 for the level aggregations), and a tier's flatFee is flatFee × `fees` (always the fraction: a flat
//     fee is a per-period amount like the platform fee, so a segment pays its share). With usage proportional
//     to the fractions, the segments of a period therefore add up exactly to the whole period.
//   - package: the package size is a unit of sale, not a tier bound: it is not scaled. Billable units are
//     rounded up to whole packages in each segment; zero billable units cost nothing.
//   - The first tier's flat fee is due even at zero billable units, in graduated and volume alike (zero units
//     fall in the first tier), as Lago, OpenMeter and Stripe bill it: a first-tier flat fee is a base fee.
//     A later tier's flat fee is due once the tier holds at least one unit (once it is reached).
import type { Pricing } from "../terms.js";
import { Decimal, ZERO, atPrecision, keepText, toDecimal } from "../money.js";

export interface TierCharge {
  /** 1-based position of the tier in the price list. */
  tier: number;
  /** Scaled lower bound (exclusive): the previous tier's scaled upTo, 0 for the first tier. */
  from: Decimal;
  /** Scaled upper bound (inclusive), null for the last tier. */
  upTo: Decimal | null;
  unitPrice: Decimal;
  /** Scaled flat fee, charged when the tier is reached (the first tier always is). */
  flatFee: Decimal;
  units: Decimal;
  amount: Decimal;
}

export interface PriceResult {
  model: Pricing["model"];
  /** Gross charge before the meter's discount and cap, unrounded. */
  amount: Decimal;
  /** per_unit: the unit price; volume: the unit price of the tier the units fall in. */
  unitPrice?: Decimal;
  /** graduated and volume: every tier, with the units priced in it. */
  tiers?: TierCharge[];
  /** package: size, price and the number of (whole) packages billed. */
  packageSize?: Decimal;
  packagePrice?: Decimal;
  packages?: Decimal;
}

/** `bounds` scales the tier bounds (upTo), `fees` the tier flat fees; the caller chooses them (rule 4). */
export type PricingFunction = (billable: Decimal, bounds: Decimal, fees: Decimal) => PriceResult;

/** A tier with Decimals (upTo null: no upper bound; flatFee 0 when none). */
export interface ParsedTier {
  upTo: Decimal | null;
  unitPrice: Decimal;
  flatFee: Decimal;
}

/** A decimal of a price: parsed once per compiled meter and written by every line, so its text is kept with it. */
const termDecimal = (value: string, what: string): Decimal => keepText(toDecimal(value, what));

function parseTiers(tiers: ReadonlyArray<{ upTo: string | null; unitPrice: string; flatFee?: string | undefined }>): ParsedTier[] {
  return tiers.map((t) => ({
    upTo: t.upTo === null ? null : termDecimal(t.upTo, "tier upTo"),
    unitPrice: termDecimal(t.unitPrice, "tier unitPrice"),
    flatFee: t.flatFee === undefined ? ZERO : termDecimal(t.flatFee, "tier flatFee"),
  }));
}

/** per_unit: billable × unitPrice. */
function perUnit(unitPrice: Decimal): PricingFunction {
  return (billable) => ({ model: "per_unit", amount: billable.times(unitPrice), unitPrice });
}

/** A tier at one scale of bounds and fees: everything of its TierCharge but the units and their amount. */
interface ScaledTier {
  tier: number;
  from: Decimal;
  upTo: Decimal | null;
  unitPrice: Decimal;
  flatFee: Decimal;
  /**
   * graduated, when billable units exceed upTo (the tier is full): its units and charge, and the amount of
   * the tiers up to it when every one of them is full (null for the last tier, which never is).
   */
  full: { units: Decimal; charge: Decimal; amount: Decimal } | null;
}

/**
 * The tiers scaled by `bounds` and `fees`, kept per scale: a segment's fraction (a Decimal of its plan, which
 * plan.ts keeps) is the scale of every rating of that segment, and scaling is a multiplication per bound and
 * fee (and their texts, for the lines). Keyed by the `bounds` instance in a WeakMap (nothing is kept once the
 * fraction is gone), checked for the same `fees`, anything else computed anew.
 */
function scaledTiers(list: readonly ParsedTier[]): (bounds: Decimal, fees: Decimal) => ScaledTier[] {
  const byBounds = new WeakMap<Decimal, { fees: Decimal; tiers: ScaledTier[] }>();
  return (bounds, fees) => {
    const known = byBounds.get(bounds);
    if (known !== undefined && known.fees === fees) return known.tiers;
    let lower = ZERO;
    let amount = ZERO;
    const tiers = list.map((t, i) => {
      const upTo = t.upTo === null ? null : keepText(t.upTo.times(bounds));
      const row: ScaledTier = { tier: i + 1, from: lower, upTo, unitPrice: t.unitPrice, flatFee: keepText(t.flatFee.times(fees)), full: null };
      if (upTo !== null) {
        // What graduated() computes for a tier that billable units exceed (top = upTo), and the running amount.
        const units = !upTo.greaterThan(row.from) ? ZERO : row.from.isZero() ? atPrecision(upTo) : upTo.minus(row.from);
        const charge = i === 0 || units !== ZERO ? tierCharge(units, row) : ZERO;
        amount = addCharge(amount, charge);
        row.full = { units: keepText(units), charge: keepText(charge), amount };
        lower = upTo;
      }
      return row;
    });
    byBounds.set(bounds, { fees, tiers });
    return tiers;
  };
}

// Adding 0 to a value already at the precision (a product, a sum, a scaled fee) gives that value: the
// additions below are skipped when an operand is 0, and so are the subtractions whose result is not used.

/** units × unitPrice + flatFee. */
function tierCharge(units: Decimal, t: ScaledTier): Decimal {
  if (units === ZERO) return t.flatFee;
  const priced = units.times(t.unitPrice);
  return t.flatFee.isZero() ? priced : priced.plus(t.flatFee);
}

/** amount + charge, the addition skipped when one is 0 (the running amount of graduated). */
function addCharge(amount: Decimal, charge: Decimal): Decimal {
  return amount === ZERO ? charge : charge === ZERO ? amount : amount.plus(charge);
}

/** graduated: each unit priced in the tier it falls in; a tier holds the units up to and including its upTo. */
export function graduated(list: readonly ParsedTier[]): PricingFunction {
  const scaled = scaledTiers(list);
  // No billable units (usage within the included ones, often) cost the same at a scale every time: the price
  // is kept with the scaled tiers (it is never changed, usage-charges.ts).
  const atZero = new WeakMap<readonly ScaledTier[], PriceResult>();
  return (billable, bounds, fees) => {
    const rows = scaled(bounds, fees);
    if (!billable.isZero()) return graduatedPrice(billable, rows);
    let price = atZero.get(rows);
    if (price === undefined) atZero.set(rows, (price = graduatedPrice(ZERO, rows)));
    return price;
  };
}

/** graduated at a scale: each unit priced in the tier it falls in. */
function graduatedPrice(billable: Decimal, rows: readonly ScaledTier[]): PriceResult {
  let amount = ZERO;
  let allFull = true; // every tier so far is full: the running amount is the kept one
  const tiers: TierCharge[] = rows.map((t, i) => {
    const upper = t.upTo;
    let units: Decimal;
    let charge: Decimal;
    if (t.full !== null && upper !== null && !billable.lessThanOrEqualTo(upper)) {
      // A full tier's units and charge depend on the tier alone (scaledTiers computed them).
      ({ units, charge } = t.full);
      amount = allFull ? t.full.amount : addCharge(amount, charge);
    } else {
      allFull = false;
      // The units above the tier's lower bound, up to billable (none when billable is not above it).
      units = !billable.greaterThan(t.from) ? ZERO : t.from.isZero() ? atPrecision(billable) : billable.minus(t.from);
      const reached = i === 0 || units !== ZERO;
      charge = reached ? tierCharge(units, t) : ZERO;
      amount = addCharge(amount, charge);
    }
    return { tier: t.tier, from: t.from, upTo: upper, unitPrice: t.unitPrice, flatFee: t.flatFee, units, amount: charge };
  });
  return { model: "graduated", amount, tiers };
}

/** volume: every unit priced at the tier the total falls in, plus that tier's flat fee. */
function volume(list: readonly ParsedTier[]): PricingFunction {
  const scaled = scaledTiers(list);
  return (billable, boundScale, fees) => {
    const rows = scaled(boundScale, fees);
    // Zero units fall in the first tier (whose flat fee is then due).
    let applied = rows.findIndex((t) => t.upTo === null || billable.lessThanOrEqualTo(t.upTo));
    if (applied < 0) applied = list.length - 1; // unreachable: the last tier is open-ended
    let amount = ZERO;
    let unitPrice: Decimal | undefined;
    const tiers: TierCharge[] = rows.map((t, i) => {
      const units = i === applied ? billable : ZERO;
      const charge = i === applied ? billable.times(t.unitPrice).plus(t.flatFee) : ZERO;
      if (i === applied) {
        amount = charge;
        unitPrice = t.unitPrice;
      }
      return { tier: t.tier, from: t.from, upTo: t.upTo, unitPrice: t.unitPrice, flatFee: t.flatFee, units, amount: charge };
    });
    return unitPrice === undefined ? { model: "volume", amount, tiers } : { model: "volume", amount, unitPrice, tiers };
  };
}

/** package: billable units rounded up to whole packages × packagePrice (package size not prorated). */
function packaged(packageSize: Decimal, packagePrice: Decimal): PricingFunction {
  return (billable) => {
    const packages = billable.dividedBy(packageSize).ceil();
    return { model: "package", amount: packages.times(packagePrice), packageSize, packagePrice, packages };
  };
}

/** The factory: the pricing function for a meter's (validated) pricing description. */
export function pricingFor(pricing: Pricing): PricingFunction {
  switch (pricing.model) {
    case "per_unit":
      return perUnit(termDecimal(pricing.unitPrice, "unitPrice"));
    case "graduated":
      return graduated(parseTiers(pricing.tiers));
    case "volume":
      return volume(parseTiers(pricing.tiers));
    case "package":
      return packaged(termDecimal(pricing.packageSize, "packageSize"), termDecimal(pricing.packagePrice, "packagePrice"));
  }
}
