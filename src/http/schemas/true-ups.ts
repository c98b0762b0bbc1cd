// Schemas of calculations, exceptions, documents and the audit log.
import { z } from "zod";
import { Id, Instant, page } from "./common.js";

const Period = z.object({ start: z.string(), end: z.string() });

export const Exception = z.object({
  id: Id,
  kind: z.enum(["missing_terms", "unpriced_metric", "unmapped_usage", "usage_spike", "materiality", "late_usage", "over_billed", "amendment_conflict"]),
  blocking: z.boolean(),
  status: z.enum(["open", "approved", "rejected"]),
  contractId: Id.nullable(),
  customerId: z.string().nullable(),
  period: Period.nullable(),
  subject: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()),
  owner: z.string().nullable().describe("The contract's approvalOwner, where set"),
  calculationId: Id.nullable(),
  createdAt: z.string(),
  lastSeenAt: z.string(),
  resolution: z.object({ decision: z.string(), note: z.string().nullable(), actor: z.string(), at: z.string() }).nullable(),
});

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
  metric: z.string().optional(),
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

/** A grant's use by a period, and the balance it leaves (absent on documents issued before balances were recorded). */
const CreditApplied = z.object({
  grantId: z.string(),
  amount: z.string(),
  balanceAfter: z.string().optional().describe("The grant's balance once this use is recorded: what the next period can draw"),
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

export const DocumentLine = z.object({
  lineNo: z.number().int(),
  kind: z.string(),
  metric: z.string().nullable(),
  amount: z.string(),
  explanation: z.record(z.string(), z.unknown()),
});

export const Document = z.object({
  id: Id,
  number: z.string().describe("INV-000001 / CM-000001, gapless per kind"),
  kind: z.enum(["invoice", "credit_memo"]),
  contractId: Id,
  period: Period,
  currency: z.string(),
  lines: z.array(DocumentLine),
  subtotal: z.string().describe("The period's full total"),
  alreadyBilled: z.string(),
  amount: z.string().describe("|delta|: due on an invoice, credited on a credit memo"),
  creditsApplied: z.array(CreditApplied),
  calculationId: Id,
  inputsHash: z.string(),
  issuedAt: z.string(),
  issuedBy: z.string(),
});

export const DocumentPage = page(Document);
export const ExceptionPage = page(Exception);

export const ResolveBody = z
  .object({ decision: z.enum(["approve", "reject"]), note: z.string().min(1).max(2000) })
  .strict();

export const AuditEntry = z.object({
  id: Id,
  seq: z.string(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  entityType: z.string(),
  entityId: z.string(),
  payload: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});
export const AuditPage = page(AuditEntry);
const CheckpointCheck = z
  .object({
    seq: z.string(),
    at: z.string(),
    keyId: z.string(),
    verified: z.boolean().describe("The signature holds with the service's key, the entry at seq has the signed hash, and the chain reaches seq"),
  })
  .nullable();
export const AuditProblem = z.object({
  kind: z
    .enum(["chain_broken", "checkpoint_invalid", "checkpoint_mismatch", "chain_truncated", "checkpoint_missing", "digest_mismatch", "row_missing", "unattested", "rollup_mismatch"])
    .describe("What failed (docs/audit.md)"),
  entityType: z.string().describe("audit_entry, audit_checkpoint, document, contract_version, usage_batch, usage_event or usage_rollup"),
  entityId: z.string(),
  message: z.string(),
});
export const AuditVerification = z.object({
  ok: z.boolean().describe("No problem found"),
  entries: z.number().int(),
  firstBrokenId: z.string().nullable().describe("The first entry whose link or hash does not hold"),
  checkpoint: CheckpointCheck.describe("The latest stored checkpoint, or null when there is none"),
  suppliedCheckpoint: CheckpointCheck.describe("The checkpoint passed as ?checkpoint=, or null"),
  deep: z.boolean().describe("Whether documents, contract versions, usage batches and rollups were recomputed from their rows"),
  problems: z.array(AuditProblem).describe("Everything found, at most 200"),
});
export const AuditVerifyQuery = z
  .object({
    deep: z.enum(["true", "false"]).default("false").describe("Also recompute every document, contract version and usage batch from its rows"),
    checkpoint: z
      .string()
      .min(1)
      .max(1000)
      .optional()
      .describe("A checkpoint token kept outside the service (from POST /v1/audit/checkpoints): the chain must still reach it and match it"),
  })
  .strict();
export const AuditCheckpoint = z.object({
  id: Id,
  seq: z.string().describe("The head entry's seq when signed"),
  hash: z.string().describe("The hash of the entry at seq"),
  entries: z.string().describe("How many entries the chain held"),
  at: z.string(),
  keyId: z.string().describe("Fingerprint of the signing key (not the key)"),
  signature: z.string().describe("HMAC-SHA256 (hex) of the canonical JSON of {domain, seq, hash, at, entries}"),
  reason: z.enum(["periodic", "on_demand"]),
  createdBy: z.string(),
  token: z.string().describe("The signed checkpoint as one string: keep it outside, pass it to GET /v1/audit/verify?checkpoint="),
});
export const AuditCheckpointPage = page(AuditCheckpoint);

// Examples for the OpenAPI document: the annual worked example of docs/rating.md.
const P = { start: "2026-01-01T00:00:00.000Z", end: "2027-01-01T00:00:00.000Z" };
const exampleLines = [
  {
    kind: "platform_fee" as const,
    segment: { from: P.start, to: P.end, version: 1 },
    usage: null,
    included: null,
    billable: null,
    fraction: "1",
    description: "Platform fee 120,000.00 (v1, Jan 1–Dec 31, 2026)",
    unroundedAmount: "120000",
    amount: "120000.00",
  },
  {
    kind: "usage" as const,
    metric: "api_calls",
    unit: "call",
    segment: { from: P.start, to: P.end, version: 1 },
    usage: "1400000",
    included: "1000000",
    billable: "400000",
    pricingModel: "per_unit" as const,
    unitPrice: "0.08",
    fraction: "1",
    gross: "32000",
    discount: "0",
    capped: "0",
    discountPercent: "0",
    description: "api_calls: 1,400,000 used − 1,000,000 included = 400,000 billable; 400,000 × 0.08 = 32,000.00 (v1, Jan 1–Dec 31, 2026)",
    unroundedAmount: "32000",
    amount: "32000.00",
  },
];

export const calculationExample = {
  id: "0196f6d3-0a1b-7c2d-8e3f-405162738495",
  contractId: "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b",
  period: P,
  periodClosed: true,
  segments: [{ from: P.start, to: P.end, version: 1, fraction: "1" }],
  lines: exampleLines,
  total: "152000.00",
  alreadyBilled: "120000.00",
  delta: "32000.00",
  action: "invoice" as const,
  currency: "USD",
  creditsApplied: [],
  exceptions: [],
  inputsHash: "a7c103288ddb352495e82bc4d8f0313db85c3049f89b0a5e91bfd34ffc0c6061",
  engineVersion: "rating-engine/1.0.0",
  createdAt: "2027-01-02T09:00:00.000Z",
  createdBy: "billing-sync",
};

export const documentExample = {
  id: "0196f6d4-1b2c-7d3e-8f40-5162738495a6",
  number: "INV-000001",
  kind: "invoice" as const,
  contractId: calculationExample.contractId,
  period: P,
  currency: "USD",
  lines: exampleLines.map(({ kind, metric, amount, ...explanation }, i) => ({ lineNo: i + 1, kind, metric: metric ?? null, amount, explanation })),
  subtotal: "152000.00",
  alreadyBilled: "120000.00",
  amount: "32000.00",
  creditsApplied: [],
  calculationId: calculationExample.id,
  inputsHash: calculationExample.inputsHash,
  issuedAt: "2027-01-02T09:30:00.000Z",
  issuedBy: "controller",
};

export const exceptionExample = {
  id: "0196f6d3-0a1b-7c2d-8e3f-4051627384a0",
  kind: "materiality" as const,
  blocking: true,
  status: "approved" as const,
  contractId: calculationExample.contractId,
  customerId: null,
  period: P,
  subject: "delta=32000.00",
  message: "delta 32000.00 is at or above the materiality threshold 25000.00",
  details: { delta: "32000.00", threshold: "25000.00" },
  owner: "revops-lead",
  calculationId: calculationExample.id,
  createdAt: "2027-01-02T09:00:00.000Z",
  lastSeenAt: "2027-01-02T09:00:00.000Z",
  resolution: { decision: "approve", note: "Q4 launch traffic, confirmed with the customer", actor: "controller", at: "2027-01-02T09:20:00.000Z" },
};
