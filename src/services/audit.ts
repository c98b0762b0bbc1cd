// The audit log (docs/audit.md): one append-only, hash-chained table.
// hash = sha256(prevHash + canonical JSON of { id, seq, at, actor, action, entityType, entityId, payload }).
// Appending takes a transaction-scoped advisory lock so the chain has one writer at a time; callers append
// as the last step of their transaction to hold it briefly.
//
// The chain alone proves nothing against whoever can rewrite the table: they can recompute every hash. So the
// head is also signed (HMAC-SHA256, key outside PostgreSQL) into audit_checkpoints, every
// AUDIT_CHECKPOINT_EVERY entries inside the appending transaction and on demand; verify checks the latest
// checkpoint, and one held outside when given.
import { createHash } from "node:crypto";
import {
  type SignedCheckpoint,
  checkpointSignatureValid,
  encodeCheckpointToken,
  keyIdOf,
  signCheckpoint,
} from "../domain/audit-signing.js";
import { canonicalJson } from "../domain/canonical-json.js";
import { conflict } from "../http/problems.js";
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

export async function appendAudit(sql: Sql, input: AuditInput): Promise<AuditEntry> {
  await sql.query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1::bigint)", [AUDIT_LOCK]);
  // The head and the latest checkpoint's seq in one round trip (always one row, also on an empty log).
  const [last] = await sql.query<{ seq: string | null; hash: string | null; checkpoint_seq: string | null }>(
    // ORDER BY the column, not a text alias: "9" > "10" as text, which would reuse a seq.
    `SELECT l.seq::text AS seq, l.hash, (SELECT max(c.seq) FROM audit_checkpoints c)::text AS checkpoint_seq
     FROM (SELECT 1) AS one
     LEFT JOIN LATERAL (SELECT audit_log.seq, audit_log.hash FROM audit_log ORDER BY audit_log.seq DESC LIMIT 1) AS l ON true`,
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
  // In this transaction, so an entry that reaches the interval cannot commit without its checkpoint.
  if (signing && BigInt(entry.seq) - BigInt(last?.checkpoint_seq ?? "0") >= BigInt(signing.every))
    await insertCheckpoint(sql, signing.key, { seq: entry.seq, hash, at: entry.at, entries: entry.seq }, "periodic", "system");
  return { ...entry, prevHash, hash };
}

// ---------------------------------------------------------------------------------------------------------
// Checkpoints

export interface CheckpointView extends SignedCheckpoint {
  id: string;
  reason: "periodic" | "on_demand";
  createdBy: string;
  /** The signed checkpoint as one string, to keep outside and pass to GET /v1/audit/verify?checkpoint=. */
  token: string;
}

async function insertCheckpoint(
  sql: Sql,
  key: Buffer,
  claim: { seq: string; hash: string; at: string; entries: string },
  reason: CheckpointView["reason"],
  actor: string,
): Promise<CheckpointView> {
  const cp = signCheckpoint(key, claim);
  const id = newId();
  await sql.query(
    `INSERT INTO audit_checkpoints (id, seq, hash, entries, at, key_id, signature, reason, created_by)
     VALUES ($1::uuid, $2::bigint, $3, $4::bigint, $5::timestamptz, $6, $7, $8, $9)`,
    [id, cp.seq, cp.hash, cp.entries, cp.at, cp.keyId, cp.signature, reason, actor],
  );
  return { ...cp, id, reason, createdBy: actor, token: encodeCheckpointToken(cp) };
}

function requireSigning(): AuditSigning {
  if (!signing) throw new Error("audit signing is not configured (buildApp configures it)");
  return signing;
}

