// Builders for rating inputs in domain tests (no database): terms go through the real zod schema, so
// defaults are applied exactly as for the API.
import {
  ContractTerms,
  aggregateEvents,
  periodContaining,
  ratePeriod,
  usageRequest,
  usageWindows,
  type ContractTermsInput,
  type ContractVersion,
  type CreditAmount,
  type CreditBalance,
  type MeasuredUsage,
  type PeriodRef,
  type PlainEvent,
  type RatingContract,
  type RatingInput,
  type RatingResult,
  type UsageAggregate,
} from "../../src/domain/index.js";

export const baseContract: RatingContract = {
  id: "contract-1",
  currency: "USD",
  timezone: "UTC",
  billingPeriod: "monthly",
  startDate: "2026-01-01",
  endDate: null,
  roundingMode: "half_up",
  allowTrueDown: false,
};

export function terms(input: ContractTermsInput): ContractTerms {
  return ContractTerms.parse(input);
}

export const perUnit = (metric: string, unitPrice: string, extra: Record<string, unknown> = {}) => ({
  metric,
  pricing: { model: "per_unit" as const, unitPrice },
  ...extra,
});

export interface Spec {
  contract?: Partial<RatingContract>;
  /** Versions in order; numbered 1..n. `from` defaults to 2026-01-01T00:00:00Z. */
  versions: Array<{ from?: string; terms: ContractTermsInput; version?: number }>;
  /** Start of the period to rate (default: the contract's first period). */
  period?: string;
  /** Usage of the period: one record for a single-segment period, or one per segment. */
  usage?: Record<string, string> | Array<Record<string, string>>;
  /** Usage of other periods, keyed by the period's start: put in the first window of that period. */
  otherUsage?: Record<string, Record<string, string>>;
  alreadyBilled?: string;
  creditBalances?: CreditBalance[];
  previousCreditsApplied?: CreditAmount[];
  issuedPeriods?: PeriodRef[];
}

export function buildInput(spec: Spec): RatingInput {
  const contract = { ...baseContract, ...spec.contract };
  const versions: ContractVersion[] = spec.versions.map((v, i) => ({
    version: v.version ?? i + 1,
    effectiveFrom: v.from ?? "2026-01-01T00:00:00Z",
    signedAt: "2025-12-01T00:00:00Z",
    kind: i === 0 ? "original" : "amendment",
    reason: i === 0 ? "signed" : `amendment ${i}`,
    terms: terms(v.terms),
  }));
  const containing = periodContaining(contract, spec.period ?? versions[0]?.effectiveFrom ?? "2026-01-01T00:00:00Z");
  if (!containing) throw new Error("no period");
  const period = { start: containing.start, end: containing.end };
  const windows = usageWindows({ contract, versions, period });
  const usage: UsageAggregate[] = [];
  const current = windows.filter((w) => w.from >= period.start && w.to <= period.end);
  const perSegment = spec.usage === undefined ? [] : Array.isArray(spec.usage) ? spec.usage : [spec.usage];
  if (!Array.isArray(spec.usage) && spec.usage !== undefined && current.length !== 1) {
    throw new Error(`the period has ${current.length} segments: give usage per segment`);
  }
  perSegment.forEach((record, i) => {
    const w = current[i];
    if (!w) throw new Error(`no segment ${i}`);
    for (const [metric, quantity] of Object.entries(record)) usage.push({ from: w.from, to: w.to, metric, quantity });
  });
  for (const [start, record] of Object.entries(spec.otherUsage ?? {})) {
    const iso = new Date(start).toISOString();
    const w = windows.find((x) => x.from === iso);
    if (!w) throw new Error(`no window starting at ${iso}: ${JSON.stringify(windows)}`);
    for (const [metric, quantity] of Object.entries(record)) usage.push({ from: w.from, to: w.to, metric, quantity });
  }
  return {
    contract,
    versions,
    period,
    usage,
    alreadyBilled: spec.alreadyBilled ?? "0",
    creditBalances: spec.creditBalances ?? [],
    previousCreditsApplied: spec.previousCreditsApplied ?? [],
    issuedPeriods: spec.issuedPeriods ?? [],
  };
}

export function rate(spec: Spec): RatingResult {
  return ratePeriod(buildInput(spec));
}

/** "kind[ metric] amount" per line, the compact form the tables compare. */
export function lineSummary(r: RatingResult): string[] {
  return r.lines.map((l) => `${l.kind}${l.metric ? ` ${l.metric}` : ""}${l.grantId ? ` ${l.grantId}` : ""} ${l.amount}`);
}

// ---- feeding the engine from plain events (meter tests) ------------------------------------------------

/** A plain event of one metric. */
export interface MetricEvent extends PlainEvent {
  metric: string;
}

/**
 * What usageRequest() asks for, computed from events by the reference definition: per-metric sums (every
 * non-voided event of the metric, unfiltered) of each window, and each measure's figure over its window —
 * aggregateEvents() gives the usage; a time_weighted figure is that usage × the window's seconds (Σ level ×
 * seconds), which the engine divides back by the window's seconds.
 */
export function figuresFromEvents(
  input: Pick<RatingInput, "contract" | "versions" | "period">,
  events: readonly MetricEvent[],
): { usage: UsageAggregate[]; measured: MeasuredUsage[] } {
  const request = usageRequest(input);
  const byMetric = new Map<string, MetricEvent[]>();
  for (const e of events) byMetric.set(e.metric, [...(byMetric.get(e.metric) ?? []), e]);
  const metrics = [...byMetric.keys()].sort();
  const usage: UsageAggregate[] = request.windows.flatMap((w) => {
    const fromMs = Date.parse(w.from);
    const toMs = Date.parse(w.to);
    return metrics.map((metric) => ({
      from: w.from,
      to: w.to,
      metric,
      quantity: aggregateEvents({ metric, aggregation: "sum", filter: null, uniqueBy: null }, byMetric.get(metric) ?? [], fromMs, toMs).toFixed(),
    }));
  });
  const measured: MeasuredUsage[] = request.measures.map(({ from, to, measure }) => {
    const fromMs = Date.parse(from);
    const toMs = Date.parse(to);
    const used = aggregateEvents(measure, byMetric.get(measure.metric) ?? [], fromMs, toMs);
    const value = measure.aggregation === "time_weighted" ? used.times(toMs - fromMs).dividedBy(1000) : used;
    return { from, to, measure, value: value.toFixed() };
  });
  return { usage, measured };
}

/** The rating input of `spec` with its usage and measured figures taken from `events`. */
export function inputFromEvents(spec: Spec, events: readonly MetricEvent[]): RatingInput {
  const base = buildInput({ ...spec, usage: undefined, otherUsage: undefined });
  return { ...base, ...figuresFromEvents(base, events) };
}
