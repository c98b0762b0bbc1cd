// The digests that audit entries attest (docs/audit.md): of a document with its lines and credit drawdowns,
// and of a contract version with its contract's header. Each is computed from the rows as stored, by the same
// query and the same function at write time (inside the writing transaction, after the INSERTs) and by a deep
// verify, so the two cannot drift. Every column is read as text (instants through to_char, decimals
// normalised, jsonb re-parsed) so that Prisma's and pg's drivers, which parse types differently, agree.
// Usage batches are digested from the events in memory at ingestion (no read-back on the hot path):
// usageBatchDigest in src/domain/audit-signing.ts, and verified in audit-verify.ts.
import { Decimal } from "decimal.js";
import { digestOf } from "../domain/audit-signing.js";
import { formatDecimal } from "../domain/money.js";
import type { Sql } from "../db/tx.js";

/** What an audit entry's payload.attests says: this row set, as stored, has this digest. */
export interface Attestation {
  type: "document" | "contract_version" | "usage_batch";
  id: string;
  digest: string;
}

const ts = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const dec = (text: string | null) => (text === null ? null : formatDecimal(new Decimal(text)));
const byUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------------------------------------------------
// Documents

const DOCUMENT_SQL = `
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

interface DocumentRecord {
  subtotal: string;
  alreadyBilled: string;
  amount: string;
  lines: { lineNo: number; amount: string }[];
  drawdowns: { grantId: string; amount: string }[];
}

function documentDigest(recordText: string): string {
  const r = JSON.parse(recordText) as DocumentRecord;
  // Order in JS, not by the database's collation (which a restore onto another server may change).
  return digestOf({
    ...r,
    subtotal: dec(r.subtotal),
    alreadyBilled: dec(r.alreadyBilled),
    amount: dec(r.amount),
    lines: r.lines.map((l) => ({ ...l, amount: dec(l.amount) })).sort((a, b) => a.lineNo - b.lineNo),
    drawdowns: r.drawdowns.map((d) => ({ ...d, amount: dec(d.amount) })).sort((a, b) => byUnits(a.grantId, b.grantId)),
  });
}

/** The attestation of one document as stored (call after inserting it, its lines and drawdowns). */
export async function documentAttestation(sql: Sql, id: string): Promise<Attestation> {
  const [row] = await sql.query<{ id: string; record: string }>(`${DOCUMENT_SQL} WHERE d.id = $1::uuid`, [id]);
  if (!row) throw new Error(`document ${id} not found for its digest`);
  return { type: "document", id, digest: documentDigest(row.record) };
}

/** Every document's attestation, in id order, a page at a time. */
export async function* documentAttestations(sql: Sql, pageSize = 500): AsyncGenerator<Attestation> {
  let after = "00000000-0000-0000-0000-000000000000";
  for (;;) {
    const rows = await sql.query<{ id: string; record: string }>(`${DOCUMENT_SQL} WHERE d.id > $1::uuid ORDER BY d.id LIMIT $2`, [after, pageSize]);
    for (const r of rows) yield { type: "document", id: r.id, digest: documentDigest(r.record) };
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.id;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Contract versions (with the contract's header: contracts are never updated, and a change of currency or
// customer must show as surely as a change of terms)

const VERSION_SQL = `
  SELECT v.id::text AS id, v.contract_id::text AS contract_id, v.version, json_build_object(
    'contract', json_build_object('id', c.id, 'customerId', c.customer_id, 'accountIds', c.account_ids, 'name', c.name,
      'currency', c.currency, 'timezone', c.timezone, 'billingPeriod', c.billing_period, 'startDate', c.start_date::text,
      'endDate', c.end_date::text, 'termStart', ${ts("c.term_start")}, 'termEnd', ${ts("c.term_end")},
      'roundingMode', c.rounding_mode, 'allowTrueDown', c.allow_true_down, 'createdBy', c.created_by),
    'version', v.version, 'effectiveFrom', ${ts("v.effective_from")}, 'signedAt', ${ts("v.signed_at")},
    'kind', v.kind, 'reason', v.reason, 'terms', v.terms, 'createdBy', v.created_by
  )::text AS record
  FROM contract_versions v JOIN contracts c ON c.id = v.contract_id`;

/** A contract version's id in attestations: "<contractId>/v<version>". */
export const versionKey = (contractId: string, version: number) => `${contractId}/v${version}`;

/** The attestation of one contract version as stored (call after inserting it). */
export async function versionAttestation(sql: Sql, contractId: string, version: number): Promise<Attestation> {
  const [row] = await sql.query<{ record: string }>(`${VERSION_SQL} WHERE v.contract_id = $1::uuid AND v.version = $2::int`, [contractId, version]);
  if (!row) throw new Error(`contract ${contractId} version ${version} not found for its digest`);
  return { type: "contract_version", id: versionKey(contractId, version), digest: digestOf(JSON.parse(row.record)) };
}

/** Every contract version's attestation, a page at a time. */
export async function* versionAttestations(sql: Sql, pageSize = 500): AsyncGenerator<Attestation> {
  let after = "00000000-0000-0000-0000-000000000000";
  for (;;) {
    const rows = await sql.query<{ id: string; contract_id: string; version: number; record: string }>(
      `${VERSION_SQL} WHERE v.id > $1::uuid ORDER BY v.id LIMIT $2`,
      [after, pageSize],
    );
    for (const r of rows) yield { type: "contract_version", id: versionKey(r.contract_id, Number(r.version)), digest: digestOf(JSON.parse(r.record)) };
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.id;
  }
}