/** Signs the current head now (POST /v1/audit/checkpoints). An empty log has nothing to sign → 409. */
export async function createCheckpoint(sql: Sql, actor: string): Promise<CheckpointView> {
  const { key } = requireSigning();
  // The committed head: a checkpoint of it stays true however many entries are appended meanwhile. seq is
  // gapless from 1, so it is also the number of entries (verify checks that it is).
  const [head] = await sql.query<{ seq: string; hash: string }>(
    "SELECT seq::text AS seq, hash FROM audit_log ORDER BY audit_log.seq DESC LIMIT 1",
  );
  if (!head) throw conflict("the audit log is empty: there is no head to sign yet");
  return insertCheckpoint(sql, key, { seq: head.seq, hash: head.hash, at: new Date().toISOString(), entries: head.seq }, "on_demand", actor);
}

interface CheckpointRow {
  id: string;
  seq: string;
  hash: string;
  entries: string;
  at: Date;
  key_id: string;
  signature: string;
  reason: CheckpointView["reason"];
  created_by: string;
}

const CHECKPOINT_COLUMNS = "id::text AS id, seq::text AS seq, hash, entries::text AS entries, at, key_id, signature, reason, created_by";

function toCheckpoint(r: CheckpointRow): CheckpointView {
  const cp: SignedCheckpoint = { seq: r.seq, hash: r.hash, at: r.at.toISOString(), entries: r.entries, keyId: r.key_id, signature: r.signature };
  return { ...cp, id: r.id, reason: r.reason, createdBy: r.created_by, token: encodeCheckpointToken(cp) };
}

