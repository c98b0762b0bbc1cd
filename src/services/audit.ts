// The audit log (DESIGN.md section 6): one append-only, hash-chained table.
// hash = sha256(prevHash + canonical JSON of { id, seq, at, actor, action, entityType, entityId, payload }).
// Appending takes a transaction-scoped advisory lock so the chain has one writer at a time; callers append
// as the last step of their transaction to hold it briefly.
import { createHash } from "node:crypto";
import { canonicalJson } from "../domain/canonical-json.js";
import { newId } from "../db/ids.js";
import type { Sql } from "../db/tx.js";

const AUDIT_LOCK = 4_242_001;
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
  return createHash("sha256").update(prevHash + body).digest("hex");
}

export async function appendAudit(sql: Sql, input: AuditInput): Promise<AuditEntry> {
  await sql.query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1::bigint)", [AUDIT_LOCK]);
  const [last] = await sql.query<{ seq: string; hash: string }>(
    // ORDER BY the column, not the text alias: "9" > "10" as text, which would reuse a seq.
    "SELECT seq::text AS seq, hash FROM audit_log ORDER BY audit_log.seq DESC LIMIT 1",
  );
  const prevHash = last?.hash ?? GENESIS_HASH;
  // JSON round trip: what we hash must be exactly what jsonb gives back (no undefined, no Decimal objects).
  const payload = JSON.parse(canonicalJson(input.payload)) as Record<string, unknown>;
  const entry = {
    ...input,
    payload,
    id: newId(),
    seq: (BigInt(last?.seq ?? "0") + 1n).toString(),
    at: new Date().toISOString(),
  };
  const hash = hashEntry(prevHash, entry);
  await sql.query(
    `INSERT INTO audit_log (id, seq, at, actor, action, entity_type, entity_id, payload, prev_hash, hash)
     VALUES ($1::uuid, $2::bigint, $3::timestamptz, $4, $5, $6, $7, $8::jsonb, $9, $10)`,
    [entry.id, entry.seq, entry.at, entry.actor, entry.action, entry.entityType, entry.entityId, JSON.stringify(payload), prevHash, hash],
  );
  return { ...entry, prevHash, hash };
}

interface AuditRow {
  id: string;
  seq: string;
  at: Date;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string;
  payload: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

const toEntry = (r: AuditRow): AuditEntry => ({
  id: r.id,
  seq: r.seq,
  at: r.at.toISOString(),
  actor: r.actor,
  action: r.action,
  entityType: r.entity_type,
  entityId: r.entity_id,
  payload: r.payload,
  prevHash: r.prev_hash,
  hash: r.hash,
});

const COLUMNS = "id::text AS id, seq::text AS seq, at, actor, action, entity_type, entity_id, payload, prev_hash, hash";

export async function listAudit(sql: Sql, q: { entityId?: string; afterSeq?: string; limit: number }): Promise<AuditEntry[]> {
  const rows = await sql.query<AuditRow>(
    `SELECT ${COLUMNS} FROM audit_log
     WHERE ($1::text IS NULL OR entity_id = $1) AND seq > $2::bigint
     ORDER BY audit_log.seq LIMIT $3`,
    [q.entityId ?? null, q.afterSeq ?? "0", q.limit],
  );
  return rows.map(toEntry);
}

/** Recomputes the whole chain in pages; names the first entry whose link or hash does not hold. */
export async function verifyAudit(sql: Sql): Promise<{ ok: boolean; entries: number; firstBrokenId: string | null }> {
  let prevHash = GENESIS_HASH;
  let afterSeq = "0";
  let entries = 0;
  let expectedSeq = 1n;
  for (;;) {
    const page = await listAudit(sql, { afterSeq, limit: 5000 });
    for (const e of page) {
      entries++;
      const broken = e.prevHash !== prevHash || BigInt(e.seq) !== expectedSeq || hashEntry(prevHash, e) !== e.hash;
      if (broken) return { ok: false, entries, firstBrokenId: e.id };
      prevHash = e.hash;
      expectedSeq++;
    }
    if (page.length < 5000) return { ok: true, entries, firstBrokenId: null };
    afterSeq = page[page.length - 1]!.seq;
  }
}
