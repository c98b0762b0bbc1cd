// Verifying the audit log (GET /v1/audit/verify, docs/audit.md): the chain recomputed entry by entry, the
// latest stored checkpoint and a supplied one checked; with deep=true also every document, contract version
// and usage batch recomputed from its rows and compared with the digest its audit entry attests, and the
// hourly usage rollups against the events they sum. All of it in one read-only REPEATABLE READ snapshot, so
// rows committed meanwhile cannot look like tampering.
import type { Database } from "../../db/client.js";
import { eachUsageEventPage, rollupMismatches, uniqueValueMismatches } from "../../db/queries/audit.js";
import type { Sql } from "../../db/sql.js";
import { transaction } from "../../db/tx.js";
import { type SignedCheckpoint, type UsageEventFacts, checkpointSignatureValid, keyIdOf, usageBatchDigest } from "../../domain/audit-signing.js";
import { bodyHash, normalizeQuantity } from "../../domain/usage-rules.js";
import { type AuditEntry, GENESIS_HASH, hashEntry } from "./append.js";
import { auditSigning, latestCheckpoint } from "./checkpoints.js";
import { type Attestation, documentAttestations, versionAttestations } from "./digests.js";
import { listAudit } from "./read.js";

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
const MAX_PROBLEMS = 200;
const PAGE = 5000;

function addProblem(v: AuditVerification, p: AuditProblem): void {
  if (v.problems.length < MAX_PROBLEMS) v.problems.push(p);
  v.ok = false;
}

const LABEL: Record<Attestation["type"], string> = { document: "document", contract_version: "contract version", usage_batch: "usage batch" };

export async function runAuditVerification(db: Database, opts: { deep: boolean; supplied?: SignedCheckpoint }): Promise<AuditVerification> {
  return transaction(
    db,
    async (sql) => {
      // What the chain's entries attest, by type and id (the latest entry wins should one be attested twice).
      const expected = new Map<string, { digest: string; entryId: string }>();
      const v = await verifyAudit(sql, {
        ...(opts.supplied ? { supplied: opts.supplied } : {}),
        ...(opts.deep
          ? {
              visit: (e) => {
                const a = e.payload.attests as Partial<Attestation> | undefined;
                if (a && typeof a.type === "string" && typeof a.id === "string" && typeof a.digest === "string")
                  expected.set(`${a.type}|${a.id}`, { digest: a.digest, entryId: e.id });
              },
            }
          : {}),
      });
      if (!opts.deep) return v;
      v.deep = true;
      const compare = (a: Attestation) => {
        const k = `${a.type}|${a.id}`;
        const want = expected.get(k);
        if (!want)
          addProblem(v, { kind: "unattested", entityType: a.type, entityId: a.id, message: `${LABEL[a.type]} ${a.id} has no audit entry attesting its content` });
        else if (want.digest !== a.digest)
          addProblem(v, {
            kind: "digest_mismatch",
            entityType: a.type,
            entityId: a.id,
            message: `${LABEL[a.type]} ${a.id} no longer matches the digest its audit entry ${want.entryId} recorded: its rows were changed`,
          });
        expected.delete(k);
      };
      for await (const a of documentAttestations(sql)) compare(a);
      for await (const a of versionAttestations(sql)) compare(a);
      await usageBatches(sql, compare, (count) =>
        addProblem(v, {
          kind: "unattested",
          entityType: "usage_event",
          entityId: "batch:none",
          message: `${count} usage event(s) belong to no batch (stored before batches were recorded, or inserted behind the service's back)`,
        }),
      );
      // What is still expected was attested but is no longer there.
      for (const [k, want] of expected) {
        const [type, id] = k.split("|") as [Attestation["type"], string];
        addProblem(v, { kind: "row_missing", entityType: type, entityId: id, message: `${LABEL[type] ?? type} ${id}, attested by audit entry ${want.entryId}, is missing` });
      }
      await rollups(sql, v);
      return v;
    },
    { isolation: "repeatable read", readOnly: true },
  );
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
  const signing = auditSigning();
  const latest = await latestCheckpoint(sql);
  // The entries each checkpoint names, found while walking the chain.
  const wanted = new Set([latest?.seq, opts.supplied?.seq].filter((x): x is string => x !== undefined));
  const atSeq = new Map<string, AuditEntry>();

  let prevHash = GENESIS_HASH;
  let afterSeq = "0";
  let expectedSeq = 1n;
  for (;;) {
    const page = await listAudit(sql, { afterSeq, limit: PAGE });
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
    if (page.length < PAGE) break;
    afterSeq = page[page.length - 1]!.seq;
  }

  const head = v.entries === 0 ? 0n : expectedSeq - 1n;
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
  const check = (cp: SignedCheckpoint, source: string, entityId: string): CheckpointCheck => {
    const problem = checkpointProblem(cp, source, entityId);
    if (problem) addProblem(v, problem);
    return { seq: cp.seq, at: cp.at, keyId: cp.keyId, verified: problem === null };
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

/**
 * Every event grouped by batch (one batch in memory at a time): each batch's digest recomputed, the body hash
 * from the stored columns with the same functions ingestion used.
 */
async function usageBatches(sql: Sql, compare: (a: Attestation) => void, orphans: (count: number) => void): Promise<void> {
  let current: string | null | undefined;
  let facts: UsageEventFacts[] = [];
  const flush = () => {
    if (current === undefined) return;
    if (current === null) orphans(facts.length);
    else compare({ type: "usage_batch", id: current, digest: usageBatchDigest(facts) });
    facts = [];
  };
  await eachUsageEventPage(sql, PAGE, (rows) => {
    for (const r of rows) {
      if (r.batch_id !== current) {
        flush();
        current = r.batch_id;
      }
      const properties = r.properties === null ? undefined : (JSON.parse(r.properties) as unknown);
      facts.push({
        customerId: r.customer_id,
        eventId: r.event_id,
        bodyHash: bodyHash({ metric: r.metric, quantity: normalizeQuantity(r.quantity) ?? r.quantity, timestamp: r.occurred, properties }),
        storedBodyHash: r.body_hash,
        late: r.late,
      });
    }
  });
  flush();
}

/** The hourly and distinct-value rollups must equal the non-voided events they stand for (true-ups read them). */
async function rollups(sql: Sql, v: AuditVerification): Promise<void> {
  for (const r of await rollupMismatches(sql))
    addProblem(v, {
      kind: "rollup_mismatch",
      entityType: "usage_rollup",
      entityId: `${r.customer_id}|${r.metric}|${r.hour}`,
      message: `the hourly rollup holds ${r.stored ?? "nothing"} event(s) but the events sum to ${r.actual ?? "0 in 0"}`,
    });
  for (const r of await uniqueValueMismatches(sql))
    addProblem(v, {
      kind: "rollup_mismatch",
      entityType: "usage_unique_value",
      entityId: `${r.customer_id}|${r.metric}|${r.property}|${r.month}|${r.value}`,
      message: `the distinct-value rollup holds the value in ${r.stored ?? "no hours"} but the events have it in ${r.actual ?? "no hours"}`,
    });
}
