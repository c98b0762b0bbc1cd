// The usage summary of a contract: usage against each meter for the billing period containing an instant,
// and, for the current period, the forecast (docs/rating.md, "Forecast").
import type { Database } from "../../db/client.js";
import { type ContractRecord, contractWithVersions } from "../../db/queries/contracts.js";
import { measureUsage } from "../../db/queries/measures.js";
import { sumUsage } from "../../db/queries/usage.js";
import type { Sql } from "../../db/sql.js";
import { transaction } from "../../db/tx.js";
import { type Filter, type Measure, type MeasuredUsage, filteredSumOf, isLevel, isPlainSum, measureKey, measureOf, usageFromFigure } from "../../domain/rating/measures.js";
import { type PeriodRef, type UsageAggregate, ratePeriod, usageRequest } from "../../domain/index.js";
import { Decimal, formatDecimal } from "../../domain/money.js";
import { formatInstant, periodContaining } from "../../domain/periods.js";
import type { Aggregation, Meter } from "../../domain/terms.js";
import { conflict, invalid, notFound } from "../../errors.js";
import { periodContractOf, toContractView, toVersionView, versionInForceAt } from "../contracts/read.js";
import { loadRatingInputs } from "../true-ups/rating-inputs.js";

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
  /** Current period only: the period's usage if it goes on as so far (flows), or the current level (levels). */
  projected?: string;
}

export interface UsageSummary {
  contractId: string;
  at: string;
  period: { start: string; end: string };
  version: number;
  meters: MeterUsage[];
  unmetered: { metric: string; used: string }[];
  /** Current period only: (now − start) ÷ (end − start), 9 decimals half-up. */
  elapsedShare?: string;
  /** Current period only: the engine's delta for the period with every flow replaced by its projection. */
  projectedTrueUp?: string;
}

/** Quantities are numeric(38,9): projections are rounded half-up to that scale, as shareUsed is. */
const toQuantity = (d: Decimal) => d.toDecimalPlaces(9, Decimal.ROUND_HALF_UP);

/**
 * Per meter of the version in force at `at` (default: now): usage of the whole billing period containing
 * `at` (all the contract's customer and account ids, non-voided events), by the meter's aggregation and
 * filter, against the meter's included units as written (not prorated; the true-up prorates). A
 * time_weighted meter's level is carried to the period's end (what the period will bill if nothing changes).
 * Metrics used in the period without a meter are listed apart.
 *
 * With `forecast`, when that period is the current one (it contains `now`, and some of it has elapsed), also:
 * `projected` per meter, `elapsedShare` and `projectedTrueUp`. A period that is over needs no forecast (its
 * usage is `used`, its true-up the preview's) and one not begun has nothing to project from: both answer
 * without these fields. One read-only snapshot, so `used` and the projections agree.
 */
export async function usageSummary(
  db: Database,
  contractId: string,
  at: string | undefined,
  now: Date,
  // Opt-in: the forecast rates the period, which the alerts' use of the summary (usage figures only) need not pay for.
  options: { forecast?: boolean } = {},
): Promise<UsageSummary> {
  return transaction(
    db,
    async (sql) => {
      const row = await contractWithVersions(sql, contractId);
      if (!row) throw notFound("contract", contractId);
      const contract = toContractView(row);
      const versions = row.versions.map(toVersionView);
      const instant = at === undefined ? formatInstant(now.getTime()) : formatInstant(Date.parse(at));
      const period = periodContaining(periodContractOf(contract), instant);
      if (!period)
        throw invalid([{ field: "at", message: `must fall within the contract term (from ${contract.termStart}${contract.termEnd ? ` to ${contract.termEnd}` : ""})` }]);
      const atMs = Date.parse(instant);
      const version = versionInForceAt(versions, atMs);
      if (!version) throw conflict(`no version of contract ${contractId} is in force at ${instant}`);

      const ids = [contract.customerId, ...contract.accountIds];
      const rows = await sumUsage(sql, ids, [{ from: period.start, to: period.end }]);
      const totals = new Map(rows.map((r) => [r.metric, new Decimal(r.quantity)]));
      const measures = (version.terms.meters as Meter[]).map((m) => measureOf(m));
      // The filtered sum of every filtered meter too: what a metric's meters leave unmatched is unmetered usage.
      const filteredSums = measures.filter((m) => m.filter !== null).map(filteredSumOf);
      const asked = [...measures.filter((m) => !isPlainSum(m)), ...filteredSums].map((measure) => ({ from: period.start, to: period.end, measure }));
      const figures = new Map((await measureUsage(sql, ids, asked)).map((f) => [measureKey(f.measure), new Decimal(f.value)]));
      const startMs = Date.parse(period.start);
      const endMs = Date.parse(period.end);
      const nowMs = now.getTime();
      const forecasting = options.forecast === true && startMs < nowMs && nowMs < endMs;
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
          // A level is held, not accumulated: its projection is where it stands (`used`, see docs/rating.md).
          ...(forecasting ? { projected: formatDecimal(isLevel(measure.aggregation) ? u : toQuantity(u.times(endMs - startMs).dividedBy(nowMs - startMs))) } : {}),
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
      const summary: UsageSummary = { contractId, at: instant, period: { start: period.start, end: period.end }, version: version.version, meters, unmetered };
      if (!forecasting) return summary;
      return {
        ...summary,
        elapsedShare: formatDecimal(toQuantity(new Decimal(nowMs - startMs).dividedBy(endMs - startMs))),
        projectedTrueUp: await projectedTrueUp(sql, contract, { start: period.start, end: period.end }, nowMs, totals),
      };
    },
    // Reads only, and every figure from one snapshot.
    { isolation: "repeatable read", readOnly: true },
  );
}

