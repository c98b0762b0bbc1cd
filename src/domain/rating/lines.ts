// The lines of rules 2–7 (docs/rating.md), unrounded, each with its explanation: per segment, in document
// order, the platform fee, one usage line per meter, the contract discount and the contract cap.
import { type Decimal, type RoundingMode, ZERO, formatDecimal as q } from "../money.js";
import { formatInstant } from "../periods.js";
import { moneyText, percentText, quantityText as qt, quantityTextOf, shareText, spanText, timesShare } from "./describe.js";
import type { Filter, Measure } from "./measures.js";
import { KeptByInputs } from "./memo.js";
import type { CompiledMeter, CompiledTerms, SegmentSpan } from "./plan.js";
import type { PriceResult, TierCharge } from "./pricing.js";
import type { Line, LineSegment, TierExplanation } from "./types.js";
import type { MeterCharge, PeriodCharges, SegmentCharges } from "./usage-charges.js";

/** A line before rule 9 rounds it: its exact amount and everything else it carries. */
export interface LineDraft {
  line: Omit<Line, "amount" | "unroundedAmount">;
  exact: Decimal;
  /** Where rule 8 keeps what it made of `exact`, for the next rating of the same draft (segmentLines). */
  rounding?: { kept: RoundedExact | null };
}

/** `exact` rounded with a currency and mode (rule 8), and the texts of both. */
export interface RoundedExact {
  currency: string;
  mode: RoundingMode;
  amount: Decimal;
  text: string;
  unrounded: string;
}

/** How a line's words are written: the contract's currency and timezone, and the nominal period length. */
export interface Wording {
  currency: string;
  timezone: string;
  nominalMs: number;
}

/** What every line of one segment says about the segment. */
interface SegmentFacts {
  segment: LineSegment;
  fraction: string;
  /** The segment's share of the nominal period in words, null for the whole period. */
  share: string | null;
  /** "v1, Jan 1–Feb 9, 2026". */
  where: string;
  /** The words of each meter's line in the segment (meterWords), kept with the segment's facts. */
  meterWords: Map<CompiledMeter, MeterWords>;
}

/**
 * What a meter's usage line says in a segment whatever the usage: its terms, and terms × fraction, in words,
 * as the pieces of its description between this rating's figures (usageLine).
 */
interface MeterWords {
  /** "api_calls: ". */
  name: string;
  /** " used − 1,000 included = ", " used − 322.580645… included (1,000 × 10 of 31 days) = ". */
  included: string;
  /** After the model's name in a tiered price: " (tier bounds and flat fees × 10 of 31 days)", or nothing. */
  scaled: string;
  /** After the price: " × 10 of 31 days" for a level in part of the period, then " = ". */
  equals: string;
  /** "; meter discount 5% −". */
  discount: string;
  /** "; meter cap 50,000.00 × 15 of 30 days = 25,000.00: −" (null without a cap). */
  cap: string | null;
  /** Per tier: its explanation but the units and amount, "tier 2 ", and its price as described (" × 0.01 + 50.00"). */
  tiers: Array<{ row: Omit<TierExplanation, "units" | "amount">; label: string; priced: string }> | undefined;
}

/** Rules 2–7 as lines: per segment platform fee, usage, contract discount, contract cap. */
export function segmentLines(charges: PeriodCharges, w: Wording): LineDraft[] {
  const drafts: LineDraft[] = [];
  for (const c of charges.segments) {
    if (c.segment.version === null) continue;
    const known = chargeDrafts(c, w);
    // The lines are the caller's (rule 8 completes them, the result hands them out): copies of the drafts,
    // the lines of a segment sharing one new LineSegment.
    const segment = { ...known.segment };
    for (const d of known.drafts) {
      const line = { ...d.line, segment };
      if (line.tiers !== undefined) line.tiers = line.tiers.map((t) => ({ ...t }));
      drafts.push({ exact: d.exact, line, rounding: d.rounding });
    }
  }
  return drafts;
}

// The drafts of a segment's charges, kept by segment with the charges and wording they were written from
// (memo.ts): a segment's charges are the same object for the same figures (usage-charges.ts), and their lines
// are most of a rating's formatting. (Kept by the segment, a long-lived key, rather than by the charges: a
// weak map keyed by short-lived objects is costly to collect.)
const keptDrafts = new KeptByInputs<SegmentSpan, { segment: LineSegment; drafts: LineDraft[] }>();

