// The shape of one rating before any usage is looked at: the contract's versions parsed, the period checked,
// its segments (rule 1), and the windows whose usage the engine needs. usageWindows() and ratePeriod() share
// this code, so the caller is always asked for exactly the sums the engine reads.
import type { ContractTerms, Meter, Pricing } from "../terms.js";
import { Decimal, ZERO, isKnownCurrency, toDecimal } from "../money.js";
import {
  PeriodError,
  type PeriodSpan,
  formatInstant,
  isLastPeriodOfTerm,
  parseInstant,
  periodSpanAt,
  periodSpanContaining,
  termPeriodSpans,
} from "../periods.js";
import { type Measure, type MeasuredUsage, filteredSumOf, isLevel, isPlainSum, measureKey, measureOf } from "./measures.js";
import { pricingFor, type PricingFunction } from "./pricing.js";
import { RatingInputError, type ContractVersion, type UsageAggregate, type UsageRequest, type UsageWindow, type UsageWindowsInput } from "./types.js";

export interface CompiledMeter {
  /** The meter's id (its metric when it has none). */
  id: string;
  metric: string;
  measure: Measure;
  /** measureKey(measure). */
  key: string;
  /** A level aggregation (max, latest, unique_count, time_weighted): included units and tier bounds are not prorated. */
  level: boolean;
  /** A filtered meter's filtered sum and its key (unpriced usage is the metric's sum minus these); null unfiltered. */
  filteredSum: { measure: Measure; key: string } | null;
  unit: string | undefined;
  included: Decimal;
  pricing: Pricing;
  price: PricingFunction;
  discountPercent: Decimal;
  cap: Decimal | null;
}

export interface CompiledGrant {
  id: string;
  amount: Decimal;
  grantedAtMs: number;
  expiresAtMs: number;
  expiresAt: string;
}

export interface CompiledTerms {
  meters: CompiledMeter[];
  /** The meters of each metric (several only when their filters are disjoint). */
  metersByMetric: Map<string, CompiledMeter[]>;
  platformFee: Decimal | null;
  commitment: { amount: Decimal; scope: "period" | "term" } | null;
  discountPercent: Decimal;
  cap: Decimal | null;
  grants: CompiledGrant[];
  materialityThreshold: Decimal | null;
  spikeFactor: Decimal | null;
}

export interface ParsedVersion {
  version: number;
  effectiveMs: number;
  source: ContractVersion;
  terms: CompiledTerms;
}

export interface SegmentSpan {
  fromMs: number;
  toMs: number;
  /** null: no version in force (missing_terms). */
  version: ParsedVersion | null;
  /** (toMs − fromMs) ÷ nominal period length, as a Decimal at full precision. */
  fraction: Decimal;
}

export interface PeriodPlan {
  span: PeriodSpan;
  segments: SegmentSpan[];
}

export interface RatingPlan {
  /** The period being rated. */
  current: PeriodPlan;
  /** The version in force at the end of the period (the last instant before `end`), if any. */
  endVersion: ParsedVersion | null;
  /** Versions sorted by effectiveFrom, then version number. */
  versions: ParsedVersion[];
  /** Up to 3 prior periods of the term, most recent first, when a spike check applies; else []. */
  priorPeriods: PeriodPlan[];
  /** Every period of the term when this is the term's last period and a term commitment is evaluated. */
  termPeriods: PeriodPlan[] | null;
}

function dec(value: string, path: string): Decimal {
  try {
    return toDecimal(value, path);
  } catch (e) {
    throw new RatingInputError(path, (e as Error).message);
  }
}

function instant(value: string, path: string): number {
  try {
    return parseInstant(value, path);
  } catch (e) {
    throw new RatingInputError(path, (e as Error).message);
  }
}

export { dec as parseDecimalInput, instant as parseInstantInput };

function compileMeter(m: Meter, path: string): CompiledMeter {
  let price: PricingFunction;
  try {
    price = pricingFor(m.pricing);
  } catch (e) {
    throw new RatingInputError(`${path}.pricing`, (e as Error).message);
  }
  const measure = measureOf(m);
  const filteredSum = measure.filter === null ? null : filteredSumOf(measure);
  return {
    id: m.id ?? m.metric,
    metric: m.metric,
    measure,
    key: measureKey(measure),
    level: isLevel(measure.aggregation),
    filteredSum: filteredSum === null ? null : { measure: filteredSum, key: measureKey(filteredSum) },
    unit: m.unit,
    included: dec(m.included ?? "0", `${path}.included`),
    pricing: m.pricing,
    price,
    discountPercent: dec(m.discountPercent ?? "0", `${path}.discountPercent`),
    cap: m.cap ? dec(m.cap.amount, `${path}.cap.amount`) : null,
  };
}

