// Schemas of true-ups: previews, calculations and issuing.
import { z } from "zod";
import { EXCEPTION_KINDS, type ExceptionKind } from "../../domain/exception-kinds.js";
import { AGGREGATIONS, ContractTerms } from "../../domain/terms.js";
import { Id, Instant, Period } from "./common.js";
import { CreditApplied } from "./documents.js";
import { Exception } from "./exceptions.js";

const Tier = z.object({
  tier: z.number().int(),
  from: z.string(),
  upTo: z.string().nullable(),
  unitPrice: z.string(),
  flatFee: z.string(),
  units: z.string(),
  amount: z.string(),
});

/** A rated line with its explanation: enough for a customer to check the number (docs/rating.md, "Explanations"). */
export const Line = z.object({
  kind: z.enum(["platform_fee", "usage", "contract_discount", "contract_cap", "commitment_shortfall", "credit_applied"]),
  meterId: z.string().optional().describe("usage lines: the meter's id (its metric unless the contract names one)"),
  metric: z.string().optional(),
  aggregation: z.enum(AGGREGATIONS).optional().describe("usage lines: how the meter aggregates its events (docs/rating.md)"),
  filter: z
    .record(z.string(), z.array(z.union([z.string(), z.number(), z.boolean()])))
    .nullable()
    .optional()
    .describe("usage lines: which events of the metric the meter counts; null: all of them"),
  unit: z.string().optional(),
  segment: z.object({ from: z.string(), to: z.string(), version: z.number().int() }).nullable(),
  usage: z.string().nullable(),
  included: z.string().nullable().describe("Included units × fraction"),
  billable: z.string().nullable(),
  pricingModel: z.enum(["per_unit", "graduated", "volume", "package"]).optional(),
  unitPrice: z.string().optional(),
  tiers: z.array(Tier).optional().describe("Tier bounds scaled by the fraction, with the units and amount in each"),
  packageSize: z.string().optional(),
  packagePrice: z.string().optional(),
  packages: z.string().optional(),
  fraction: z.string().nullable(),
  gross: z.string().optional(),
  discount: z.string().optional(),
  capped: z.string().optional(),
  discountPercent: z.string().optional(),
  cap: z.string().optional(),
  base: z.string().optional(),
  commitment: z.string().optional(),
  usageCharges: z.string().optional(),
  scope: z.enum(["period", "term"]).optional(),
  periods: z.array(z.object({ start: z.string(), end: z.string(), usageCharges: z.string() })).optional(),
  commitmentParts: z
    .array(z.object({ segment: z.object({ from: z.string(), to: z.string(), version: z.number().int() }), amount: z.string(), fraction: z.string(), commitment: z.string() }))
    .optional()
    .describe("Period commitment_shortfall: each segment's commitment, amount × fraction; they add up to `commitment`"),
  grantId: z.string().optional(),
  available: z.string().optional(),
  balanceAfter: z.string().optional().describe("credit_applied: the grant's balance once this period's use is recorded"),
  expiresAt: z.string().optional(),
  unroundedAmount: z.string(),
  amount: z.string().describe("Rounded to the currency's minor unit"),
  description: z.string(),
});

export const Calculation = z
  .object({
    id: Id,
    contractId: Id,
    period: Period,
    periodClosed: z.boolean().describe("Whether the period had ended when it was rated; false: an estimate, which cannot be issued yet (409 period_open)"),
    segments: z.array(z.object({ from: z.string(), to: z.string(), version: z.number().int().nullable(), fraction: z.string() })),
    lines: z.array(Line),
    total: z.string(),
    alreadyBilled: z.string(),
    delta: z.string(),
    action: z.enum(["invoice", "credit_memo", "none"]),
    currency: z.string(),
    creditsApplied: z.array(CreditApplied),
    exceptions: z.array(Exception),
    inputsHash: z.string(),
    engineVersion: z.string(),
    createdAt: z.string(),
    createdBy: z.string(),
    inputs: z.unknown().optional().describe("The exact engine input (GET only)"),
  });

export const PreviewBody = z
  .object({
    periodStart: Instant.optional().describe("The start of a billing period of the contract; default: the last closed period"),
  })
  .strict();

export const IssueBody = z.object({ calculationId: Id }).strict();

export const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe("Same key and body → the first response again; same key, other body → 409 idempotency_conflict"),
});


export const SimulationBody = z
  .object({
    terms: ContractTerms.describe("The proposed terms, validated as an amendment's; in force for the whole period"),
    periodStart: Instant.optional().describe("The start of a billing period of the contract; default: the last closed period"),
  })
  .strict();

/** An exception the engine finds in a simulated rating: reported, never stored or routed. */
const SimulatedException = z.object({
  kind: z.enum(Object.keys(EXCEPTION_KINDS) as [ExceptionKind, ...ExceptionKind[]]),
  blocking: z.boolean(),
  subject: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()),
});

/** A full rating of the period, as a preview's calculation, without what only a stored one has (id, inputsHash, createdAt). */
export const SimulatedRating = Calculation.omit({ id: true, exceptions: true, inputsHash: true, createdAt: true, createdBy: true, inputs: true }).extend({
  exceptions: z.array(SimulatedException).describe("What the engine finds in this rating (as a preview would raise); none is stored"),
});

export const Simulation = z.object({
  period: Period,
  current: SimulatedRating.describe("The period rated with the contract's versions in force in it"),
  proposed: SimulatedRating.describe("The period rated with the proposed terms in force for all of it"),
  difference: z.object({
    total: z.string().describe("proposed.total − current.total"),
    perMeter: z
      .array(z.object({ meterId: z.string(), current: z.string(), proposed: z.string(), difference: z.string().describe("proposed − current") }))
      .describe(
        "Per meter of either rating: its usage charges (the sum of its usage lines over the segments, meter discount and cap applied; 0.00 where it " +
          "has none); platform fees, contract discounts and caps, commitments and credits are in the totals only",
      ),
  }),
});
