// Contract terms as a zod schema: the single source for validation at the edge and
// for the engine's input type. Decimals are strings everywhere; they are parsed with decimal.js later.
import { z } from "zod";
import { USAGE_RULES } from "./usage-rules.js";

const decimalPattern = (intDigits: number, fracDigits: number) =>
  new RegExp(`^\\d{1,${intDigits}}(\\.\\d{1,${fracDigits}})?$`);

/** A non-negative money amount: fits numeric(20,6). */
export const MoneyString = z
  .string()
  .regex(decimalPattern(14, 6), "must be a non-negative decimal string with at most 14 integer and 6 fraction digits")
  .describe("Decimal string, e.g. \"32000.00\"");

/** A non-negative quantity: fits numeric(38,9). */
const QuantityString = z
  .string()
  .regex(decimalPattern(29, 9), "must be a non-negative decimal string with at most 29 integer and 9 fraction digits")
  .describe("Decimal string, e.g. \"1400000\"");

/** A unit price: non-negative, up to 12 fraction digits (sub-cent prices such as "0.000125"). */
const PriceString = z
  .string()
  .regex(decimalPattern(14, 12), "must be a non-negative decimal string with at most 14 integer and 12 fraction digits")
  .describe("Decimal string, e.g. \"0.08\"");

const PercentString = z
  .string()
  .regex(decimalPattern(3, 6), "must be a decimal string between 0 and 100")
  .refine((s) => compareDecimalStrings(s, "100") <= 0, "must be between 0 and 100")
  .describe("Percent as a decimal string, 0..100");

/** A positive multiplier, e.g. the spike factor "3". */
const FactorString = z
  .string()
  .regex(decimalPattern(6, 6), "must be a positive decimal string")
  .refine((s) => /[1-9]/.test(s), "must be greater than zero");

const Cap = z
  .object({ amount: MoneyString.describe("The most that may be charged in a billing period (money, prorated by the segment's fraction)") })
  .strict()
  .nullable();

const Tier = z
  .object({
    upTo: QuantityString.nullable().describe(
      "The last unit in this tier (inclusive), scaled by the segment's fraction for sum and count meters; null on the last tier (no upper bound)",
    ),
    unitPrice: PriceString.describe("Price per billable unit in this tier"),
    flatFee: MoneyString.optional().describe("A fixed fee due once the tier is reached (the first tier is always reached); default none"),
  })
  .strict();

const tiersRule = (tiers: z.infer<typeof Tier>[], ctx: z.RefinementCtx) => {
  tiers.forEach((t, i) => {
    const last = i === tiers.length - 1;
    if (last && t.upTo !== null) ctx.addIssue({ code: "custom", path: [i, "upTo"], message: "the last tier must have upTo: null" });
    if (!last && t.upTo === null) ctx.addIssue({ code: "custom", path: [i, "upTo"], message: "only the last tier may have upTo: null" });
    if (!last && t.upTo !== null && /^0+(\.0+)?$/.test(t.upTo))
      ctx.addIssue({ code: "custom", path: [i, "upTo"], message: "upTo must be greater than zero" });
    const prev = i > 0 ? tiers[i - 1]?.upTo : undefined;
    // String comparison of canonical decimals is unsafe; compare numerically without floats.
    if (prev != null && t.upTo != null && compareDecimalStrings(t.upTo, prev) <= 0)
      ctx.addIssue({ code: "custom", path: [i, "upTo"], message: "tiers must be in ascending order of upTo" });
  });
};

/** Compares two non-negative decimal strings exactly (no floats). */
function compareDecimalStrings(a: string, b: string): number {
  const [ai = "0", af = ""] = a.split(".");
  const [bi = "0", bf = ""] = b.split(".");
  const aInt = ai.replace(/^0+(?=\d)/, "");
  const bInt = bi.replace(/^0+(?=\d)/, "");
  if (aInt.length !== bInt.length) return aInt.length < bInt.length ? -1 : 1;
  if (aInt !== bInt) return aInt < bInt ? -1 : 1;
  const len = Math.max(af.length, bf.length);
  const aF = af.padEnd(len, "0");
  const bF = bf.padEnd(len, "0");
  return aF === bF ? 0 : aF < bF ? -1 : 1;
}

