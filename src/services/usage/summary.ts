// The usage summary of a contract: usage against each meter for the billing period containing an instant.
import type { Database } from "../../db/client.js";
import { measureUsage } from "../../db/queries/measures.js";
import { sumUsage } from "../../db/queries/usage.js";
import { type Filter, filteredSumOf, isPlainSum, measureKey, measureOf, usageFromFigure } from "../../domain/rating/measures.js";
import { Decimal, formatDecimal } from "../../domain/money.js";
import { formatInstant, periodContaining } from "../../domain/periods.js";
import type { Aggregation, Meter } from "../../domain/terms.js";
import { conflict, invalid } from "../../errors.js";
import { getContract, periodContractOf } from "../contracts/read.js";

export interface MeterUsage {
  meterId: string;
  metric: string;
  aggregation: Aggregation;
  filter: Filter | null;
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
 * `at` (all the contract's customer and account ids, non-voided events), by the meter's aggregation and
 * filter, against the meter's included units as written (not prorated; the true-up prorates). A
 * time_weighted meter's level is carried to the period's end (what the period will bill if nothing changes).
 * Metrics used in the period without a meter are listed apart.
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

  const ids = [contract.customerId, ...contract.accountIds];
  const rows = await sumUsage(db.sql, ids, [{ from: period.start, to: period.end }]);
  const totals = new Map(rows.map((r) => [r.metric, new Decimal(r.quantity)]));
  const measures = (version.terms.meters as Meter[]).map((m) => measureOf(m));
  // The filtered sum of every filtered meter too: what a metric's meters leave unmatched is unmetered usage.
  const filteredSums = measures.filter((m) => m.filter !== null).map(filteredSumOf);
  const asked = [...measures.filter((m) => !isPlainSum(m)), ...filteredSums].map((measure) => ({ from: period.start, to: period.end, measure }));
  const figures = new Map((await measureUsage(db.sql, ids, asked)).map((f) => [measureKey(f.measure), new Decimal(f.value)]));
  const startMs = Date.parse(period.start);
  const endMs = Date.parse(period.end);
  const meters: MeterUsage[] = (version.terms.meters as Meter[]).map((m, i) => {
    const measure = measures[i]!;
    const figure = isPlainSum(measure) ? (totals.get(m.metric) ?? new Decimal(0)) : (figures.get(measureKey(measure)) ?? new Decimal(0));
    const u = usageFromFigure(measure, figure, startMs, endMs);
    const included = new Decimal(m.included ?? "0");
    const remaining = Decimal.max(0, included.minus(u));
    return {
      meterId: m.id ?? m.metric,
      metric: m.metric,
      aggregation: measure.aggregation,
      filter: measure.filter,
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
  // A metric whose meters all filter: the events none of them matches (the filters are disjoint).
  for (const metric of metered) {
    const own = filteredSums.filter((m) => m.metric === metric);
    if (own.length === 0 || own.length !== measures.filter((m) => m.metric === metric).length) continue;
    const matched = own.reduce((acc, m) => acc.plus(figures.get(measureKey(m)) ?? 0), new Decimal(0));
    const rest = (totals.get(metric) ?? new Decimal(0)).minus(matched);
    if (!rest.isZero()) unmetered.push({ metric, used: formatDecimal(rest) });
  }
  return { contractId, at: instant, period: { start: period.start, end: period.end }, version: version.version, meters, unmetered };
}
