// The usage summary of a contract: usage against each meter for the billing period containing an instant.
import type { Database } from "../../db/client.js";
import { sumUsage } from "../../db/queries/usage.js";
import { Decimal, formatDecimal } from "../../domain/money.js";
import { formatInstant, periodContaining } from "../../domain/periods.js";
import type { Meter } from "../../domain/terms.js";
import { conflict, invalid } from "../../errors.js";
import { getContract, periodContractOf } from "../contracts/read.js";

export interface MeterUsage {
  metric: string;
  unit: string | null;
  used: string;
  included: string;
  remaining: string;
  shareUsed: string | null;
}

export interface UsageSummary {
  contractId: string;
  at: string;
  period: { start: string; end: string };
  version: number;
  meters: MeterUsage[];
  unmetered: { metric: string; used: string }[];
}

/**
 * Per meter of the version in force at `at` (default: now): usage of the whole billing period containing
 * `at` (all the contract's customer and account ids, non-voided events), against the meter's included
 * units as written (not prorated; the true-up prorates). Metrics used in the period without a meter are
 * listed apart.
 */
export async function usageSummary(db: Database, contractId: string, at: string | undefined, now: Date): Promise<UsageSummary> {
  const contract = await getContract(db, contractId);
  const instant = at === undefined ? formatInstant(now.getTime()) : formatInstant(Date.parse(at));
  const period = periodContaining(periodContractOf(contract), instant);
  if (!period)
    throw invalid([{ field: "at", message: `must fall within the contract term (from ${contract.termStart}${contract.termEnd ? ` to ${contract.termEnd}` : ""})` }]);
  const atMs = Date.parse(instant);
  const version = [...contract.versions]
    .filter((v) => Date.parse(v.effectiveFrom) <= atMs)
    .sort((a, b) => Date.parse(a.effectiveFrom) - Date.parse(b.effectiveFrom) || a.version - b.version)
    .pop();
  if (!version) throw conflict(`no version of contract ${contractId} is in force at ${instant}`);

  const rows = await sumUsage(db.sql, [contract.customerId, ...contract.accountIds], [{ from: period.start, to: period.end }]);
  const used = new Map(rows.map((r) => [r.metric, new Decimal(r.quantity)]));
  const meters: MeterUsage[] = (version.terms.meters as Meter[]).map((m) => {
    const u = used.get(m.metric) ?? new Decimal(0);
    const included = new Decimal(m.included ?? "0");
    const remaining = Decimal.max(0, included.minus(u));
    return {
      metric: m.metric,
      unit: m.unit ?? null,
      used: formatDecimal(u),
      included: formatDecimal(included),
      remaining: formatDecimal(remaining),
      // Rounded half-up to 9 decimals (the scale of quantities); exact ratios rarely terminate.
      shareUsed: included.isZero() ? null : formatDecimal(u.dividedBy(included).toDecimalPlaces(9, Decimal.ROUND_HALF_UP)),
    };
  });
  const metered = new Set(meters.map((m) => m.metric));
  const unmetered = rows.filter((r) => !metered.has(r.metric)).map((r) => ({ metric: r.metric, used: r.quantity }));
  return { contractId, at: instant, period: { start: period.start, end: period.end }, version: version.version, meters, unmetered };
}
