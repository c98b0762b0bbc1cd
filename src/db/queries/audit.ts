// Audit SQL: the hash-chained log, its signed checkpoints, and the rows a deep verify recomputes.
import type { Sql } from "../sql.js";
import { NO_HOURS, dimsOf, distinctValuesOfEvents } from "./usage.js";

/** The chain's one writer at a time: a transaction-scoped advisory lock. */
const AUDIT_LOCK = 4_242_001;

export async function lockAuditChain(sql: Sql): Promise<void> {
  await sql.query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1::bigint)", [AUDIT_LOCK], "lock_audit_chain");
}

/** The head and the latest checkpoint's seq in one round trip (always one row, also on an empty log). */
export async function chainHead(sql: Sql): Promise<{ seq: string | null; hash: string | null; checkpoint_seq: string | null }> {
  const [row] = await sql.query<{ seq: string | null; hash: string | null; checkpoint_seq: string | null }>(
    // ORDER BY the column, not a text alias: "9" > "10" as text, which would reuse a seq.
    `SELECT l.seq::text AS seq, l.hash, (SELECT max(c.seq) FROM audit_checkpoints c)::text AS checkpoint_seq
     FROM (SELECT 1) AS one
     LEFT JOIN LATERAL (SELECT audit_log.seq, audit_log.hash FROM audit_log ORDER BY audit_log.seq DESC LIMIT 1) AS l ON true`,
    [],
    "audit_chain_head",
  );
  return row ?? { seq: null, hash: null, checkpoint_seq: null };
}

/** The committed head entry, or undefined on an empty log. */
export async function headEntry(sql: Sql): Promise<{ seq: string; hash: string } | undefined> {
  const [row] = await sql.query<{ seq: string; hash: string }>("SELECT seq::text AS seq, hash FROM audit_log ORDER BY audit_log.seq DESC LIMIT 1");
  return row;
}

