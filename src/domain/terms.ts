// Contract terms (DESIGN.md section 3) as a zod schema: the single source for validation at the edge and
// for the engine's input type. Decimals are strings everywhere; they are parsed with decimal.js later.
import { z } from "zod";

const decimalPattern = (intDigits: number, fracDigits: number) =>
  new RegExp(`^\\d{1,${intDigits}}(\\.\\d{1,${fracDigits}})?$`);

/** A non-negative money amount: fits numeric(20,6). */
export const MoneyString = z
  .string()
  .regex(decimalPattern(14, 6), "must be a non-negative decimal string with at most 14 integer and 6 fraction digits")
  .describe("Decimal string, e.g. \"32000.00\"");

/** A non-negative quantity: fits numeric(38,9). */
export const QuantityString = z
  .string()
  .regex(decimalPattern(29, 9), "must be a non-negative decimal string with at most 29 integer and 9 fraction digits")
  .describe("Decimal string, e.g. \"1400000\"");

/** A unit price: non-negative, up to 12 fraction digits (sub-cent prices such as "0.000125"). */
export const PriceString = z
  .string()
  .regex(decimalPattern(14, 12), "must be a non-negative decimal string with at most 14 integer and 12 fraction digits")
  .describe("Decimal string, e.g. \"0.08\"");

export const PercentString = z
  .string()
  .regex(decimalPattern(3, 6), "must be a decimal string between 0 and 100")
  .refine((s) => compareDecimalStrings(s, "100") <= 0, "must be between 0 and 100")
  .describe("Percent as a decimal string, 0..100");

/** A positive multiplier, e.g. the spike factor "3". */
export const FactorString = z
  .string()
  .regex(decimalPattern(6, 6), "must be a positive decimal string")
  .refine((s) => /[1-9]/.test(s), "must be greater than zero");

export const Cap = z.object({ amount: MoneyString }).strict().nullable();

const Tier = z
  .object({
    upTo: QuantityString.nullable(),
    unitPrice: PriceString,
    flatFee: MoneyString.optional(),
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
export function compareDecimalStrings(a: string, b: string): number {
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
  z.object({ model: z.literal("per_unit"), unitPrice: PriceString }).strict(),
  z.object({ model: z.literal("graduated"), tiers: Tiers }).strict(),
  z.object({ model: z.literal("volume"), tiers: Tiers }).strict(),
  z
    .object({
      model: z.literal("package"),
      packageSize: QuantityString.refine((s) => /[1-9]/.test(s), "packageSize must be greater than zero"),
      packagePrice: PriceString,
    })
    .strict(),
]);

const MetricName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_.:-]+$/, "may contain only letters, digits and _ . : -");

export const Meter = z
  .object({
    metric: MetricName,
    unit: z.string().min(1).max(50).optional(),
    included: QuantityString.default("0"),
    pricing: Pricing,
    discountPercent: PercentString.default("0"),
    cap: Cap.default(null),
  })
  .strict();

export const PrepaidCreditGrant = z
  .object({
    id: z.string().min(1).max(100),
    amount: MoneyString,
    grantedAt: z.iso.datetime({ offset: true }),
    expiresAt: z.iso.datetime({ offset: true }),
  })
  .strict()
  .refine((g) => Date.parse(g.expiresAt) > Date.parse(g.grantedAt), {
    message: "expiresAt must be after grantedAt",
    path: ["expiresAt"],
  });

export const ContractTerms = z
  .object({
    platformFee: z.object({ amount: MoneyString }).strict().nullable().optional(),
    commitment: z
      .object({ amount: MoneyString, scope: z.enum(["period", "term"]).default("period") })
      .strict()
      .nullable()
      .optional(),
    meters: z.array(Meter).max(200),
    discountPercent: PercentString.default("0"),
    cap: Cap.default(null),
    prepaidCredits: z.array(PrepaidCreditGrant).max(100).default([]),
    materialityThreshold: MoneyString.nullable().optional(),
    spikeFactor: FactorString.nullable().optional(),
    approvalOwner: z.string().min(1).max(200).nullable().optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    const seen = new Set<string>();
    t.meters.forEach((m, i) => {
      if (seen.has(m.metric)) ctx.addIssue({ code: "custom", path: ["meters", i, "metric"], message: `metric "${m.metric}" appears twice` });
      seen.add(m.metric);
    });
    const grants = new Set<string>();
    t.prepaidCredits.forEach((g, i) => {
      if (grants.has(g.id)) ctx.addIssue({ code: "custom", path: ["prepaidCredits", i, "id"], message: `grant id "${g.id}" appears twice` });
      grants.add(g.id);
    });
  });

/** Terms as validated and defaulted: what the engine receives. */
export type ContractTerms = z.output<typeof ContractTerms>;
export type ContractTermsInput = z.input<typeof ContractTerms>;
export type Meter = z.output<typeof Meter>;
export type Pricing = z.output<typeof Pricing>;
export type PrepaidCreditGrant = z.output<typeof PrepaidCreditGrant>;
