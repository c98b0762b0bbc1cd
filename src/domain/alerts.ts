// Which of a contract's alerts have been reached (DESIGN.md §9, docs/webhooks.md): pure, from figures the
// service measured for the current billing period. "Reached" is ≥; a credit balance "fell to" is ≤. Whether
// an alert already fired this period is the database's to say (a unique row), not this function's.
import { Decimal, formatDecimal } from "./money.js";
import type { AlertTerm } from "./terms.js";

export interface AlertFigures {
  /** Per meter id: its usage so far by its aggregation, and its included units as written (not prorated). */
  meters: ReadonlyMap<string, { used: Decimal; included: Decimal }>;
  /** The period's usage charges so far: the lines that count toward a commitment (platform fees excluded). */
  usageCharges: Decimal;
  /** The period commitment of the version in force, as written; null without one. */
  periodCommitment: Decimal | null;
  /** Per grant valid in the period: its amount less what other periods' latest documents and this period's rating draw. */
  grantBalances: ReadonlyMap<string, Decimal>;
}

export interface AlertReached {
  alert: AlertTerm;
  /** The measured figure: usage, usage charges or a balance. */
  value: string;
  /** value ÷ the base, for the share kinds (half-up to 9 decimals, the scale it is stored at). */
  share: string | null;
}

const ratio = (value: Decimal, base: Decimal) => value.dividedBy(base).toDecimalPlaces(9, Decimal.ROUND_HALF_UP);

/** The alerts of `alerts` whose thresholds the figures reach, with the figure each was measured at. */
export function alertsReached(alerts: readonly AlertTerm[], f: AlertFigures): AlertReached[] {
  const reached: AlertReached[] = [];
  for (const alert of alerts) {
    const threshold = new Decimal(alert.threshold);
    switch (alert.kind) {
      case "included_share": {
        const meter = f.meters.get(alert.metric ?? "");
        // No included units: no share of them can be reached (a quantity alert watches such a meter).
        if (!meter || meter.included.isZero()) break;
        if (meter.used.greaterThanOrEqualTo(threshold.times(meter.included)))
          reached.push({ alert, value: formatDecimal(meter.used), share: formatDecimal(ratio(meter.used, meter.included)) });
        break;
      }
      case "quantity": {
        const meter = f.meters.get(alert.metric ?? "");
        if (meter && meter.used.greaterThanOrEqualTo(threshold)) reached.push({ alert, value: formatDecimal(meter.used), share: null });
        break;
      }
      case "commitment_share": {
        const c = f.periodCommitment;
        if (!c || c.isZero()) break;
        if (f.usageCharges.greaterThanOrEqualTo(threshold.times(c)))
          reached.push({ alert, value: formatDecimal(f.usageCharges), share: formatDecimal(ratio(f.usageCharges, c)) });
        break;
      }
      case "credit_balance": {
        const balances = alert.grantId === undefined ? [...f.grantBalances.values()] : [f.grantBalances.get(alert.grantId)].filter((b) => b !== undefined);
        // A grant not valid in the period has no balance to watch in it.
        if (balances.length === 0) break;
        const balance = balances.reduce((a, b) => a.plus(b), new Decimal(0));
        if (balance.lessThanOrEqualTo(threshold)) reached.push({ alert, value: formatDecimal(balance), share: null });
        break;
      }
    }
  }
  return reached;
}
