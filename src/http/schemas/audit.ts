// Schemas of the audit routes: the log, its verification and its signed checkpoints.
import { z } from "zod";
import { Id, page } from "./common.js";

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
