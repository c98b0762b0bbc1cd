// The shape of one rating before any usage is looked at: the contract's versions parsed, the period checked,
// its segments (rule 1), and the windows whose usage the engine needs. usageWindows() and ratePeriod() share
// this code, so the caller is always asked for exactly the sums the engine reads.
import { CANONICAL_JSON_MAX_DEPTH, canonicalJson, deeperThan } from "../canonical-json.js";
import type { ContractTerms, Meter, Pricing } from "../terms.js";
import { Decimal, ZERO, atPrecision, isKnownCurrency, keepText, parseDecimal, toDecimal } from "../money.js";
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
  /** discountPercent ÷ 100, exact: × rate is × percent ÷ 100 digit for digit (÷ 100 only moves the point). */
  discountRate: Decimal;
  cap: Decimal | null;
  /** What the meter's terms come to at one fraction (usage-charges.ts), by the fraction instance. */
  atFraction: WeakMap<Decimal, { included: Decimal; capScaled: Decimal | null }>;
}

export interface CompiledGrant {
  id: string;
  amount: Decimal;
  grantedAtMs: number;
  expiresAtMs: number;
  expiresAt: string;
}

export interface CompiledTerms {
  /** A serial number: what a plan's cache key names the terms by. */
  id: number;
  /** canonicalJson of the terms compiled (the inputsHash writes it); null when they have no canonical form. */
  canonical: string | null;
  meters: CompiledMeter[];
  /** The meters of each metric (several only when their filters are disjoint). */
  metersByMetric: Map<string, CompiledMeter[]>;
  platformFee: Decimal | null;
  commitment: { amount: Decimal; scope: "period" | "term" } | null;
  discountPercent: Decimal;
  /** discountPercent ÷ 100 (see CompiledMeter.discountRate). */
  discountRate: Decimal;
  cap: Decimal | null;
  grants: CompiledGrant[];
  materialityThreshold: Decimal | null;
  spikeFactor: Decimal | null;
}

export interface ParsedVersion {
  version: number;
  effectiveMs: number;
  terms: CompiledTerms;
}

export interface SegmentSpan {
  fromMs: number;
  toMs: number;
  /** windowKey(fromMs, toMs): where the segment's usage is indexed. */
  key: string;
  /** null: no version in force (missing_terms). */
  version: ParsedVersion | null;
  /** (toMs − fromMs) ÷ nominal period length, as a Decimal at full precision. */
  fraction: Decimal;
}

export interface PeriodPlan {
  span: PeriodSpan;
  /** windowKey of the whole period. */
  key: string;
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
  /** Every distinct window of the plan, sorted by start then end. */
  windows: PlanWindow[];
  /** `windows` by key (windowKey). */
  windowsByKey: ReadonlyMap<string, PlanWindow>;
  /** The key of every window of `windows` and `measures`, by its bounds as formatInstant writes them. */
  windowsByText: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Every measure the plan reads, deduplicated, sorted by window then key. */
  measures: MeasureAsk[];
  /** The measure keys of `measures`, by windowKey. */
  measureKeys: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface PlanWindow {
  fromMs: number;
  toMs: number;
  key: string;
  /** fromMs and toMs as ISO instants. */
  from: string;
  to: string;
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

/** A decimal of the terms: compiled once and read by every rating, so its text is kept with it (money.ts). */
function termDec(value: string, path: string): Decimal {
  return keepText(dec(value, path));
}

function discount(discountPercent: Decimal): { discountPercent: Decimal; discountRate: Decimal } {
  // The point moved two places, exactly (the constructor does not round, a division would past 50 digits).
  return { discountPercent, discountRate: new Decimal(`${discountPercent.toFixed()}e-2`) };
}

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
    included: termDec(m.included ?? "0", `${path}.included`),
    pricing: m.pricing,
    price,
    ...discount(termDec(m.discountPercent ?? "0", `${path}.discountPercent`)),
    cap: m.cap ? termDec(m.cap.amount, `${path}.cap.amount`) : null,
    atFraction: new WeakMap(),
  };
}

// Compiled terms, by terms object and by content. A rating compiled every version's terms (Decimals, pricing
// functions, measure keys) each time, though they change far less often than usage: a service compiles the
// same version for usageRequest() and ratePeriod(), a true-up for every period it rates, the tests and the
// bench thousands of times. A version's terms are validated data, never mutated once loaded, so the object
// identifies its content (a WeakMap: nothing is kept for terms no longer used); terms loaded anew (another
// request) are found by their canonical JSON, which the inputsHash needs anyway. Only terms that compiled
// are cached, so every error is raised as before, with its path.
const termsByObject = new WeakMap<object, CompiledTerms>();
const termsByText = new Map<string, CompiledTerms>();
const TERMS_BY_TEXT = 500;
let compiledCount = 0;