const isFlow = (m: Measure) => !isLevel(m.aggregation);

/**
 * The period rated by the engine, as a preview would (real versions, billings and credits), with the flows
 * of its windows projected: a window [from, to) of the period keeps what it measured and gains the period's
 * run rate (its whole figure ÷ the time elapsed) over the part of it still ahead of `now`. Summed over the
 * period's segments that is exactly used ÷ elapsed share, and the usage still to come falls in the segment
 * (version, prices) it will be billed in. Levels, and windows outside the period (prior periods of a spike
 * check or a term commitment), are passed as measured. The engine's rules are untouched: only its inputs are.
 */
async function projectedTrueUp(sql: Sql, contract: ContractRecord, period: PeriodRef, nowMs: number, wholeSums: Map<string, Decimal>): Promise<string> {
  const { input, customerIds } = await loadRatingInputs(sql, contract, period);
  const startMs = Date.parse(period.start);
  const endMs = Date.parse(period.end);
  const elapsedMs = nowMs - startMs;
  const inPeriod = (w: { from: string; to: string }) => Date.parse(w.from) >= startMs && Date.parse(w.to) <= endMs;
  const window = (w: { from: string; to: string }) => `${Date.parse(w.from)}|${Date.parse(w.to)}`;
  const project = (actual: Decimal, whole: Decimal, w: { from: string; to: string }) => {
    const aheadMs = Math.max(0, Date.parse(w.to) - Math.max(Date.parse(w.from), nowMs));
    return formatDecimal(toQuantity(actual.plus(whole.times(aheadMs).dividedBy(elapsedMs))));
  };
  // The plan is cached: the same windows and measures loadRatingInputs read.
  const request = usageRequest({ contract: input.contract, versions: input.versions, period });

  const actualSums = new Map<string, Decimal>();
  for (const r of input.usage) if (inPeriod(r)) actualSums.set(`${window(r)}|${r.metric}`, new Decimal(r.quantity));
  const usage: UsageAggregate[] = input.usage.filter((r) => !inPeriod(r));
  for (const w of request.windows.filter(inPeriod))
    for (const [metric, whole] of wholeSums)
      usage.push({ from: w.from, to: w.to, metric, quantity: project(actualSums.get(`${window(w)}|${metric}`) ?? new Decimal(0), whole, w) });

  // The whole period's figure of every flow measure the engine reads in the period (counts, filtered sums).
  const flows = new Map<string, Measure>();
  for (const a of request.measures) if (inPeriod(a) && isFlow(a.measure)) flows.set(measureKey(a.measure), a.measure);
  const wholeFigures = new Map(
    (await measureUsage(sql, customerIds, [...flows.values()].map((measure) => ({ from: period.start, to: period.end, measure })))).map((f) => [
      measureKey(f.measure),
      new Decimal(f.value),
    ]),
  );
  const actualFigures = new Map((input.measured ?? []).map((f) => [`${window(f)}|${measureKey(f.measure)}`, new Decimal(f.value)]));
  const measured: MeasuredUsage[] = (input.measured ?? []).filter((f) => !(inPeriod(f) && isFlow(f.measure)));
  for (const a of request.measures) {
    if (!inPeriod(a) || !isFlow(a.measure)) continue;
    const key = measureKey(a.measure);
    measured.push({ ...a, value: project(actualFigures.get(`${window(a)}|${key}`) ?? new Decimal(0), wholeFigures.get(key) ?? new Decimal(0), a) });
  }
  return ratePeriod({ ...input, usage, measured }).delta;
}
