// GET /v1/audit/verify (docs/audit.md): the chain and its checkpoints (services/audit.ts), and with deep=true
// every document, contract version and usage batch recomputed from its rows and compared with the digest its
// audit entry attests, plus the hourly usage rollups against the events they sum. All of it in one
// read-only REPEATABLE READ snapshot, so rows committed meanwhile cannot look like tampering.
import type { Database } from "../db/client.js";
import { pgSql, type Sql } from "../db/tx.js";
import { type SignedCheckpoint, type UsageEventFacts, usageBatchDigest } from "../domain/audit-signing.js";
import { type AuditVerification, addProblem, verifyAudit } from "./audit.js";
import { type Attestation, documentAttestations, versionAttestations } from "./audit-digests.js";
import { bodyHash, normalizeQuantity } from "./usage.js";

const LABEL: Record<Attestation["type"], string> = { document: "document", contract_version: "contract version", usage_batch: "usage batch" };

export async function runAuditVerification(db: Database, opts: { deep: boolean; supplied?: SignedCheckpoint }): Promise<AuditVerification> {
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const sql = pgSql(client);
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
    if (opts.deep) {
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
      await usageBatches(client, sql, compare, (count) =>
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
    }
    await client.query("COMMIT");
    return v;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

interface EventRow {
  batch_id: string | null;
  customer_id: string;
  event_id: string;
  metric: string;
  quantity: string;
  occurred: string;
  properties: string | null;
  body_hash: string;
  late: boolean;
}

/**
 * Streams every event grouped by batch through a cursor (one sort, one batch in memory at a time) and
 * recomputes each batch's digest: the body hash from the stored columns, with the same functions ingestion used.
 */
async function usageBatches(
  client: { query(text: string): Promise<{ rows: unknown[] }> },
  sql: Sql,
  compare: (a: Attestation) => void,
  orphans: (count: number) => void,
): Promise<void> {
  await client.query(
    `DECLARE audit_usage NO SCROLL CURSOR FOR
     SELECT batch_id::text AS batch_id, customer_id, event_id, metric, quantity::text AS quantity,
            to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred, properties::text AS properties, body_hash, late
     FROM usage_events ORDER BY batch_id NULLS FIRST`,
  );
  let current: string | null | undefined;
  let facts: UsageEventFacts[] = [];
  const flush = () => {
    if (current === undefined) return;
    if (current === null) orphans(facts.length);
    else compare({ type: "usage_batch", id: current, digest: usageBatchDigest(facts) });
    facts = [];
  };
  for (;;) {
    const rows = await sql.query<EventRow>("FETCH 5000 FROM audit_usage");
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
    if (rows.length < 5000) break;
  }
  flush();
  await client.query("CLOSE audit_usage");
}

/** The hourly rollups must equal the sums of the non-voided events they stand for (true-ups read them). */
async function rollups(sql: Sql, v: AuditVerification): Promise<void> {
  const rows = await sql.query<{ customer_id: string; metric: string; hour: string; stored: string | null; actual: string | null }>(
    `WITH actual AS (
       SELECT customer_id, metric, date_trunc('hour', occurred_at, 'UTC') AS hour, sum(quantity) AS quantity, count(*) AS events
       FROM usage_events WHERE voided_at IS NULL GROUP BY 1, 2, 3)
     SELECT coalesce(r.customer_id, a.customer_id) AS customer_id, coalesce(r.metric, a.metric) AS metric,
            to_char(coalesce(r.hour, a.hour) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS hour,
            r.quantity::text || ' in ' || r.events AS stored, a.quantity::text || ' in ' || a.events AS actual
     FROM usage_rollups r FULL JOIN actual a ON a.customer_id = r.customer_id AND a.metric = r.metric AND a.hour = r.hour
     WHERE r.quantity IS DISTINCT FROM coalesce(a.quantity, 0) OR r.events IS DISTINCT FROM coalesce(a.events, 0)
     LIMIT 200`,
  );
  for (const r of rows)
    addProblem(v, {
      kind: "rollup_mismatch",
      entityType: "usage_rollup",
      entityId: `${r.customer_id}|${r.metric}|${r.hour}`,
      message: `the hourly rollup holds ${r.stored ?? "nothing"} event(s) but the events sum to ${r.actual ?? "0 in 0"}`,
    });
}
