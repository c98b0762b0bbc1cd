// Appending to the audit log (docs/audit.md): one append-only, hash-chained table.
// hash = sha256(prevHash + canonical JSON of { id, seq, at, actor, action, entityType, entityId, payload }).
// Appending takes a transaction-scoped advisory lock so the chain has one writer at a time; callers append
// as the last step of their transaction to hold it briefly.
import { newId } from "../../db/ids.js";
import { chainHead, insertAuditEntry, lockAuditChain } from "../../db/queries/audit.js";
import type { Sql } from "../../db/sql.js";
import { canonicalJson } from "../../domain/canonical-json.js";
import { sha256Hex } from "../../domain/sha256.js";
import { auditSigning, signAndStoreCheckpoint } from "./checkpoints.js";

export const GENESIS_HASH = "0".repeat(64);

export interface AuditInput {
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  payload: Record<string, unknown>;
}

export interface AuditEntry extends AuditInput {
  id: string;
  seq: string;
  at: string;
  prevHash: string;
  hash: string;
}

export function hashEntry(prevHash: string, e: Omit<AuditEntry, "prevHash" | "hash">): string {
  const body = canonicalJson({
    id: e.id,
    seq: e.seq,
    at: e.at,
    actor: e.actor,
    action: e.action,
    entityType: e.entityType,
    entityId: e.entityId,
    payload: e.payload,
  });
  return sha256Hex(prevHash + body);
}

export async function appendAudit(sql: Sql, input: AuditInput): Promise<AuditEntry> {
  await lockAuditChain(sql);
  const last = await chainHead(sql);
  const prevHash = last.hash ?? GENESIS_HASH;
  // JSON round trip: what we hash must be exactly what jsonb gives back (no undefined, no Decimal objects).
  const payload = JSON.parse(canonicalJson(input.payload)) as Record<string, unknown>;
  const entry = {
    ...input,
    payload,
    id: newId(),
    seq: (BigInt(last.seq ?? "0") + 1n).toString(),
    at: new Date().toISOString(),
  };
  const hash = hashEntry(prevHash, entry);
  await insertAuditEntry(sql, { ...entry, prevHash, hash });
  // In this transaction, so an entry that reaches the interval cannot commit without its checkpoint.
  const signing = auditSigning();
  if (signing && BigInt(entry.seq) - BigInt(last.checkpoint_seq ?? "0") >= BigInt(signing.every))
    await signAndStoreCheckpoint(sql, signing.key, { seq: entry.seq, hash, at: entry.at, entries: entry.seq }, "periodic", "system");
  return { ...entry, prevHash, hash };
}
