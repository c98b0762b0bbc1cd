// Schemas of the billing-run routes (DESIGN.md §10).
import { z } from "zod";
import { Id, Instant, page } from "./common.js";

export const StartBillingRunBody = z
  .object({
    periodEnd: Instant.optional().describe("Bill every period ending at or before this instant (default: now; not after now)"),
    autoIssue: z.boolean().optional().describe("Issue what is due and unblocked (approver only). Default false: preview only"),
    contractIds: z.array(Id).min(1).max(100_000).optional().describe("Only these contracts (default: every contract whose term has begun)"),
  })
  .strict();

const Counts = z.object({ issued: z.number().int(), previewed: z.number().int(), blocked: z.number().int(), nothing_to_issue: z.number().int(), failed: z.number().int() });

export const BillingRun = z
  .object({
    id: Id,
    status: z.enum(["running", "completed", "failed"]),
    periodEnd: z.string(),
    autoIssue: z.boolean(),
    contractIds: z.array(Id).nullable(),
    progress: z.object({ total: z.number().int(), done: z.number().int() }).describe("Items (contract periods) in the run, and those finished"),
    counts: Counts.describe("Finished items by outcome"),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    startedBy: z.string().describe("The API key that started the run"),
  })
  .meta({ id: "BillingRun" });
export const BillingRunPage = page(BillingRun);

export const BillingRunItem = z
  .object({
    contractId: Id,
    periodStart: z.string(),
    periodEnd: z.string(),
    status: z.enum(["pending", "issued", "previewed", "blocked", "nothing_to_issue", "failed"]),
    calculationId: Id.nullable().describe("The preview this item rated (reused if the run resumes after a crash)"),
    documentId: Id.nullable(),
    blockingExceptionIds: z.array(Id).describe("Open blocking exceptions that kept it from being issued"),
    error: z.string().nullable().describe("Why it failed (the run goes on)"),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: "BillingRunItem" });
export const BillingRunItemPage = page(BillingRunItem);