function chargeDrafts(c: SegmentCharges, w: Wording): { segment: LineSegment; drafts: LineDraft[] } {
  return keptDrafts.get(c.segment, [c, w.currency, w.timezone, w.nominalMs], () => writeDrafts(c, w));
}

function writeDrafts(c: SegmentCharges, w: Wording): { segment: LineSegment; drafts: LineDraft[] } {
  const s = c.segment;
  const terms = (s.version as NonNullable<SegmentSpan["version"]>).terms;
  const facts = segmentFacts(s, w);
  const drafts: LineDraft[] = [];
  for (const m of c.meters) drafts.push(usageLine(m, facts, w));
  if (!c.contractDiscount.isZero()) drafts.push(contractDiscountLine(c, terms, facts, w));
  if (!c.contractCapped.isZero()) drafts.push(contractCapLine(c, terms, facts, w));
  for (const d of drafts) d.rounding = { kept: null };
  const fee = terms.platformFee;
  if (fee !== null) {
    const inputs = [fee, s.fraction, w.currency, w.timezone, w.nominalMs];
    drafts.unshift(keptFees.get(s, inputs, () => ({ ...platformFeeLine(fee, s.fraction, facts, w), rounding: { kept: null } })));
  }
  return { segment: facts.segment, drafts };
}

// A segment's platform fee line depends on its terms and wording alone, not on the usage: kept by segment
// (memo.ts), with its rounding, for every rating of the segment.
const keptFees = new KeptByInputs<SegmentSpan, LineDraft>();

// A segment's words, by segment: plans are cached (plan.ts), so every rating of a period describes the same
// segment objects, and their dates in the timezone, share in whole units and what each meter's terms come to
// in the segment are the same each time (the currency is the plan's too). Checked against the wording they
// were written with; the LineSegment is a new object for every rating.
const factsBySegment = new WeakMap<SegmentSpan, { timezone: string; nominalMs: number; facts: SegmentFacts }>();

function segmentFacts(s: SegmentSpan, w: Wording): SegmentFacts {
  let known = factsBySegment.get(s);
  if (known === undefined || known.timezone !== w.timezone || known.nominalMs !== w.nominalMs) {
    const facts = { segment: lineSegment(s), fraction: q(s.fraction), share: segmentShare(s, w), where: segmentText(s, w), meterWords: new Map() };
    known = { timezone: w.timezone, nominalMs: w.nominalMs, facts };
    factsBySegment.set(s, known);
  }
  return { ...known.facts, segment: { ...known.facts.segment } };
}

/** Rule 7 — Fixed fees: platformFee.amount × fraction per segment. */
function platformFeeLine(platformFee: Decimal, fraction: Decimal, at: SegmentFacts, w: Wording): LineDraft {
  return {
    exact: platformFee.times(fraction),
    line: {
      kind: "platform_fee", segment: at.segment, usage: null, included: null, billable: null, fraction: at.fraction,
      description: `Platform fee ${timesShare(moneyText(platformFee, w.currency), at.share)} (${at.where})`,
    },
  };
}