export interface AuditRow {
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

const ENTRY_COLUMNS = "id::text AS id, seq::text AS seq, at, actor, action, entity_type, entity_id, payload, prev_hash, hash";

export interface AuditEntryInsert {
  id: string;
  seq: string;
  at: string;
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  payload: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** Entries in one statement (a chunk's appends); the payload goes as JSON text, read back as jsonb. */
export async function insertAuditEntries(sql: Sql, entries: readonly AuditEntryInsert[]): Promise<void> {
  await sql.query(
    `INSERT INTO audit_log (id, seq, at, actor, action, entity_type, entity_id, payload, prev_hash, hash)
     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::text[], $10::text[])`,
    [
      entries.map((e) => e.id),
      entries.map((e) => e.seq),
      entries.map((e) => e.at),
      entries.map((e) => e.actor),
      entries.map((e) => e.action),
      entries.map((e) => e.entityType),
      entries.map((e) => e.entityId),
      entries.map((e) => JSON.stringify(e.payload)),
      entries.map((e) => e.prevHash),
      entries.map((e) => e.hash),
    ],
    "insert_audit_entries",
  );
}

/** Entries in chain order after `afterSeq`, optionally of one entity. */
export async function auditRows(sql: Sql, q: { entityId: string | null; afterSeq: string; limit: number }): Promise<AuditRow[]> {
  return sql.query<AuditRow>(
    `SELECT ${ENTRY_COLUMNS} FROM audit_log
     WHERE ($1::text IS NULL OR entity_id = $1) AND seq > $2::bigint
     ORDER BY audit_log.seq LIMIT $3`,
    [q.entityId, q.afterSeq, q.limit],
  );
}

// ---------------------------------------------------------------------------------------------------------
// Checkpoints

export interface CheckpointRow {
  id: string;
  seq: string;
  hash: string;
  entries: string;
  at: Date;
  key_id: string;
  signature: string;
  reason: "periodic" | "on_demand";
  created_by: string;
}

const CHECKPOINT_COLUMNS = "id::text AS id, seq::text AS seq, hash, entries::text AS entries, at, key_id, signature, reason, created_by";

export async function insertCheckpoint(
  sql: Sql,
  c: { id: string; seq: string; hash: string; entries: string; at: string; keyId: string; signature: string; reason: CheckpointRow["reason"]; createdBy: string },
): Promise<void> {
  await sql.query(
    `INSERT INTO audit_checkpoints (id, seq, hash, entries, at, key_id, signature, reason, created_by)
     VALUES ($1::uuid, $2::bigint, $3, $4::bigint, $5::timestamptz, $6, $7, $8, $9)`,
    [c.id, c.seq, c.hash, c.entries, c.at, c.keyId, c.signature, c.reason, c.createdBy],
  );
}

/** Newest first; the cursor is the last id of the previous page (ids are time-ordered). */
export async function checkpointRows(sql: Sql, q: { beforeId: string | null; limit: number }): Promise<CheckpointRow[]> {
  return sql.query<CheckpointRow>(
    `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE ($1::uuid IS NULL OR id < $1::uuid) ORDER BY id DESC LIMIT $2`,
    [q.beforeId, q.limit],
  );
}

export async function latestCheckpointRow(sql: Sql): Promise<CheckpointRow | undefined> {
  const [row] = await sql.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC, id DESC LIMIT 1`);
  return row;
}

// ---------------------------------------------------------------------------------------------------------
// The rows audit entries attest, each read as one JSON record of text values (instants through to_char,
// decimals as text) so the digest at write time and at verify time see the same bytes.

const ts = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** A document with its lines and credit drawdowns. */
const DOCUMENT_RECORD_SQL = `
  SELECT d.id::text AS id, json_build_object(
    'id', d.id, 'number', d.number, 'kind', d.kind, 'kindSeq', d.kind_seq, 'contractId', d.contract_id,
    'periodStart', ${ts("d.period_start")}, 'periodEnd', ${ts("d.period_end")}, 'currency', d.currency,
    'subtotal', d.subtotal::text, 'alreadyBilled', d.already_billed::text, 'amount', d.amount::text,
    'creditsApplied', d.credits_applied, 'calculationId', d.calculation_id, 'inputsHash', d.inputs_hash,
    'issuedAt', ${ts("d.issued_at")}, 'issuedBy', d.issued_by,
    'lines', (SELECT coalesce(json_agg(json_build_object('lineNo', l.line_no, 'kind', l.kind, 'metric', l.metric,
                'amount', l.amount::text, 'explanation', l.explanation)), '[]'::json)
              FROM document_lines l WHERE l.document_id = d.id),
    'drawdowns', (SELECT coalesce(json_agg(json_build_object('grantId', c.grant_id, 'contractId', c.contract_id,
                'periodStart', ${ts("c.period_start")}, 'amount', c.amount::text)), '[]'::json)
              FROM credit_drawdowns c WHERE c.document_id = d.id)
  )::text AS record
  FROM documents d`;

/** Several documents' records in one round trip (a billing run chunk's), by id. */
export async function documentRecordsOf(sql: Sql, ids: readonly string[]): Promise<Map<string, string>> {
  const rows = await sql.query<{ id: string; record: string }>(`${DOCUMENT_RECORD_SQL} WHERE d.id = ANY($1::uuid[])`, [ids]);
  return new Map(rows.map((r) => [r.id, r.record]));
}

export async function documentRecord(sql: Sql, id: string): Promise<string | undefined> {
  const [row] = await sql.query<{ record: string }>(`${DOCUMENT_RECORD_SQL} WHERE d.id = $1::uuid`, [id]);
  return row?.record;
}

/** A page of document records in id order, after `after`. */
export async function documentRecords(sql: Sql, after: string, limit: number): Promise<{ id: string; record: string }[]> {
  return sql.query<{ id: string; record: string }>(`${DOCUMENT_RECORD_SQL} WHERE d.id > $1::uuid ORDER BY d.id LIMIT $2`, [after, limit]);
}

/** A contract version with its contract's header. */
const VERSION_RECORD_SQL = `
  SELECT v.id::text AS id, v.contract_id::text AS contract_id, v.version, json_build_object(
    'contract', json_build_object('id', c.id, 'customerId', c.customer_id, 'accountIds', c.account_ids, 'name', c.name,
      'currency', c.currency, 'timezone', c.timezone, 'billingPeriod', c.billing_period, 'startDate', c.start_date::text,
      'endDate', c.end_date::text, 'termStart', ${ts("c.term_start")}, 'termEnd', ${ts("c.term_end")},
      'roundingMode', c.rounding_mode, 'allowTrueDown', c.allow_true_down, 'createdBy', c.created_by),
    'version', v.version, 'effectiveFrom', ${ts("v.effective_from")}, 'signedAt', ${ts("v.signed_at")},
    'kind', v.kind, 'reason', v.reason, 'terms', v.terms, 'createdBy', v.created_by
  )::text AS record
  FROM contract_versions v JOIN contracts c ON c.id = v.contract_id`;

export async function versionRecord(sql: Sql, contractId: string, version: number): Promise<string | undefined> {
  const [row] = await sql.query<{ record: string }>(`${VERSION_RECORD_SQL} WHERE v.contract_id = $1::uuid AND v.version = $2::int`, [contractId, version]);
  return row?.record;
}

/** A page of contract version records in id order, after `after`. */
export async function versionRecords(sql: Sql, after: string, limit: number): Promise<{ id: string; contract_id: string; version: number; record: string }[]> {
  return sql.query<{ id: string; contract_id: string; version: number; record: string }>(
    `${VERSION_RECORD_SQL} WHERE v.id > $1::uuid ORDER BY v.id LIMIT $2`,
    [after, limit],
  );
}

export interface UsageEventRecord {
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
 * Every usage event grouped by batch, through a cursor (one sort, one page in memory at a time); call inside
 * a transaction. `page` sees each page in order.
 */
export async function eachUsageEventPage(sql: Sql, pageSize: number, page: (rows: UsageEventRecord[]) => void): Promise<void> {
  await sql.query(
    `DECLARE audit_usage NO SCROLL CURSOR FOR
     SELECT batch_id::text AS batch_id, customer_id, event_id, metric, quantity::text AS quantity,
            ${ts("occurred_at")} AS occurred, properties::text AS properties, body_hash, late
     FROM usage_events ORDER BY batch_id NULLS FIRST`,
  );
  for (;;) {
    const rows = await sql.query<UsageEventRecord>(`FETCH ${pageSize} FROM audit_usage`);
    page(rows);
    if (rows.length < pageSize) break;
  }
  await sql.query("CLOSE audit_usage");
}

/**
 * The distinct-value rollups that differ from the non-voided events they stand for (at most 200): per id, metric,
 * unique_count property (usage_dimensions.unique_by), UTC month, dimensions and value, the hours it occurs in.
 */
export async function uniqueValueMismatches(sql: Sql): Promise<{ customer_id: string; metric: string; property: string; month: string; value: string; stored: string | null; actual: string | null }[]> {
  return sql.query(
    `WITH actual AS (${distinctValuesOfEvents("TRUE")})
     SELECT coalesce(u.customer_id, a.customer_id) AS customer_id, coalesce(u.metric, a.metric) AS metric,
            coalesce(u.property, a.property) AS property,
            to_char(coalesce(u.month, a.month) AT TIME ZONE 'UTC', 'YYYY-MM') AS month, coalesce(u.value, a.value) AS value,
            bit_count(u.hours) || ' hour(s)' AS stored, bit_count(a.hours) || ' hour(s)' AS actual
     FROM usage_unique_values u FULL JOIN actual a
       ON a.customer_id = u.customer_id AND a.metric = u.metric AND a.property = u.property AND a.month = u.month
      AND a.dims = u.dims AND a.value = u.value
     WHERE coalesce(u.hours, ${NO_HOURS}) IS DISTINCT FROM coalesce(a.hours, ${NO_HOURS})
     LIMIT 200`,
  );
}

/**
 * The hourly rollups that differ from the non-voided events they stand for (at most 200): per id, metric, hour
 * and dimensions (usage_dimensions), the sum, the count and the largest quantity.
 */
export async function rollupMismatches(sql: Sql): Promise<{ customer_id: string; metric: string; hour: string; stored: string | null; actual: string | null }[]> {
  return sql.query(
    `WITH actual AS (
       SELECT e.customer_id, e.metric, date_trunc('hour', e.occurred_at, 'UTC') AS hour,
              ${dimsOf("e.properties")} AS dims,
              sum(e.quantity) AS quantity, count(*) AS events, max(e.quantity) AS max_quantity
       FROM usage_events e LEFT JOIN usage_dimensions d ON d.customer_id = e.customer_id AND d.metric = e.metric
       WHERE e.voided_at IS NULL GROUP BY 1, 2, 3, 4)
     SELECT coalesce(r.customer_id, a.customer_id) AS customer_id, coalesce(r.metric, a.metric) AS metric,
            to_char(coalesce(r.hour, a.hour) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS hour,
            r.quantity::text || ' in ' || r.events || coalesce(', peak ' || r.max_quantity::text, '') || ' ' || r.dims AS stored,
            a.quantity::text || ' in ' || a.events || coalesce(', peak ' || a.max_quantity::text, '') || ' ' || a.dims AS actual
     FROM usage_rollups r FULL JOIN actual a
       ON a.customer_id = r.customer_id AND a.metric = r.metric AND a.hour = r.hour AND a.dims = r.dims
     WHERE r.quantity IS DISTINCT FROM coalesce(a.quantity, 0) OR r.events IS DISTINCT FROM coalesce(a.events, 0)
        OR r.max_quantity IS DISTINCT FROM a.max_quantity
     LIMIT 200`,
  );
}