function compileTerms(terms: ContractTerms, path: string): CompiledTerms {
  if (!terms || !Array.isArray(terms.meters)) throw new RatingInputError(`${path}.meters`, "is required");
  const meters = terms.meters.map((m, i) => compileMeter(m, `${path}.meters[${i}]`));
  const metersByMetric = new Map<string, CompiledMeter[]>();
  const ids = new Set<string>();
  for (const m of meters) {
    if (ids.has(m.id)) throw new RatingInputError(`${path}.meters`, `meter id "${m.id}" appears twice`);
    ids.add(m.id);
    metersByMetric.set(m.metric, [...(metersByMetric.get(m.metric) ?? []), m]);
  }
  return {
    meters,
    metersByMetric,
    platformFee: terms.platformFee ? dec(terms.platformFee.amount, `${path}.platformFee.amount`) : null,
    commitment: terms.commitment
      ? { amount: dec(terms.commitment.amount, `${path}.commitment.amount`), scope: terms.commitment.scope ?? "period" }
      : null,
    discountPercent: dec(terms.discountPercent ?? "0", `${path}.discountPercent`),
    cap: terms.cap ? dec(terms.cap.amount, `${path}.cap.amount`) : null,
    grants: (terms.prepaidCredits ?? []).map((g, i) => {
      const expiresAtMs = instant(g.expiresAt, `${path}.prepaidCredits[${i}].expiresAt`);
      return {
        id: g.id,
        amount: dec(g.amount, `${path}.prepaidCredits[${i}].amount`),
        grantedAtMs: instant(g.grantedAt, `${path}.prepaidCredits[${i}].grantedAt`),
        expiresAtMs,
        expiresAt: formatInstant(expiresAtMs),
      };
    }),
    materialityThreshold: terms.materialityThreshold ? dec(terms.materialityThreshold, `${path}.materialityThreshold`) : null,
    spikeFactor: terms.spikeFactor ? dec(terms.spikeFactor, `${path}.spikeFactor`) : null,
  };
}

function parseVersions(versions: readonly ContractVersion[]): ParsedVersion[] {
  if (!Array.isArray(versions)) throw new RatingInputError("versions", "must be an array");
  const seen = new Set<number>();
  const parsed = versions.map((v, i) => {
    if (!Number.isInteger(v.version) || v.version < 1) throw new RatingInputError(`versions[${i}].version`, "must be a positive integer");
    if (seen.has(v.version)) throw new RatingInputError(`versions[${i}].version`, `version ${v.version} appears twice`);
    seen.add(v.version);
    return {
      version: v.version,
      effectiveMs: instant(v.effectiveFrom, `versions[${i}].effectiveFrom`),
      source: v,
      terms: compileTerms(v.terms, `versions[${i}].terms`),
    };
  });
  // Sorted by effectiveFrom, then version number: the version in force at an instant is the last one whose
  // effectiveFrom is at or before it (so of two versions sharing an effectiveFrom, the higher number wins;
  // amendment_conflict flags the tie).
  return parsed.sort((a, b) => a.effectiveMs - b.effectiveMs || a.version - b.version);
}

function versionInForce(versions: readonly ParsedVersion[], ms: number): ParsedVersion | null {
  let found: ParsedVersion | null = null;
  for (const v of versions) {
    if (v.effectiveMs <= ms) found = v;
    else break;
  }
  return found;
}

/**
 * Rule 1 — Segments. Split the period at every version effectiveFrom strictly inside it; each segment is rated
 * with the version in force at its start. fraction = segment ms ÷ NOMINAL period ms (a period clipped by the
 * term end is prorated like a mid-period amendment), a Decimal at 50 significant digits, never rounded.
 */
function segmentsOf(versions: readonly ParsedVersion[], span: PeriodSpan): SegmentSpan[] {
  const nominalMs = new Decimal(span.nominalEndMs - span.startMs);
  const cuts = [span.startMs];
  for (const v of versions) {
    if (v.effectiveMs > span.startMs && v.effectiveMs < span.endMs && v.effectiveMs !== cuts[cuts.length - 1]) cuts.push(v.effectiveMs);
  }
  cuts.push(span.endMs);
  const segments: SegmentSpan[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const fromMs = cuts[i] as number;
    const toMs = cuts[i + 1] as number;
    segments.push({
      fromMs,
      toMs,
      version: versionInForce(versions, fromMs),
      fraction: new Decimal(toMs - fromMs).dividedBy(nominalMs),
    });
  }
  return segments;
}

function wrapPeriodError<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PeriodError) throw new RatingInputError(path, e.message);
    throw e;
  }
}

