// The exceptions the engine raises (docs/rating.md, "Exceptions"): when each is raised, then what it says.
// Whether a kind blocks issuing is decided in exception-kinds.ts. `subject` is a stable key within a
// calculation so that a re-run raises "the same" exception (a metric, a version number, a window); "" when
// the exception is about the whole period.
import { isBlocking } from "../exception-kinds.js";
import { type Decimal, ZERO, formatDecimal as q, formatMoney, sum } from "../money.js";
import { formatInstant } from "../periods.js";
import type { Comparison } from "./compare.js";
import { isPlainSum, usageFromFigure } from "./measures.js";
import { KeptByInputs } from "./memo.js";
import {
  type CompiledMeter,
  type CompiledTerms,
  type MeasuredIndex,
  type PeriodPlan,
  type RatingPlan,
  type SegmentSpan,
  type UsageIndex,
  figureOf,
  parseInstantInput,
  usageOf,
} from "./plan.js";
import { type RatingException, type RatingInput, RatingInputError } from "./types.js";
import type { PeriodCharges } from "./usage-charges.js";

/** Rule 1: a part of the period with no version in force → missing_terms, with the usage left unbilled. */
export function missingTermsExceptions(period: PeriodPlan, usage: UsageIndex): RatingException[] {
  const out: RatingException[] = [];
  for (const s of period.segments) {
    if (s.version !== null) continue;
    const gapUsage: Record<string, string> = {};
    for (const [metric, quantity] of [...usageOf(usage, s)].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!quantity.isZero()) gapUsage[metric] = q(quantity);
    }
    out.push(missingTerms(formatInstant(s.fromMs), formatInstant(s.toMs), gapUsage));
  }
  return out;
}

/**
 * Rule 2: usage of a metric with no meter in the version in force, or events of a metered metric that match
 * none of its meters' filters → unpriced_metric (one per metric, with the quantity not billed).
 */
export function unpricedExceptions(charges: PeriodCharges): RatingException[] {
  const unpriced = new Map<string, Array<{ s: SegmentSpan; quantity: Decimal; unmatched: boolean }>>();
  for (const c of charges.segments) {
    for (const u of c.unpriced) {
      const list = unpriced.get(u.metric) ?? [];
      list.push({ s: c.segment, quantity: u.quantity, unmatched: u.unmatched });
      unpriced.set(u.metric, list);
    }
  }
  return [...unpriced.keys()].sort().map((metric) => {
    const list = unpriced.get(metric) ?? [];
    return unpricedMetric(
      metric,
      q(sum(list.map((x) => x.quantity))),
      list.some((x) => x.unmatched),
      list.map((x) => ({
        from: formatInstant(x.s.fromMs),
        to: formatInstant(x.s.toMs),
        version: x.s.version?.version ?? 0,
        quantity: q(x.quantity),
        reason: x.unmatched ? "matches_no_filter" : "no_meter",
      })),
    );
  });
}

/**
 * usage_spike: a meter's usage this period > spikeFactor × the average of the same figure over the (up to) 3
 * prior periods (the meters of the version in force at the period's end).
 */
export function spikeExceptions(plan: RatingPlan, usage: UsageIndex, measured: MeasuredIndex): RatingException[] {
  const factor = plan.endVersion?.terms.spikeFactor ?? null;
  if (plan.endVersion === null || factor === null || plan.priorPeriods.length === 0) return [];
  const meters = metersById(plan.endVersion.terms);
  const periods = [plan.current, ...plan.priorPeriods];
  // The figures the check reads: the same instances as the plan's last rating find the same spikes (memo.ts).
  // A plain sum is read per segment (the metric's sums are asked for per segment, never over a period an
  // amendment cuts): its figure over a period is the sum of its segments'; every other figure is asked for
  // over the whole period (plan.ts, planMeasures).
  const parts: Decimal[][] = [];
  for (const m of meters) {
    for (const p of periods) {
      const windows = isPlainSum(m.measure) ? p.segments.map((s) => s.key) : [p.key];
      parts.push(windows.map((w) => figureOf(usage, measured, w, m.measure, m.key)));
    }
  }
  const figures = parts.flat();
  const spikes = keptSpikes.get(plan, figures, () =>
    findSpikes(plan, meters, parts.map((f) => (f.length === 1 ? (f[0] as Decimal) : sum(f))), factor),
  );
  // The exceptions are the caller's: copies.
  return spikes.map((d) => usageSpike({ ...d, priorPeriods: d.priorPeriods.map((p) => ({ ...p })) }));
}