const Tiers = z.array(Tier).min(1).max(100).superRefine(tiersRule);

export const Pricing = z.discriminatedUnion("model", [
  z
    .object({ model: z.literal("per_unit"), unitPrice: PriceString.describe("Price per billable unit") })
    .strict()
    .describe("Every billable unit at one price"),
  z
    .object({ model: z.literal("graduated"), tiers: Tiers.describe("Tiers in ascending order of upTo; the last has upTo null") })
    .strict()
    .describe("Each billable unit priced in the tier it falls in, plus the flat fee of every tier reached"),
  z
    .object({ model: z.literal("volume"), tiers: Tiers.describe("Tiers in ascending order of upTo; the last has upTo null") })
    .strict()
    .describe("All billable units priced at the tier their total falls in, plus that tier's flat fee"),
  z
    .object({
      model: z.literal("package"),
      packageSize: QuantityString.refine((s) => /[1-9]/.test(s), "packageSize must be greater than zero").describe("Units per package"),
      packagePrice: PriceString.describe("Price of one package; billable units are rounded up to whole packages"),
    })
    .strict()
    .describe("Billable units rounded up to whole packages, each at the package price"),
]).describe("How billable units (usage above the included units) are priced");

// The same rule as a usage event's metric (one table: usage-rules.ts), so every meter can receive usage.
const MetricName = z
  .string()
  .min(1)
  .max(USAGE_RULES.metric.maxLength)
  .regex(USAGE_RULES.metric.pattern, USAGE_RULES.metric.message);

/** How a meter aggregates its events in a segment (docs/rating.md, "What a meter measures"). */
export const AGGREGATIONS = ["sum", "count", "max", "latest", "unique_count", "time_weighted"] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

/** A property value a filter matches: a JSON scalar, compared by its canonical JSON ("1" and 1 differ). */
const FilterValue = z.union([z.string().max(200), z.number(), z.boolean()]);

const PropertyName = z.string().min(1).max(100);

export const MeterFilter = z
  .record(PropertyName, z.array(FilterValue).min(1).max(100))
  .refine((f) => Object.keys(f).length >= 1 && Object.keys(f).length <= 10, "must name between 1 and 10 properties")
  .describe(
    "Which events count toward this meter: for every property named, properties[property] must be one of the values " +
      "(JSON scalars, compared by canonical JSON). Meters of one metric must be disjoint",
  );

export const Meter = z
  .object({
    id: MetricName.optional().describe(
      "The meter's id, named by lines, usage summaries and explanations; defaults to `metric`. Required, and unique within the version, " +
        "when a metric has several meters",
    ),
    metric: MetricName.describe("The usage metric this meter prices, as sent in usage events (e.g. api_calls)"),
    unit: z.string().min(1).max(50).optional().describe("The unit shown on invoice lines and the backup (e.g. call, GB)"),
    aggregation: z
      .enum(AGGREGATIONS)
      .default("sum")
      .describe(
        "How the segment's non-voided events of the meter make its usage: sum (Σ quantity), count (number of events), max (largest quantity), " +
          "latest (quantity of the last event before the segment's end, looking back), unique_count (distinct properties[uniqueBy]), " +
          "time_weighted (a level each event sets, averaged over the segment's seconds). Default sum",
      ),
    uniqueBy: PropertyName.optional().describe("unique_count only (and required there): the property whose distinct values are counted"),
    filter: MeterFilter.nullable()
      .optional()
      .describe(
        "Which events count toward this meter: for every property named, properties[property] must be one of the values (JSON scalars, " +
          "compared by canonical JSON). Meters of one metric must be disjoint. Absent or null: every event of the metric",
      ),
    included: QuantityString.default("0").describe(
      "Units included each billing period, not billed; prorated by the segment's fraction for sum and count, whole for the level aggregations. Default 0",
    ),
    pricing: Pricing,
    discountPercent: PercentString.default("0").describe("Discount on this meter's charge, in percent, applied before the meter cap. Default 0"),
    cap: Cap.default(null).describe("The most this meter may charge in a billing period (after its discount), or null for no cap. Default null"),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.aggregation === "unique_count" && m.uniqueBy === undefined)
      ctx.addIssue({ code: "custom", path: ["uniqueBy"], message: "is required when aggregation is unique_count" });
    if (m.aggregation !== "unique_count" && m.uniqueBy !== undefined)
      ctx.addIssue({ code: "custom", path: ["uniqueBy"], message: "is only allowed when aggregation is unique_count" });
  })
  .describe("One priced usage meter: usage (by `aggregation`, of the events `filter` selects), billable = max(0, usage − included), priced by `pricing`, then discounted and capped");

