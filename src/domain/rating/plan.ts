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
import { pricingFor, type PricingFunction } from "./pricing.js";
import { RatingInputError, type ContractVersion, type UsageAggregate, type UsageWindow, type UsageWindowsInput } from "./types.js";

export interface CompiledMeter {
  metric: string;
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
  meterByMetric: Map<string, CompiledMeter>;
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
  return {
    metric: m.metric,
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
  const meterByMetric = new Map<string, CompiledMeter>();
  for (const m of meters) {
    if (meterByMetric.has(m.metric)) throw new RatingInputError(`${path}.meters`, `metric "${m.metric}" appears twice`);
    meterByMetric.set(m.metric, m);
  }
  return {
    meters,
    meterByMetric,
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
 * The windows [from, to) whose per-metric usage sums ratePeriod() needs: every segment of the period, every
 * segment of up to 3 prior periods of the term when the version in force at the period's end has a
 * spikeFactor, and every segment of every period of the term when a term commitment is evaluated (the
 * term's last period). The caller runs one sum per window, grouped by metric, and passes them as `usage`.
 */
export function usageWindows(input: UsageWindowsInput): UsageWindow[] {
  return planWindows(planRating(input)).map((w) => ({ from: formatInstant(w.fromMs), to: formatInstant(w.toMs) }));
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