type SpikeDetails = Parameters<typeof usageSpike>[0];

const keptSpikes = new KeptByInputs<RatingPlan, SpikeDetails[]>();

function findSpikes(plan: RatingPlan, meters: readonly CompiledMeter[], figures: readonly Decimal[], factor: Decimal): SpikeDetails[] {
  const out: SpikeDetails[] = [];
  const periods = [plan.current, ...plan.priorPeriods];
  meters.forEach((meter, i) => {
    // A meter's usage over a whole period: its own aggregation and filter over [start, end).
    const used = periods.map((p, j) => usageFromFigure(meter.measure, figures[i * periods.length + j] as Decimal, p.span.startMs, p.span.endMs));
    const current = used[0] as Decimal;
    const prior = plan.priorPeriods.map((p, j) => ({ p, used: used[j + 1] as Decimal }));
    const average = sum(prior.map((x) => x.used)).dividedBy(prior.length);
    if (!average.isPositive() || average.isZero()) return;
    const limit = factor.times(average);
    if (current.greaterThan(limit)) {
      out.push({
        meterId: meter.id,
        metric: meter.metric,
        aggregation: meter.measure.aggregation,
        usage: q(current),
        average: q(average),
        spikeFactor: q(factor),
        limit: q(limit),
        priorPeriods: prior.map((x) => ({ start: formatInstant(x.p.span.startMs), end: formatInstant(x.p.span.endMs), usage: q(x.used) })),
      });
    }
  });
  return out;
}

// The meters of a version's terms by id, the order spikes are reported in: by compiled terms.
const sortedMeters = new WeakMap<CompiledTerms, CompiledMeter[]>();

function metersById(terms: CompiledTerms): CompiledMeter[] {
  let meters = sortedMeters.get(terms);
  if (meters === undefined) {
    meters = [...terms.meters].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    sortedMeters.set(terms, meters);
  }
  return meters;
}

/**
 * amendment_conflict, limited to what affects this period: versions sharing an effectiveFrom that is in force
 * during the period (the group in force at its start, or one taking effect inside it), and versions taking
 * effect strictly inside an issued period that overlaps this period.
 */
export function conflictExceptions(plan: RatingPlan, issuedPeriods: RatingInput["issuedPeriods"]): RatingException[] {
  const { span } = plan.current;
  const out: RatingException[] = [];
  const groups = new Map<number, number[]>();
  for (const v of plan.versions) groups.set(v.effectiveMs, [...(groups.get(v.effectiveMs) ?? []), v.version]);
  const inForceAtStart = plan.current.segments[0]?.version?.effectiveMs;
  for (const [ms, versions] of groups) {
    if (versions.length < 2) continue;
    const relevant = ms === inForceAtStart || (ms > span.startMs && ms < span.endMs);
    if (relevant) out.push(sharedEffectiveFrom(formatInstant(ms), versions, Math.max(...versions)));
  }
  if (!Array.isArray(issuedPeriods)) throw new RatingInputError("issuedPeriods", "must be an array");
  issuedPeriods.forEach((p, i) => {
    const startMs = parseInstantInput(p.start, `issuedPeriods[${i}].start`);
    const endMs = parseInstantInput(p.end, `issuedPeriods[${i}].end`);
    if (!(startMs < span.endMs && endMs > span.startMs)) return;
    for (const v of plan.versions) {
      if (v.effectiveMs > startMs && v.effectiveMs < endMs) {
        out.push(amendmentInsideIssuedPeriod(v.version, formatInstant(v.effectiveMs), { start: formatInstant(startMs), end: formatInstant(endMs) }));
      }
    }
  });
  return out;
}

/**
 * Rule 11: materiality (the threshold of the version in force at the period's end, not when delta is 0) and
 * over_billed (delta < 0 and no true-down allowed).
 */