function compiledTerms(terms: ContractTerms, path: string): CompiledTerms {
  if (typeof terms !== "object" || terms === null) return compileTerms(terms, path, null);
  const known = termsByObject.get(terms);
  if (known !== undefined) return known;
  let canonical: string | null;
  try {
    canonical = canonicalJson(terms);
    // The inputsHash writes the terms 3 levels deep (input, versions, version): as deep as it can write them.
    if (deeperThan(terms, CANONICAL_JSON_MAX_DEPTH - 3) !== null) canonical = null;
  } catch {
    canonical = null; // not cacheable: compiled each time, and the inputsHash raises what it always has
  }
  let compiled = canonical === null ? undefined : termsByText.get(canonical);
  if (compiled === undefined) {
    compiled = compileTerms(terms, path, canonical);
    if (canonical === null) return compiled;
    if (termsByText.size >= TERMS_BY_TEXT) termsByText.delete(termsByText.keys().next().value as string); // the oldest
    termsByText.set(canonical, compiled);
  }
  termsByObject.set(terms, compiled);
  return compiled;
}

function compileTerms(terms: ContractTerms, path: string, canonical: string | null): CompiledTerms {
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
    id: ++compiledCount,
    canonical,
    meters,
    metersByMetric,
    platformFee: terms.platformFee ? termDec(terms.platformFee.amount, `${path}.platformFee.amount`) : null,
    commitment: terms.commitment
      ? { amount: termDec(terms.commitment.amount, `${path}.commitment.amount`), scope: terms.commitment.scope ?? "period" }
      : null,
    ...discount(termDec(terms.discountPercent ?? "0", `${path}.discountPercent`)),
    cap: terms.cap ? termDec(terms.cap.amount, `${path}.cap.amount`) : null,
    grants: (terms.prepaidCredits ?? []).map((g, i) => {
      const expiresAtMs = instant(g.expiresAt, `${path}.prepaidCredits[${i}].expiresAt`);
      return {
        id: g.id,
        amount: termDec(g.amount, `${path}.prepaidCredits[${i}].amount`),
        grantedAtMs: instant(g.grantedAt, `${path}.prepaidCredits[${i}].grantedAt`),
        expiresAtMs,
        expiresAt: formatInstant(expiresAtMs),
      };
    }),
    materialityThreshold: terms.materialityThreshold ? termDec(terms.materialityThreshold, `${path}.materialityThreshold`) : null,
    spikeFactor: terms.spikeFactor ? termDec(terms.spikeFactor, `${path}.spikeFactor`) : null,
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
      terms: compiledTerms(v.terms, `versions[${i}].terms`),
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
      key: windowKey(fromMs, toMs),
      version: versionInForce(versions, fromMs),
      fraction: keepText(new Decimal(toMs - fromMs).dividedBy(nominalMs)), // plans are cached: so is its text
    });
  }
  return segments;
}

function periodPlan(versions: readonly ParsedVersion[], span: PeriodSpan): PeriodPlan {
  return { span, key: windowKey(span.startMs, span.endMs), segments: segmentsOf(versions, span) };
}

function wrapPeriodError<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PeriodError) throw new RatingInputError(path, e.message);
    throw e;
  }
}

// Plans by what they are made of. A plan depends only on the contract's calendar, currency and rounding mode,
// the versions (number, effectiveFrom, terms) and the period, all of which repeat across the ratings and the
// usageRequest() of a period, while laying it out (periods in the contract's timezone, segments, the windows
// and measures to read) is a good share of a rating. Plans are never changed once made (the ratings only read
// them), so one is shared by every rating with the same key; only plans that were made are kept, so an input
// that is refused is refused every time. Bounded: the oldest plan goes first.
const plans = new Map<string, RatingPlan>();
const PLANS = 1000;

/** The plan's cache key, or null when the input is not one to cache (anything not of the expected types). */
function planKey(input: UsageWindowsInput): string | null {
  const { contract, versions, period } = input;
  if (!contract || typeof contract !== "object" || !Array.isArray(versions) || !period || typeof period !== "object") return null;
  const { currency, roundingMode, billingPeriod, timezone, startDate, endDate } = contract;
  const parts: Array<string | number | null> = [currency, roundingMode, billingPeriod, timezone, startDate, endDate, period.start, period.end];
  for (let i = 0; i < parts.length; i++) if (typeof parts[i] !== "string" && !(i === 5 && parts[i] === null)) return null;
  for (let i = 0; i < versions.length; i++) {
    const v = versions[i];
    if (!v || typeof v.version !== "number" || typeof v.effectiveFrom !== "string") return null;
    let terms: CompiledTerms;
    try {
      terms = compiledTerms(v.terms, `versions[${i}].terms`);
    } catch {
      return null; // planned uncached, which raises the error in its order
    }
    if (terms.canonical === null) return null; // compiled anew each time: nothing to find it by
    parts.push(v.version, v.effectiveFrom, terms.id);
  }
  return JSON.stringify(parts);
}