/** The meter's words in the segment (MeterWords), written by its first line there. */
function meterWords(m: MeterCharge, at: SegmentFacts, w: Wording): MeterWords {
  let words = at.meterWords.get(m.meter);
  if (words === undefined) {
    const money = (d: Decimal) => moneyText(d, w.currency);
    const { meter } = m;
    // Included units are per period: a segment of a flow (sum, count) includes its share of them (rule 3); a
    // level's are whole in any part of the period. (m.included and m.capScaled are the meter's terms at the
    // segment's fraction: the same for every rating of the segment, usage-charges.ts.)
    const included =
      at.share === null || meter.included.isZero() || meter.level
        ? ` used − ${qt(m.included)} included = `
        : ` used − ${qt(m.included)} included (${qt(meter.included)} × ${at.share}) = `;
    words = {
      name: `${meterName(meter)}: `,
      included,
      // Tier bounds and flat fees are per-period figures: a segment's are scaled by its share (rule 4). A level's
      // bounds are not; its whole charge, fees included, is taken × the share after the price (equals).
      scaled: at.share === null || meter.level ? "" : ` (tier bounds and flat fees × ${at.share})`,
      equals: meter.level && at.share !== null ? ` × ${at.share} = ` : " = ",
      discount: `; meter discount ${percentText(meter.discountPercent)} −`,
      cap: m.capScaled === null ? null : `; meter cap ${at.share === null ? "" : `${timesShare(money(meter.cap ?? ZERO), at.share)} = `}${money(m.capScaled)}: −`,
      tiers: m.price.tiers?.map((t) => ({
        row: { tier: t.tier, from: q(t.from), upTo: t.upTo === null ? null : q(t.upTo), unitPrice: q(t.unitPrice), flatFee: q(t.flatFee) },
        label: `tier ${t.tier} `,
        priced: ` × ${qt(t.unitPrice)}${t.flatFee.isZero() ? "" : ` + ${money(t.flatFee)}`}`,
      })),
    };
    at.meterWords.set(meter, words);
  }
  return words;
}

/** Rules 2–5 for one meter: usage, included units, price, meter discount and cap. */
function usageLine(m: MeterCharge, at: SegmentFacts, w: Wording): LineDraft {
  const words = meterWords(m, at, w);
  // The description is the meter's words with this rating's figures between them.
  const usage = q(m.usage);
  const billable = q(m.billable);
  const gross = q(m.gross);
  const discount = q(m.discount);
  const capped = q(m.capped);
  let description =
    `${words.name}${quantityTextOf(usage)}${words.included}${quantityTextOf(billable)} billable; ` +
    `${priceText(m.price, m.billable, w, words)}${words.equals}${moneyText(m.gross, w.currency)}`;
  if (!m.discount.isZero()) description += `${words.discount}${moneyText(m.discount, w.currency)}`;
  if (!m.capped.isZero()) description += `${words.cap}${moneyText(m.capped, w.currency)}`;
  const line: LineDraft["line"] = {
    kind: "usage",
    meterId: m.meter.id,
    metric: m.meter.metric,
    aggregation: m.meter.measure.aggregation,
    filter: m.meter.measure.filter,
    segment: at.segment,
    usage,
    included: q(m.included),
    billable,
    pricingModel: m.price.model,
    fraction: at.fraction,
    gross,
    discount,
    capped,
    discountPercent: q(m.meter.discountPercent),
    description: `${description} (${at.where})`,
  };
  if (m.meter.unit !== undefined) line.unit = m.meter.unit;
  if (m.price.unitPrice !== undefined) line.unitPrice = q(m.price.unitPrice);
  const tiers = tierRows(m.price, words);
  if (tiers) line.tiers = tiers;
  if (m.price.packageSize) line.packageSize = q(m.price.packageSize);
  if (m.price.packagePrice) line.packagePrice = q(m.price.packagePrice);
  if (m.price.packages) line.packages = q(m.price.packages);
  if (m.capScaled !== null) line.cap = q(m.capScaled);
  return { exact: m.amount, line };
}

/** Rule 6 — the contract discount on the sum of the segment's usage charges. */
function contractDiscountLine(c: SegmentCharges, terms: CompiledTerms, at: SegmentFacts, w: Wording): LineDraft {
  return {
    exact: c.contractDiscount.negated(),
    line: {
      kind: "contract_discount", segment: at.segment, usage: null, included: null, billable: null, fraction: at.fraction,
      discountPercent: q(terms.discountPercent), base: q(c.meterTotal),
      description: `Contract discount ${percentText(terms.discountPercent)} of usage charges ${moneyText(c.meterTotal, w.currency)} (${at.where})`,
    },
  };
}