export function deltaExceptions(plan: RatingPlan, c: Comparison, currency: string, allowTrueDown: boolean): RatingException[] {
  const out: RatingException[] = [];
  const threshold = plan.endVersion?.terms.materialityThreshold ?? null;
  if (plan.endVersion && threshold !== null && !c.delta.isZero() && c.delta.abs().greaterThanOrEqualTo(threshold)) {
    out.push(materiality(formatMoney(c.delta, currency), q(threshold), plan.endVersion.version));
  }
  if (c.delta.isNegative() && !c.delta.isZero() && !allowTrueDown) {
    out.push(overBilled(formatMoney(c.total, currency), formatMoney(c.alreadyBilled, currency), formatMoney(c.delta, currency)));
  }
  return out;
}

/** One exception per kind and subject (e.g. the same issued period listed twice). */
export function dedupe(list: RatingException[]): RatingException[] {
  const seen = new Set<string>();
  return list.filter((e) => {
    const key = `${e.kind}\u0000${e.subject}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------
// What each exception says

function missingTerms(from: string, to: string, usage: Record<string, string>): RatingException {
  const used = Object.keys(usage).length > 0 ? `; its usage (${Object.entries(usage).map(([m, q]) => `${m} ${q}`).join(", ")}) is not billed` : "";
  return {
    kind: "missing_terms",
    blocking: isBlocking("missing_terms"),
    subject: `${from}/${to}`,
    message: `No contract version is in force from ${from} to ${to}: that part of the period is not rated${used}.`,
    details: { from, to, usage },
  };
}

function unpricedMetric(
  metric: string,
  quantity: string,
  unmatched: boolean,
  segments: Array<{ from: string; to: string; version: number; quantity: string; reason: string }>,
): RatingException {
  const why = unmatched ? "matches none of its meters' filters" : "has no meter";
  return {
    kind: "unpriced_metric",
    blocking: isBlocking("unpriced_metric"),
    subject: metric,
    message: `Usage of "${metric}" (${quantity}) ${why} in the version in force; it is not billed.`,
    details: { metric, quantity, segments },
  };
}

function usageSpike(details: {
  meterId: string;
  metric: string;
  aggregation: string;
  usage: string;
  average: string;
  spikeFactor: string;
  limit: string;
  priorPeriods: Array<{ start: string; end: string; usage: string }>;
}): RatingException {
  return {
    kind: "usage_spike",
    blocking: isBlocking("usage_spike"),
    subject: details.meterId,
    message:
      `Usage of meter "${details.meterId}" this period (${details.usage}) is more than ${details.spikeFactor} × the average ` +
      `of the ${details.priorPeriods.length} prior period(s) (${details.average}).`,
    details,
  };
}

function sharedEffectiveFrom(effectiveFrom: string, versions: number[], used: number): RatingException {
  return {
    kind: "amendment_conflict",
    blocking: isBlocking("amendment_conflict"),
    subject: versions.join(","),
    message: `Versions ${versions.join(", ")} all take effect at ${effectiveFrom}; the engine used version ${used}.`,
    details: { reason: "shared_effective_from", effectiveFrom, versions, used },
  };
}

function amendmentInsideIssuedPeriod(version: number, effectiveFrom: string, period: { start: string; end: string }): RatingException {
  return {
    kind: "amendment_conflict",
    blocking: isBlocking("amendment_conflict"),
    subject: String(version),
    message:
      `Version ${version} takes effect at ${effectiveFrom}, inside the period [${period.start}, ${period.end}) ` +
      `which already has an issued document.`,
    details: { reason: "inside_issued_period", version, effectiveFrom, issuedPeriod: period },
  };
}

function materiality(delta: string, threshold: string, version: number): RatingException {
  return {
    kind: "materiality",
    blocking: isBlocking("materiality"),
    subject: "",
    message: `The change of ${delta} is at least the materiality threshold of ${threshold} (version ${version}).`,
    details: { delta, threshold, version },
  };
}

function overBilled(total: string, alreadyBilled: string, delta: string): RatingException {
  return {
    kind: "over_billed",
    blocking: isBlocking("over_billed"),
    subject: "",
    message:
      `The period's total ${total} is below the ${alreadyBilled} already billed (delta ${delta}) and the contract ` +
      `does not allow a true-down: nothing is issued.`,
    details: { total, alreadyBilled, delta },
  };
}