/** Parses and checks the input, then lays out the periods and segments the rating will read. */
export function planRating(input: UsageWindowsInput): RatingPlan {
  const key = planKey(input);
  const cached = key === null ? undefined : plans.get(key);
  if (cached !== undefined) return cached;
  const plan = planRatingUncached(input);
  if (key !== null) {
    if (plans.size >= PLANS) plans.delete(plans.keys().next().value as string);
    plans.set(key, plan);
  }
  return plan;
}

function planRatingUncached(input: UsageWindowsInput): RatingPlan {
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
  const current = periodPlan(versions, span);
  const endVersion = versionInForce(versions, span.endMs - 1);

  // Spike detection (usage_spike) reads up to 3 prior periods of the term, only when a spike factor applies.
  const priorPeriods: PeriodPlan[] = [];
  if (endVersion?.terms.spikeFactor) {
    for (let i = span.index - 1; i >= 0 && i >= span.index - 3; i--) {
      const prior = periodSpanAt(contract, i);
      if (prior) priorPeriods.push(periodPlan(versions, prior));
    }
  }

  // Term commitment (rule 8): evaluated only in the last period of a term that has an end.
  let termPeriods: PeriodPlan[] | null = null;
  if (endVersion?.terms.commitment?.scope === "term" && isLastPeriodOfTerm(contract, span)) {
    termPeriods = (termPeriodSpans(contract) ?? []).map((s) => (s.index === span.index ? current : periodPlan(versions, s)));
  }
  const plan = { current, endVersion, versions, priorPeriods, termPeriods };
  const windows = planWindows(plan);
  const measures = planMeasures(plan);
  return {
    ...plan,
    windows,
    windowsByKey: new Map(windows.map((w) => [w.key, w])),
    windowsByText: windowsByText([...windows, ...measures]),
    measures,
    measureKeys: measureKeysByWindow(measures),
  };
}

function measureKeysByWindow(measures: readonly MeasureAsk[]): Map<string, Set<string>> {
  const byWindow = new Map<string, Set<string>>();
  for (const a of measures) {
    const window = windowKey(a.fromMs, a.toMs);
    let keys = byWindow.get(window);
    if (keys === undefined) byWindow.set(window, (keys = new Set()));
    keys.add(a.key);
  }
  return byWindow;
}

function windowKey(fromMs: number, toMs: number): string {
  return `${fromMs}|${toMs}`;
}

function windowsByText(windows: ReadonlyArray<{ fromMs: number; toMs: number }>): Map<string, Map<string, string>> {
  const byText = new Map<string, Map<string, string>>();
  for (const w of windows) {
    const from = formatInstant(w.fromMs);
    let byTo = byText.get(from);
    if (byTo === undefined) byText.set(from, (byTo = new Map()));
    byTo.set(formatInstant(w.toMs), windowKey(w.fromMs, w.toMs));
  }
  return byText;
}

type PlanLayout = Pick<RatingPlan, "current" | "endVersion" | "priorPeriods" | "termPeriods">;