/** The meter's id: its own, or its metric's. */
export const meterIdOf = (m: { id?: string | undefined; metric: string }): string => m.id ?? m.metric;

/** True when no event can match both filters: some property both name has no value in common (canonical JSON). */
export function filtersDisjoint(a: Record<string, unknown[]> | null | undefined, b: Record<string, unknown[]> | null | undefined): boolean {
  if (!a || !b) return false;
  for (const [property, values] of Object.entries(a)) {
    const other = b[property];
    if (other === undefined) continue;
    const mine = new Set(values.map((v) => JSON.stringify(v)));
    if (!other.some((v) => mine.has(JSON.stringify(v)))) return true;
  }
  return false;
}

/**
 * ISO 8601 allows any number of fraction digits; past nanoseconds they only pretend to a precision nothing
 * keeps (timestamptz holds microseconds, JavaScript milliseconds), and two texts of one instant would differ.
 * The one rule for every instant a caller sends (usage timestamps apply it in their own parser).
 */
export const MAX_FRACTION_DIGITS = 9;
export const hasAtMostNanoseconds = (s: string) => !/[.,]\d{10}/.test(s);
export const NANOSECONDS_MESSAGE = `must have at most ${MAX_FRACTION_DIGITS} fraction digits`;

const GrantInstant = z.iso.datetime({ offset: true }).refine(hasAtMostNanoseconds, NANOSECONDS_MESSAGE);

const PrepaidCreditGrant = z
  .object({
    id: z.string().min(1).max(100).describe("The grant's id, unique within the terms; documents name the grants they draw on"),
    amount: MoneyString.describe("The prepaid amount (money in the contract currency) usage and shortfall lines may draw on"),
    grantedAt: GrantInstant.describe("From when the grant may pay (periods ending after it)"),
    expiresAt: GrantInstant.describe("Until when (exclusive); grants expiring first are drawn first"),
  })
  .strict()
  .describe("Prepaid credits: a balance that pays usage and commitment-shortfall lines (not platform fees)")
  .refine((g) => Date.parse(g.expiresAt) > Date.parse(g.grantedAt), {
    message: "expiresAt must be after grantedAt",
    path: ["expiresAt"],
  });

/** What an alert watches (DESIGN.md §9, docs/webhooks.md). */
export const ALERT_KINDS = ["included_share", "quantity", "commitment_share", "credit_balance"] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];
const SHARE_KINDS: readonly AlertKind[] = ["included_share", "commitment_share"];

export const AlertTerm = z
  .object({
    id: z.string().min(1).max(100).describe("The alert's id, unique within the terms: it fires at most once per contract, id and billing period"),
    kind: z
      .enum(ALERT_KINDS)
      .describe(
        "included_share: the meter's usage so far reached threshold × its included units; quantity: the meter's usage so far reached threshold; " +
          "commitment_share: the period's usage charges so far reached threshold × the period commitment; credit_balance: the remaining prepaid " +
          "balance fell to or below threshold (money)",
      ),
    metric: MetricName.optional().describe("included_share and quantity (required there): the meter's id (its metric unless it has its own id)"),
    grantId: z.string().min(1).max(100).optional().describe("credit_balance only: the grant watched; absent, all grants valid in the period together"),
    threshold: QuantityString.refine((s) => /[1-9]/.test(s), "must be greater than zero").describe(
      "A positive decimal string: a share (at most 10, e.g. \"0.8\"), a quantity, or money for credit_balance",
    ),
  })
  .strict()
  .describe("A threshold watched in the current billing period after every usage batch, void, amendment and issued document");