/** Parses and checks the input, then lays out the periods and segments the rating will read. */
export function planRating(input: UsageWindowsInput): RatingPlan {
  const { contract } = input;
  if (!contract || typeof contract !== "object") throw new RatingInputError("contract", "is required");
  if (!isKnownCurrency(contract.currency)) throw new RatingInputError("contract.currency", `unknown ISO 4217 currency "${contract.currency}"`);
  if (contract.roundingMode !== "half_up" && contract.roundingMode !== "half_even") {
    throw new RatingInputError("contract.roundingMode", "must be half_up or half_even");
  }
  if (!["monthly", "quarterly", "annual"].includes(contract.billingPeriod)) {
    throw new RatingInputError("contract.billingPeriod", "must be monthly, quarterly or annual");
  }
  const versions = parseVersions(input.versions);
  const startMs = instant(input.period?.start, "period.start");
  const endMs = instant(input.period?.end, "period.end");
  const span = wrapPeriodError("contract", () => periodSpanContaining(contract, startMs));
  if (span === null || span.startMs !== startMs || span.endMs !== endMs) {
    const hint = span ? ` (the period containing period.start is [${formatInstant(span.startMs)}, ${formatInstant(span.endMs)}))` : "";
    throw new RatingInputError("period", `is not a billing period of the contract${hint}`);
  }
  const current: PeriodPlan = { span, segments: segmentsOf(versions, span) };
  const endVersion = versionInForce(versions, span.endMs - 1);

  // Spike detection (usage_spike) reads up to 3 prior periods of the term, only when a spike factor applies.
  const priorPeriods: PeriodPlan[] = [];
  if (endVersion?.terms.spikeFactor) {
    for (let i = span.index - 1; i >= 0 && i >= span.index - 3; i--) {
      const prior = periodSpanAt(contract, i);
      if (prior) priorPeriods.push({ span: prior, segments: segmentsOf(versions, prior) });
    }
  }

  // Term commitment (rule 8): evaluated only in the last period of a term that has an end.
  let termPeriods: PeriodPlan[] | null = null;
  if (endVersion?.terms.commitment?.scope === "term" && isLastPeriodOfTerm(contract, span)) {
    termPeriods = (termPeriodSpans(contract) ?? []).map((s) => (s.index === span.index ? current : { span: s, segments: segmentsOf(versions, s) }));
  }
  return { current, endVersion, versions, priorPeriods, termPeriods };
}

function windowKey(fromMs: number, toMs: number): string {
  return `${fromMs}|${toMs}`;
}

/** Every distinct window of the plan, sorted by start then end. */
function planWindows(plan: RatingPlan): Array<{ fromMs: number; toMs: number }> {
  const windows = new Map<string, { fromMs: number; toMs: number }>();
  const add = (p: PeriodPlan) => {
    for (const s of p.segments) windows.set(windowKey(s.fromMs, s.toMs), { fromMs: s.fromMs, toMs: s.toMs });
  };
  add(plan.current);
  plan.priorPeriods.forEach(add);
  plan.termPeriods?.forEach(add);
  return [...windows.values()].sort((a, b) => a.fromMs - b.fromMs || a.toMs - b.toMs);
}

/**
 * What ratePeriod() reads, so the caller fetches exactly that:
 *  - `windows`: per-metric sums of every segment of the period, of up to 3 prior periods of the term when the
 *    version in force at the period's end has a spikeFactor, and of every period of the term when a term
 *    commitment is evaluated (the term's last period);
 *  - `measures`: the figure of every meter that is not an unfiltered sum (MeasuredUsage) in each of those
 *    segments, the filtered sum of every filtered meter in the period's segments (usage matching no filter is
 *    unpriced: the metric's sum minus its meters'), and for the spike check each meter of the version at the
 *    period's end over the whole current and prior periods.
 */
export function usageRequest(input: UsageWindowsInput): UsageRequest {
  return planRequest(planRating(input));
}

/** The windows whose per-metric sums the engine reads (usageRequest().windows). */
export function usageWindows(input: UsageWindowsInput): UsageWindow[] {
  return usageRequest(input).windows;
}

interface MeasureAsk {
  fromMs: number;
  toMs: number;
  measure: Measure;
  key: string;
}

