// Signed checkpoints of the audit chain's head (docs/audit.md). The chain alone proves nothing against whoever
// can rewrite the table: they can recompute every hash. So the head is also signed (HMAC-SHA256, key outside
// PostgreSQL) into audit_checkpoints, every AUDIT_CHECKPOINT_EVERY entries inside the appending transaction
// (append.ts) and on demand (POST /v1/audit/checkpoints); verify checks the latest one, and one held outside.
import { newId } from "../../db/ids.js";
import { type CheckpointRow, checkpointRows, headEntry, insertCheckpoint, latestCheckpointRow } from "../../db/queries/audit.js";
import type { Sql } from "../../db/sql.js";
import { type SignedCheckpoint, encodeCheckpointToken, signCheckpoint } from "../../domain/audit-signing.js";
import { conflict } from "../../errors.js";

export interface AuditSigning {
  key: Buffer;
  /** A periodic checkpoint once the head is this many entries past the latest checkpoint. */
  every: number;
}

// One signing key per process, set by buildApp (the services append with only a SQL handle in hand). Without
// it (a script calling services directly) entries are appended without periodic checkpoints.
let signing: AuditSigning | null = null;

export function configureAuditSigning(s: AuditSigning | null): void {
  signing = s;
}

export function auditSigning(): AuditSigning | null {
  return signing;
}

export interface CheckpointView extends SignedCheckpoint {
  id: string;
  reason: "periodic" | "on_demand";
  createdBy: string;
  /** The signed checkpoint as one string, to keep outside and pass to GET /v1/audit/verify?checkpoint=. */
  token: string;
}

/** Signs the claim with the key and stores the checkpoint. */
export async function signAndStoreCheckpoint(
  sql: Sql,
  key: Buffer,
  claim: { seq: string; hash: string; at: string; entries: string },
  reason: CheckpointView["reason"],
  actor: string,
): Promise<CheckpointView> {
  const cp = signCheckpoint(key, claim);
  const id = newId();
  await insertCheckpoint(sql, { ...cp, id, reason, createdBy: actor });
  return { ...cp, id, reason, createdBy: actor, token: encodeCheckpointToken(cp) };
}

/** Signs the current head now (POST /v1/audit/checkpoints). An empty log has nothing to sign → 409. */
export async function createCheckpoint(sql: Sql, actor: string): Promise<CheckpointView> {
  if (!signing) throw new Error("audit signing is not configured (buildApp configures it)");
  // The committed head: a checkpoint of it stays true however many entries are appended meanwhile. seq is
  // gapless from 1, so it is also the number of entries (verify checks that it is).
  const head = await headEntry(sql);
  if (!head) throw conflict("the audit log is empty: there is no head to sign yet");
  return signAndStoreCheckpoint(sql, signing.key, { seq: head.seq, hash: head.hash, at: new Date().toISOString(), entries: head.seq }, "on_demand", actor);
}

function toCheckpoint(r: CheckpointRow): CheckpointView {
  const cp: SignedCheckpoint = { seq: r.seq, hash: r.hash, at: r.at.toISOString(), entries: r.entries, keyId: r.key_id, signature: r.signature };
  return { ...cp, id: r.id, reason: r.reason, createdBy: r.created_by, token: encodeCheckpointToken(cp) };
}

/** Newest first; the cursor is the last id of the previous page (ids are time-ordered). */
export async function listCheckpoints(sql: Sql, q: { beforeId?: string | undefined; limit: number }): Promise<CheckpointView[]> {
  return (await checkpointRows(sql, { beforeId: q.beforeId ?? null, limit: q.limit })).map(toCheckpoint);
}

export async function latestCheckpoint(sql: Sql): Promise<CheckpointView | null> {
  const row = await latestCheckpointRow(sql);
  return row ? toCheckpoint(row) : null;
}