export const ContractTerms = z
  .object({
    platformFee: z
      .object({ amount: MoneyString.describe("The fee per billing period (money in the contract currency)") })
      .strict()
      .nullable()
      .optional()
      .describe(
        "A fixed fee per billing period (e.g. a platform or subscription fee), prorated by each version's share of the period; " +
          "does not count toward the commitment and is not paid by prepaid credits. Absent or null: none",
      ),
    commitment: z
      .object({
        amount: MoneyString.describe("The minimum usage charges (money in the contract currency)"),
        scope: z
          .enum(["period", "term"])
          .default("period")
          .describe("period: a minimum per billing period (prorated by each version's share); term: over the whole term, settled in its last period. Default period"),
      })
      .strict()
      .nullable()
      .optional()
      .describe(
        "A minimum commitment: when the period's rounded usage charges are below it, a commitment_shortfall line bills the exact " +
          "difference. Platform fees do not count toward it. Absent or null: none",
      ),
    meters: z.array(Meter).max(200).describe("The priced usage metrics; usage of a metric without a meter raises unpriced_metric (blocking)"),
    discountPercent: PercentString.default("0").describe(
      "Contract-wide discount, in percent, on the sum of usage charges (after meter discounts and caps), before the contract cap. Default 0",
    ),
    cap: Cap.default(null).describe("The most all usage charges together may be in a billing period, or null for no cap. Default null"),
    prepaidCredits: z.array(PrepaidCreditGrant).max(100).default([]).describe("Prepaid credit grants, drawn earliest expiry first. Default none"),
    materialityThreshold: MoneyString.nullable()
      .optional()
      .describe(
        "A true-up whose |delta| (amount to invoice or credit) is at or above this amount raises a blocking materiality exception: " +
          "someone approves it before it is issued. Absent or null: no materiality check",
      ),
    spikeFactor: FactorString.nullable()
      .optional()
      .describe(
        "A meter whose usage is more than this many times the average of its three prior periods raises a blocking usage_spike " +
          "exception (e.g. \"3\"). Absent or null: no spike check",
      ),
    approvalOwner: z
      .string()
      .min(1)
      .max(200)
      .nullable()
      .optional()
      .describe("Who decides this contract's exceptions (a person or team, e.g. revops-lead): shown as `owner` on each exception"),
    alerts: z.array(AlertTerm).max(50).optional().describe("Thresholds that raise an alert (and a usage.threshold_crossed webhook) once per period. Absent: none"),
  })
  .strict()
  .superRefine((t, ctx) => {
    meterRules(t.meters, ctx);
    alertRules(t, ctx);
    const grants = new Set<string>();
    t.prepaidCredits.forEach((g, i) => {
      if (grants.has(g.id)) ctx.addIssue({ code: "custom", path: ["prepaidCredits", i, "id"], message: `grant id "${g.id}" appears twice` });
      grants.add(g.id);
    });
  });