/** Rule 6 — the contract cap (scaled by fraction) on the usage charges net of the contract discount. */
function contractCapLine(c: SegmentCharges, terms: CompiledTerms, at: SegmentFacts, w: Wording): LineDraft {
  const money = (d: Decimal) => moneyText(d, w.currency);
  const base = c.meterTotal.minus(c.contractDiscount);
  return {
    exact: c.contractCapped.negated(),
    line: {
      kind: "contract_cap", segment: at.segment, usage: null, included: null, billable: null, fraction: at.fraction,
      cap: q(c.contractCapScaled ?? ZERO), base: q(base),
      description:
        `Contract cap ${at.share === null ? "" : `${timesShare(money(terms.cap ?? ZERO), at.share)} = `}${money(c.contractCapScaled ?? ZERO)} ` +
        `on usage charges ${money(base)}: −${money(c.contractCapped)} (${at.where})`,
    },
  };
}

export function lineSegment(s: SegmentSpan): LineSegment {
  return { from: formatInstant(s.fromMs), to: formatInstant(s.toMs), version: s.version?.version ?? 0 };
}

/** The segment's share of the nominal period in whole time units ("10 of 31 days"), null for the whole period. */
export function segmentShare(s: SegmentSpan, w: Wording): string | null {
  return shareText(s.toMs - s.fromMs, w.nominalMs, s.fraction);
}

/** "v1, Jan 1–Feb 9, 2026": the version and the segment's local dates (the share is stated where it prorates). */
export function segmentText(s: SegmentSpan, w: Wording): string {
  return `v${s.version?.version ?? "-"}, ${spanText(s.fromMs, s.toMs, w.timezone)}`;
}

function tierRows(price: PriceResult, words: MeterWords): TierExplanation[] | undefined {
  // tier, from, upTo, unitPrice and flatFee as the meter's words have them, then this rating's units and amount.
  return price.tiers?.map((t, i) => ({ ...words.tiers?.[i]?.row, units: q(t.units), amount: q(t.amount) }) as TierExplanation);
}

/**
 * "api_calls", or with what it measures when that is not the plain sum of its metric:
 * "seats-pro (seats, time-weighted average; plan in [pro, team])".
 */
export function meterName(meter: CompiledMeter): string {
  const { measure } = meter;
  if (meter.id === measure.metric && measure.aggregation === "sum" && measure.filter === null) return meter.id;
  const what = [meter.id === measure.metric ? null : measure.metric, aggregationText(measure)].filter((x) => x !== null).join(", ");
  return `${meter.id} (${what}${measure.filter === null ? "" : `; ${filterText(measure.filter)}`})`;
}

function aggregationText(m: Measure): string | null {
  switch (m.aggregation) {
    case "sum":
      return "sum";
    case "count":
      return "count of events";
    case "max":
      return "peak";
    case "latest":
      return "latest value";
    case "unique_count":
      return `distinct ${m.uniqueBy}`;
    case "time_weighted":
      return "time-weighted average";
  }
}

function filterText(filter: Filter): string {
  return Object.keys(filter)
    .sort()
    .map((p) => `${p} in [${(filter[p] ?? []).map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ")}]`)
    .join(" and ");
}

function priceText(price: PriceResult, billable: Decimal, w: Wording, words: MeterWords): string {
  switch (price.model) {
    case "per_unit":
      return `${qt(billable)} × ${qt(price.unitPrice ?? ZERO)}`;
    case "graduated": {
      let used = "";
      const tiers = price.tiers ?? [];
      for (let i = 0; i < tiers.length; i++) {
        const t = tiers[i] as TierCharge;
        if (t.units.isZero() && t.amount.isZero()) continue;
        const tier = words.tiers?.[i];
        used += `${used === "" ? "" : " + "}${tier?.label}${qt(t.units)}${tier?.priced}`;
      }
      if (used === "") return "0 (graduated)";
      return `graduated${words.scaled}: ${used}`;
    }
    case "volume": {
      const i = (price.tiers ?? []).findIndex((r) => !r.units.isZero() || !r.amount.isZero());
      const t = price.tiers?.[i];
      if (!t) return "0 (volume)";
      const bound = t.upTo === null ? `above ${qt(t.from)}` : `up to ${qt(t.upTo)}`;
      return `volume tier ${t.tier} (${bound})${words.scaled}: ${qt(billable)}${words.tiers?.[i]?.priced}`;
    }
    case "package":
      return `${qt(price.packages ?? ZERO)} package(s) of ${qt(price.packageSize ?? ZERO)} × ${moneyText(price.packagePrice ?? ZERO, w.currency)}`;
  }
}
