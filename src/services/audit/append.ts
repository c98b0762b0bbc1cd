// Appending to the audit log (docs/audit.md): one append-only, hash-chained table.
// hash = sha256(prevHash + canonical JSON of { id, seq, at, actor, action, entityType, entityId, payload }).
// Appending takes a transaction-scoped advisory lock so the chain has one writer at a time; callers append
// as the last step of their transaction to hold it briefly.
import { newId } from "../../db/ids.js";
import { chainHead, insertAuditEntries, lockAuditChain } from "../../db/queries/audit.js";
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
  const [entry] = await appendAuditEntries(sql, [input]);
  return entry!;
}

/**
 * Appends entries in their order under one hold of the chain's lock, one read of its head and one insert: a
 * billing run's chunk of contracts (their calculations and documents) costs the chain one append, not two per contract.
 */
export async function appendAuditEntries(sql: Sql, inputs: readonly AuditInput[]): Promise<AuditEntry[]> {
  if (inputs.length === 0) return [];
  await lockAuditChain(sql);
  const last = await chainHead(sql);
  let prevHash = last.hash ?? GENESIS_HASH;
  let seq = BigInt(last.seq ?? "0");
  const at = new Date().toISOString();
  const entries: AuditEntry[] = inputs.map((input) => {
    seq += 1n;
    // JSON round trip: what we hash must be exactly what jsonb gives back (no undefined, no Decimal objects).
    const payload = JSON.parse(canonicalJson(input.payload)) as Record<string, unknown>;
    const entry = { ...input, payload, id: newId(), seq: seq.toString(), at };
    const hash = hashEntry(prevHash, entry);
    const full = { ...entry, prevHash, hash };
    prevHash = hash;
    return full;
  });
  await insertAuditEntries(sql, entries);
  // In this transaction, so an entry that reaches the interval cannot commit without its checkpoint.
  const signing = auditSigning();
  if (signing) {
    let checkpointSeq = BigInt(last.checkpoint_seq ?? "0");
    for (const e of entries)
      if (BigInt(e.seq) - checkpointSeq >= BigInt(signing.every)) {
        await signAndStoreCheckpoint(sql, signing.key, { seq: e.seq, hash: e.hash, at: e.at, entries: e.seq }, "periodic", "system");
        checkpointSeq = BigInt(e.seq);
      }
  }
  return entries;
}