/** An alert names what exists in the same terms: a meter, a grant, a period commitment. */
function alertRules(t: { meters: ReadonlyArray<z.output<typeof Meter>>; prepaidCredits: ReadonlyArray<{ id: string }>; commitment?: { scope: string } | null | undefined; alerts?: ReadonlyArray<z.output<typeof AlertTerm>> | undefined }, ctx: z.RefinementCtx): void {
  const meterIds = new Set(t.meters.map(meterIdOf));
  const grantIds = new Set(t.prepaidCredits.map((g) => g.id));
  const ids = new Set<string>();
  (t.alerts ?? []).forEach((a, i) => {
    const at = (field: string, message: string) => ctx.addIssue({ code: "custom", path: ["alerts", i, field], message });
    if (ids.has(a.id)) at("id", `alert id "${a.id}" appears twice`);
    ids.add(a.id);
    const perMeter = a.kind === "included_share" || a.kind === "quantity";
    if (perMeter && a.metric === undefined) at("metric", `is required for kind ${a.kind}`);
    if (perMeter && a.metric !== undefined && !meterIds.has(a.metric)) at("metric", `names no meter of these terms (meters: ${[...meterIds].join(", ") || "none"})`);
    if (!perMeter && a.metric !== undefined) at("metric", `is only allowed for kinds included_share and quantity`);
    if (a.kind !== "credit_balance" && a.grantId !== undefined) at("grantId", "is only allowed for kind credit_balance");
    if (a.grantId !== undefined && !grantIds.has(a.grantId)) at("grantId", `names no grant of these terms (prepaidCredits: ${[...grantIds].join(", ") || "none"})`);
    if (a.kind === "commitment_share" && t.commitment?.scope !== "period") at("kind", "commitment_share needs a commitment with scope period");
    if (SHARE_KINDS.includes(a.kind) && compareDecimalStrings(a.threshold, "10") > 0) at("threshold", "a share must be at most 10");
    if (a.kind === "credit_balance" && !decimalPattern(14, 6).test(a.threshold))
      at("threshold", "must be money: at most 14 integer and 6 fraction digits");
  });
}

/**
 * Meters name their ids once per version; a metric with several meters needs explicit ids, and its meters
 * must be disjoint (docs/rating.md): each pair has a property both filter on with no value in common, so an
 * event counts toward one meter at most and an unfiltered meter beside another of its metric is refused.
 */
function meterRules(meters: ReadonlyArray<z.output<typeof Meter>>, ctx: z.RefinementCtx): void {
  const ids = new Set<string>();
  const byMetric = new Map<string, number[]>();
  meters.forEach((m, i) => {
    const id = meterIdOf(m);
    if (ids.has(id)) ctx.addIssue({ code: "custom", path: ["meters", i, m.id === undefined ? "metric" : "id"], message: `meter id "${id}" appears twice` });
    ids.add(id);
    byMetric.set(m.metric, [...(byMetric.get(m.metric) ?? []), i]);
  });
  for (const [metric, indexes] of byMetric) {
    if (indexes.length < 2) continue;
    for (const i of indexes) {
      if (meters[i]?.id === undefined)
        ctx.addIssue({ code: "custom", path: ["meters", i, "id"], message: `is required: metric "${metric}" has ${indexes.length} meters` });
    }
    indexes.forEach((i, n) => {
      for (const j of indexes.slice(n + 1)) {
        const a = meters[i]!;
        const b = meters[j]!;
        if (!filtersDisjoint(a.filter, b.filter))
          ctx.addIssue({
            code: "custom",
            path: ["meters", j, "filter"],
            message:
              `meters "${meterIdOf(a)}" (meters[${i}]) and "${meterIdOf(b)}" (meters[${j}]) of metric "${metric}" overlap: ` +
              "their filters must share a property with no value in common",
          });
      }
    });
  }
}

/** Terms as validated and defaulted: what the engine receives. */
export type ContractTerms = z.output<typeof ContractTerms>;
export type PrepaidCredit = ContractTerms["prepaidCredits"][number];

/**
 * Each grant as the latest version defining its id says (versions in version order, in force or not): the
 * amount the service's balances start from, and the grant a revenue rollforward follows.
 */
export function latestGrantDefinitions(versions: readonly { terms: unknown }[]): Map<string, PrepaidCredit> {
  const byId = new Map<string, PrepaidCredit>();
  for (const v of versions) for (const g of (v.terms as Partial<ContractTerms>).prepaidCredits ?? []) byId.set(g.id, g);
  return byId;
}
export type ContractTermsInput = z.input<typeof ContractTerms>;
export type Meter = z.output<typeof Meter>;
export type Pricing = z.output<typeof Pricing>;
export type AlertTerm = z.output<typeof AlertTerm>;
