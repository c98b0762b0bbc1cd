// Request and response schemas of the contract routes.
import { z } from "zod";
import { ContractTerms, MoneyString } from "../../domain/terms.js";
import { CalendarDateString, Id, Instant, page } from "./common.js";

// The terms are one named component in the OpenAPI document (ContractTermsInput for requests), not repeated per route.
if (!z.globalRegistry.has(ContractTerms))
  z.globalRegistry.add(ContractTerms, {
    id: "ContractTerms",
    description:
      "The commercial terms of a version, a full replacement of the previous version's (not a patch). Requests may leave out " +
      "every defaulted field (ContractTermsInput); responses show the terms as validated, with the defaults filled in (ContractTerms).",
  });

const Identifier = z.string().min(1).max(200).regex(/^[^\s,]+$/, "must be non-empty without spaces or commas");

export const CreateContractBody = z
  .object({
    customerId: Identifier.describe("The customer's id as usage events name it; maps to one active contract at a time"),
    accountIds: z
      .array(Identifier)
      .max(100)
      .optional()
      .describe("Other ids whose usage belongs to this contract (subsidiaries, old account names); default none"),
    name: z.string().min(1).max(200).describe("A name for people, e.g. \"Acme 2026 enterprise\""),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as USD")
      .describe("ISO 4217 code; every amount of the contract is in it and lines are rounded to its minor unit (USD 2 decimals, JPY 0)"),
    timezone: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe("IANA time zone the dates and billing periods are read in (a period starts at local midnight); default UTC"),
    billingPeriod: z.enum(["monthly", "quarterly", "annual"]).describe("How often a true-up is due; periods are aligned to startDate"),
    startDate: CalendarDateString,
    endDate: CalendarDateString.nullable().optional().describe("Last day covered (inclusive); null or absent for evergreen"),
    roundingMode: z
      .enum(["half_up", "half_even"])
      .optional()
      .describe("How each line is rounded to the currency's minor unit: half_up (default) or half_even (banker's rounding)"),
    allowTrueDown: z
      .boolean()
      .optional()
      .describe("Whether over-billing is credited back with a credit memo; default false: it raises a blocking over_billed exception instead"),
    signedAt: Instant.optional().describe("When the contract was signed; default now"),
    terms: ContractTerms,
  })
  .strict();

export const AmendmentBody = z
  .object({
    effectiveFrom: Instant,
    signedAt: Instant.optional(),
    kind: z.enum(["amendment", "ramp"]).optional().describe("Default amendment"),
    reason: z.string().min(1).max(1000),
    // A full replacement of the terms, not a patch.
    terms: ContractTerms,
  })
  .strict();

export const ExternalBillingBody = z
  .object({
    periodStart: Instant,
    periodEnd: Instant,
    amount: MoneyString,
    reference: z.string().min(1).max(200),
  })
  .strict();

export const ContractVersion = z.object({
  version: z.number().int(),
  effectiveFrom: z.string(),
  signedAt: z.string(),
  kind: z.string(),
  reason: z.string(),
  // Documented as the ContractTerms component (the terms as validated, defaults filled in); not re-validated on the way out.
  terms: z.unknown().meta({ "x-component": "ContractTerms" }),
});

export const ContractSummary = z.object({
  id: Id,
  customerId: z.string(),
  accountIds: z.array(z.string()),
  name: z.string(),
  currency: z.string(),
  timezone: z.string(),
  billingPeriod: z.enum(["monthly", "quarterly", "annual"]),
  startDate: z.string(),
  endDate: z.string().nullable(),
  termStart: z.string().describe("Local midnight of startDate, as an instant"),
  termEnd: z.string().nullable().describe("Local midnight after endDate, as an instant (exclusive)"),
  roundingMode: z.enum(["half_up", "half_even"]),
  allowTrueDown: z.boolean(),
  createdAt: z.string(),
});

export const Contract = ContractSummary.extend({ versions: z.array(ContractVersion) });
export const ContractPage = page(ContractSummary);

export const ExternalBilling = z.object({
  id: Id,
  contractId: Id,
  periodStart: z.string(),
  periodEnd: z.string(),
  amount: z.string(),
  reference: z.string(),
  createdAt: z.string(),
});

export const contractExample = {
  customerId: "acme",
  accountIds: ["acme-eu"],
  name: "Acme 2026 enterprise",
  currency: "USD",
  timezone: "UTC",
  billingPeriod: "annual",
  startDate: "2026-01-01",
  endDate: "2026-12-31",
  terms: {
    platformFee: { amount: "120000.00" },
    meters: [{ metric: "api_calls", unit: "call", included: "1000000", pricing: { model: "per_unit", unitPrice: "0.08" } }],
  },
};

export const amendmentExample = {
  effectiveFrom: "2026-07-01T00:00:00Z",
  signedAt: "2026-06-20T15:30:00Z",
  kind: "amendment",
  reason: "Mid-year upsell: lower overage rate",
  terms: {
    platformFee: { amount: "120000.00" },
    meters: [{ metric: "api_calls", unit: "call", included: "1500000", pricing: { model: "per_unit", unitPrice: "0.06" } }],
  },
};

export const externalBillingExample = {
  periodStart: "2026-01-01T00:00:00Z",
  periodEnd: "2027-01-01T00:00:00Z",
  amount: "120000.00",
  reference: "NS-INV-2026-0042",
};

const versionExample = {
  version: 1,
  effectiveFrom: "2026-01-01T00:00:00.000Z",
  signedAt: "2025-12-15T10:00:00.000Z",
  kind: "original",
  reason: "original terms",
  terms: {
    platformFee: { amount: "120000.00" },
    meters: [
      { metric: "api_calls", unit: "call", included: "1000000", pricing: { model: "per_unit", unitPrice: "0.08" }, discountPercent: "0", cap: null },
    ],
    discountPercent: "0",
    cap: null,
    prepaidCredits: [],
  },
};

const contractSummaryExample = {
  id: "019a2b3c-4d5e-7f60-8a1b-2c3d4e5f6a7b",
  customerId: "acme",
  accountIds: ["acme-eu"],
  name: "Acme 2026 enterprise",
  currency: "USD",
  timezone: "UTC",
  billingPeriod: "annual" as const,
  startDate: "2026-01-01",
  endDate: "2026-12-31",
  termStart: "2026-01-01T00:00:00.000Z",
  termEnd: "2027-01-01T00:00:00.000Z",
  roundingMode: "half_up" as const,
  allowTrueDown: false,
  createdAt: "2025-12-15T10:00:00.000Z",
};

export const contractResponseExample = { ...contractSummaryExample, versions: [versionExample] };
export const contractPageExample = { data: [contractSummaryExample], nextCursor: null };
export const versionResponseExample = {
  ...versionExample,
  version: 2,
  effectiveFrom: "2026-07-01T00:00:00.000Z",
  signedAt: "2026-06-20T15:30:00.000Z",
  kind: "amendment",
  reason: "Mid-year upsell: lower overage rate",
};
export const externalBillingResponseExample = {
  id: "019a2b3c-5e6f-7a80-9b1c-2d3e4f5a6b7c",
  contractId: contractSummaryExample.id,
  periodStart: "2026-01-01T00:00:00.000Z",
  periodEnd: "2027-01-01T00:00:00.000Z",
  amount: "120000.00",
  reference: "NS-INV-2026-0042",
  createdAt: "2026-01-05T09:00:00.000Z",
};