/** Newest first; the cursor is the last id of the previous page (ids are time-ordered). */
export async function listCheckpoints(sql: Sql, q: { beforeId?: string | undefined; limit: number }): Promise<CheckpointView[]> {
  const rows = await sql.query<CheckpointRow>(
    `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE ($1::uuid IS NULL OR id < $1::uuid) ORDER BY id DESC LIMIT $2`,
    [q.beforeId ?? null, q.limit],
  );
  return rows.map(toCheckpoint);
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

export interface AuditProblem {
  kind:
    | "chain_broken"
    | "checkpoint_invalid"
    | "checkpoint_mismatch"
    | "chain_truncated"
    | "checkpoint_missing"
    | "digest_mismatch"
    | "row_missing"
    | "unattested"
    | "rollup_mismatch";
  entityType: string;
  entityId: string;
  message: string;
}

export interface CheckpointCheck {
  seq: string;
  at: string;
  keyId: string;
  /** The signature holds with our key, the entry at seq has the signed hash, and the chain reaches seq. */
  verified: boolean;
}

export interface AuditVerification {
  ok: boolean;
  entries: number;
  firstBrokenId: string | null;
  /** The latest stored checkpoint, or null when there is none. */
  checkpoint: CheckpointCheck | null;
  /** The checkpoint given with ?checkpoint=, or null when none was given. */
  suppliedCheckpoint: CheckpointCheck | null;
  deep: boolean;
  problems: AuditProblem[];
}

/** Report at most this many problems: a wholesale rewrite must not make the answer unbounded. */
export const MAX_PROBLEMS = 200;

export function addProblem(v: AuditVerification, p: AuditProblem): void {
  if (v.problems.length < MAX_PROBLEMS) v.problems.push(p);
  v.ok = false;
}

/**
 * Recomputes the whole chain in pages and names every entry whose link or hash does not hold (the first is
 * firstBrokenId); then checks the latest stored checkpoint and the supplied one, if any. `visit` sees every
 * entry (a deep verify collects the digests they attest). Run it inside one snapshot for a consistent answer.
 */
export async function verifyAudit(
  sql: Sql,
  opts: { supplied?: SignedCheckpoint; visit?: (e: AuditEntry) => void } = {},
): Promise<AuditVerification> {
  const v: AuditVerification = { ok: true, entries: 0, firstBrokenId: null, checkpoint: null, suppliedCheckpoint: null, deep: false, problems: [] };
  const [latestRow] = await sql.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC, id DESC LIMIT 1`);
  const latest = latestRow ? toCheckpoint(latestRow) : null;
  // The entries each checkpoint names, found while walking the chain.
  const wanted = new Set([latest?.seq, opts.supplied?.seq].filter((x): x is string => x !== undefined));
  const atSeq = new Map<string, AuditEntry>();

  let prevHash = GENESIS_HASH;
  let afterSeq = "0";
  let expectedSeq = 1n;
  for (;;) {
    const page = await listAudit(sql, { afterSeq, limit: 5000 });
    for (const e of page) {
      v.entries++;
      if (wanted.has(e.seq)) atSeq.set(e.seq, e);
      opts.visit?.(e);
      const seq = BigInt(e.seq);
      let why: string | null = null;
      if (seq !== expectedSeq) why = `seq ${e.seq} follows ${expectedSeq - 1n}: ${seq > expectedSeq ? "entries are missing" : "seq repeats"}`;
      else if (e.prevHash !== prevHash) why = "prevHash is not the previous entry's hash";
      else if (hashEntry(prevHash, e) !== e.hash) why = "hash does not match the entry's content";
      if (why) {
        v.firstBrokenId ??= e.id;
        addProblem(v, { kind: "chain_broken", entityType: "audit_entry", entityId: e.id, message: `entry seq ${e.seq}: ${why}` });
      }
      // Continue from what is stored, so one edited entry is reported once, not with everything after it.
      prevHash = e.hash;
      expectedSeq = seq + 1n;
    }
    if (page.length < 5000) break;
    afterSeq = page[page.length - 1]!.seq;
  }

  const head = v.entries === 0 ? 0n : expectedSeq - 1n;
  const check = (cp: SignedCheckpoint, source: string, entityId: string): CheckpointCheck => {
    const problem = checkpointProblem(cp, source, entityId);
    if (problem) addProblem(v, problem);
    return { seq: cp.seq, at: cp.at, keyId: cp.keyId, verified: problem === null };
  };
  const checkpointProblem = (cp: SignedCheckpoint, source: string, entityId: string): AuditProblem | null => {
    const key = signing?.key;
    if (!key || !checkpointSignatureValid(key, cp)) {
      const why = !key
        ? "no signing key is configured to check it"
        : cp.keyId !== keyIdOf(key)
          ? `it was signed by another key (keyId ${cp.keyId}; ours is ${keyIdOf(key)})`
          : "its signature does not match its content";
      return { kind: "checkpoint_invalid", entityType: "audit_checkpoint", entityId, message: `the ${source} checkpoint of seq ${cp.seq}: ${why}` };
    }
    if (BigInt(cp.seq) > head || BigInt(cp.entries) > BigInt(v.entries))
      return {
        kind: "chain_truncated",
        entityType: "audit_checkpoint",
        entityId,
        message: `the ${source} checkpoint signed seq ${cp.seq} (${cp.entries} entries) at ${cp.at}, but the chain ends at seq ${head} with ${v.entries} entries: entries were removed`,
      };
    const e = atSeq.get(cp.seq);
    if (!e || e.hash !== cp.hash)
      return {
        kind: "checkpoint_mismatch",
        entityType: "audit_entry",
        entityId: e?.id ?? `seq:${cp.seq}`,
        message: `the ${source} checkpoint signed hash ${cp.hash} for seq ${cp.seq} at ${cp.at}; the entry there ${e ? `has ${e.hash}: it was rewritten` : "is missing"}`,
      };
    return null;
  };
  if (latest) v.checkpoint = check(latest, "latest stored", latest.id);
  if (opts.supplied) v.suppliedCheckpoint = check(opts.supplied, "supplied", "supplied");
  // Periodic checkpoints keep the head within `every` entries of the latest one; a longer tail means the latest
  // checkpoint rows were removed (or the interval was lowered since: the next entry writes one).
  if (signing && head - BigInt(latest?.seq ?? "0") >= BigInt(signing.every))
    addProblem(v, {
      kind: "checkpoint_missing",
      entityType: "audit_checkpoint",
      entityId: latest?.id ?? "none",
      message: `the chain is at seq ${head} but the latest checkpoint is at ${latest?.seq ?? "none"}: one is written every ${signing.every} entries`,
    });
  return v;
}
