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

/** A rated line with its explanation: enough for a customer to check the number (DESIGN.md section 4). */
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
  grantId: z.string().optional(),
  available: z.string().optional(),
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
    segments: z.array(z.object({ from: z.string(), to: z.string(), version: z.number().int().nullable(), fraction: z.string() })),
    lines: z.array(Line),
    total: z.string(),
    alreadyBilled: z.string(),
    delta: z.string(),
    action: z.enum(["invoice", "credit_memo", "none"]),
    currency: z.string(),
    creditsApplied: z.array(z.object({ grantId: z.string(), amount: z.string() })),
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
  creditsApplied: z.array(z.object({ grantId: z.string(), amount: z.string() })),
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
export const AuditVerification = z.object({ ok: z.boolean(), entries: z.number().int(), firstBrokenId: z.string().nullable() });