/** Every distinct window of the plan, sorted by start then end. */
function planWindows(plan: PlanLayout): PlanWindow[] {
  const windows = new Map<string, PlanWindow>();
  const add = (p: PeriodPlan) => {
    for (const s of p.segments) {
      if (!windows.has(s.key)) windows.set(s.key, { fromMs: s.fromMs, toMs: s.toMs, key: s.key, from: formatInstant(s.fromMs), to: formatInstant(s.toMs) });
    }
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

export interface MeasureAsk {
  fromMs: number;
  toMs: number;
  measure: Measure;
  key: string;
}

/** Every measure the plan reads, deduplicated, sorted by window then key. */
function planMeasures(plan: PlanLayout): MeasureAsk[] {
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
  const { measures } = plan;
  return {
    windows: plan.windows.map((w) => ({ from: w.from, to: w.to })),
    // Copies: the plan's measures are shared by every rating of the period (the plan is cached).
    measures: measures.map((a) => ({ from: formatInstant(a.fromMs), to: formatInstant(a.toMs), measure: { ...a.measure } })),
    looksBack: measures.some((a) => a.measure.aggregation === "latest" || a.measure.aggregation === "time_weighted"),
  };
}

// A rating reads many rows, and refuses one rarely: the paths of its errors ("usage[3].quantity") are written
// only for an error.

function decAt(value: string, list: string, i: number, member: string): Decimal {
  try {
    return toDecimal(value);
  } catch {
    return dec(value, `${list}[${i}]${member}`); // throws, naming the path
  }
}

function instantAt(value: string, list: string, i: number, member: string): number {
  try {
    return parseInstant(value);
  } catch {
    return instant(value, `${list}[${i}]${member}`); // throws, naming the path
  }
}

/** A row's window key: found by its texts when they are the plan's own spelling, else parsed. */
function rowWindow(plan: RatingPlan, row: { from: string; to: string }, list: string, i: number): string {
  const known = plan.windowsByText.get(row.from)?.get(row.to);
  if (known !== undefined) return known;
  return windowKey(instantAt(row.from, list, i, ".from"), instantAt(row.to, list, i, ".to"));
}

/** Usage sums by window, then metric. */
export type UsageIndex = Map<string, Map<string, Decimal>>;

/**
 * 0 + quantity, without the addition: 0 for any zero, else the quantity at the precision, which is the parsed
 * instance itself unless it has more digits.
 */
function firstSum(quantity: Decimal): Decimal {
  return quantity.isZero() ? ZERO : atPrecision(quantity);
}

// The usage sums of the plan's last rating, by text. A period rated again on the same usage (a preview and
// its issue, a re-run) reads the same instances, which what was kept from them is checked against (memo.ts);
// kept here, one rating's worth per plan, rather than in toDecimal's shared cache: usage that changes on
// every rating filled that with thousands of texts never read again, and lookups in a large map cost more
// than the parse.
const lastQuantities = new WeakMap<RatingPlan, Map<string, Decimal>>();

/** Indexes the caller's usage sums by window; rows for windows the plan does not read are ignored, duplicates add up. */
export function indexUsage(rows: readonly UsageAggregate[], plan: RatingPlan): UsageIndex {
  if (!Array.isArray(rows)) throw new RatingInputError("usage", "must be an array");
  const windows = plan.windowsByKey;
  const index: UsageIndex = new Map();
  const last = lastQuantities.get(plan);
  const read = new Map<string, Decimal>(); // this rating's texts, for the next
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as UsageAggregate;
    if (row === undefined && !(i in rows)) continue; // a hole in a sparse array is no row
    const key = rowWindow(plan, row, "usage", i);
    const text = row.quantity;
    const quantity = (typeof text === "string" ? last?.get(text) : undefined) ?? quantityAt(text, i);
    if (typeof text === "string") read.set(text, quantity);
    if (typeof row.metric !== "string" || row.metric === "") throw new RatingInputError(`usage[${i}].metric`, "is required");
    if (!windows.has(key)) continue;
    let byMetric = index.get(key);
    if (!byMetric) index.set(key, (byMetric = new Map()));
    const prior = byMetric.get(row.metric);
    byMetric.set(row.metric, prior === undefined ? firstSum(quantity) : prior.plus(quantity));
  }
  lastQuantities.set(plan, read);
  return index;
}

/** A usage row's quantity parsed (a new instance, not toDecimal's shared one). */
function quantityAt(value: string, i: number): Decimal {
  if (typeof value === "string") {
    try {
      return parseDecimal(value);
    } catch {
      // throws below, naming the path
    }
  }
  return decAt(value, "usage", i, ".quantity");
}

const NO_USAGE: ReadonlyMap<string, Decimal> = new Map();

export function usageOf(index: UsageIndex, s: SegmentSpan): ReadonlyMap<string, Decimal> {
  return index.get(s.key) ?? NO_USAGE;
}

/** Measured figures by window, then measure key. */
export type MeasuredIndex = Map<string, Map<string, Decimal>>;

/** Indexes the caller's measured figures; figures the plan does not ask for are ignored, a duplicate is refused. */
export function indexMeasured(rows: readonly MeasuredUsage[] | undefined, plan: RatingPlan): MeasuredIndex {
  const index: MeasuredIndex = new Map();
  if (rows === undefined) return index;
  if (!Array.isArray(rows)) throw new RatingInputError("measured", "must be an array");
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as MeasuredUsage;
    if (row === undefined && !(i in rows)) continue; // a hole in a sparse array is no row
    const window = rowWindow(plan, row, "measured", i);
    const value = decAt(row.value, "measured", i, ".value");
    const key = measureKey(row.measure);
    if (plan.measureKeys.get(window)?.has(key) !== true) continue;
    let byKey = index.get(window);
    if (!byKey) index.set(window, (byKey = new Map()));
    if (byKey.has(key)) throw new RatingInputError(`measured[${i}]`, "gives a figure twice for one window and measure");
    byKey.set(key, value);
  }
  return index;
}

/** A measure's figure over a window (its windowKey): the metric's sum for an unfiltered sum, else the measured figure (0 when absent). */
export function figureOf(usage: UsageIndex, measured: MeasuredIndex, window: string, measure: Measure, key: string): Decimal {
  if (isPlainSum(measure)) return usage.get(window)?.get(measure.metric) ?? ZERO;
  return measured.get(window)?.get(key) ?? ZERO;
}