/** Every measure the plan reads, deduplicated, sorted by window then key. */
function planMeasures(plan: RatingPlan): MeasureAsk[] {
  const asks = new Map<string, MeasureAsk>();
  const ask = (fromMs: number, toMs: number, measure: Measure, key: string) => {
    if (isPlainSum(measure)) return;
    asks.set(`${windowKey(fromMs, toMs)}|${key}`, { fromMs, toMs, measure, key });
  };
  const segmentMeters = (p: PeriodPlan, withFilteredSums: boolean) => {
    for (const s of p.segments) {
      for (const m of s.version?.terms.meters ?? []) {
        ask(s.fromMs, s.toMs, m.measure, m.key);
        if (withFilteredSums && m.filteredSum !== null) ask(s.fromMs, s.toMs, m.filteredSum.measure, m.filteredSum.key);
      }
    }
  };
  segmentMeters(plan.current, true);
  plan.termPeriods?.forEach((p) => segmentMeters(p, false));
  if (plan.priorPeriods.length > 0) {
    for (const m of plan.endVersion?.terms.meters ?? []) {
      for (const p of [plan.current, ...plan.priorPeriods]) ask(p.span.startMs, p.span.endMs, m.measure, m.key);
    }
  }
  return [...asks.values()].sort((a, b) => a.fromMs - b.fromMs || a.toMs - b.toMs || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function planRequest(plan: RatingPlan): UsageRequest {
  const measures = planMeasures(plan);
  return {
    windows: planWindows(plan).map((w) => ({ from: formatInstant(w.fromMs), to: formatInstant(w.toMs) })),
    measures: measures.map((a) => ({ from: formatInstant(a.fromMs), to: formatInstant(a.toMs), measure: a.measure })),
    looksBack: measures.some((a) => a.measure.aggregation === "latest" || a.measure.aggregation === "time_weighted"),
  };
}

/** Usage sums by window, then metric. */
export type UsageIndex = Map<string, Map<string, Decimal>>;

/** Indexes the caller's usage sums by window; rows for windows the plan does not read are ignored, duplicates add up. */
export function indexUsage(rows: readonly UsageAggregate[], plan: RatingPlan): UsageIndex {
  if (!Array.isArray(rows)) throw new RatingInputError("usage", "must be an array");
  const windows = new Set(planWindows(plan).map((w) => windowKey(w.fromMs, w.toMs)));
  const index: UsageIndex = new Map();
  rows.forEach((row, i) => {
    const key = windowKey(instant(row.from, `usage[${i}].from`), instant(row.to, `usage[${i}].to`));
    const quantity = dec(row.quantity, `usage[${i}].quantity`);
    if (typeof row.metric !== "string" || row.metric === "") throw new RatingInputError(`usage[${i}].metric`, "is required");
    if (!windows.has(key)) return;
    let byMetric = index.get(key);
    if (!byMetric) index.set(key, (byMetric = new Map()));
    byMetric.set(row.metric, (byMetric.get(row.metric) ?? ZERO).plus(quantity));
  });
  return index;
}

const NO_USAGE: ReadonlyMap<string, Decimal> = new Map();

export function usageOf(index: UsageIndex, s: SegmentSpan): ReadonlyMap<string, Decimal> {
  return index.get(windowKey(s.fromMs, s.toMs)) ?? NO_USAGE;
}

/** Measured figures by window, then measure key. */
export type MeasuredIndex = Map<string, Map<string, Decimal>>;

/** Indexes the caller's measured figures; figures the plan does not ask for are ignored, a duplicate is refused. */
export function indexMeasured(rows: readonly MeasuredUsage[] | undefined, plan: RatingPlan): MeasuredIndex {
  const index: MeasuredIndex = new Map();
  if (rows === undefined) return index;
  if (!Array.isArray(rows)) throw new RatingInputError("measured", "must be an array");
  const wanted = new Set(planMeasures(plan).map((a) => `${windowKey(a.fromMs, a.toMs)}|${a.key}`));
  rows.forEach((row, i) => {
    const window = windowKey(instant(row.from, `measured[${i}].from`), instant(row.to, `measured[${i}].to`));
    const value = dec(row.value, `measured[${i}].value`);
    const key = measureKey(row.measure);
    if (!wanted.has(`${window}|${key}`)) return;
    let byKey = index.get(window);
    if (!byKey) index.set(window, (byKey = new Map()));
    if (byKey.has(key)) throw new RatingInputError(`measured[${i}]`, "gives a figure twice for one window and measure");
    byKey.set(key, value);
  });
  return index;
}

/** A measure's figure over [fromMs, toMs): the metric's sum for an unfiltered sum, else the measured figure (0 when absent). */
export function figureOf(usage: UsageIndex, measured: MeasuredIndex, fromMs: number, toMs: number, measure: Measure, key: string): Decimal {
  const window = windowKey(fromMs, toMs);
  if (isPlainSum(measure)) return usage.get(window)?.get(measure.metric) ?? ZERO;
  return measured.get(window)?.get(key) ?? ZERO;
}
