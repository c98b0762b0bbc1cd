// The digests that audit entries attest (docs/audit.md): of a document with its lines and credit drawdowns,
// and of a contract version with its contract's header. Each is computed from the rows as stored, by the same
// query (src/db/queries/audit.ts) and the same function at write time (inside the writing transaction, after
// the INSERTs) and by a deep verify, so the two cannot drift. Every column is read as text (instants through
// to_char, decimals normalised, jsonb re-parsed) so that a change of driver or of its type parsing cannot
// change a digest. Usage batches are digested from the events in memory at ingestion (no read-back on the hot
// path): usageBatchDigest in src/domain/audit-signing.ts, and verified in verify.ts.
import { Decimal } from "decimal.js";
import { documentRecord, documentRecords, documentRecordsOf, versionRecord, versionRecords } from "../../db/queries/audit.js";
import type { Sql } from "../../db/sql.js";
import { digestOf } from "../../domain/audit-signing.js";
import { formatDecimal } from "../../domain/money.js";

/** What an audit entry's payload.attests says: this row set, as stored, has this digest. */
export interface Attestation {
  type: "document" | "contract_version" | "usage_batch";
  id: string;
  digest: string;
}

const dec = (text: string | null) => (text === null ? null : formatDecimal(new Decimal(text)));
const byUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const FIRST_ID = "00000000-0000-0000-0000-000000000000";

// ---------------------------------------------------------------------------------------------------------
// Documents

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
  const record = await documentRecord(sql, id);
  if (record === undefined) throw new Error(`document ${id} not found for its digest`);
  return { type: "document", id, digest: documentDigest(record) };
}

/** The attestations of several documents as stored, in the order given (one read for a billing run chunk). */
export async function documentAttestationsOf(sql: Sql, ids: readonly string[]): Promise<Attestation[]> {
  const records = await documentRecordsOf(sql, ids);
  return ids.map((id) => {
    const record = records.get(id);
    if (record === undefined) throw new Error(`document ${id} not found for its digest`);
    return { type: "document", id, digest: documentDigest(record) };
  });
}

/** Every document's attestation, in id order, a page at a time. */
export async function* documentAttestations(sql: Sql, pageSize = 500): AsyncGenerator<Attestation> {
  let after = FIRST_ID;
  for (;;) {
    const rows = await documentRecords(sql, after, pageSize);
    for (const r of rows) yield { type: "document", id: r.id, digest: documentDigest(r.record) };
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.id;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Contract versions (with the contract's header: contracts are never updated, and a change of currency or
// customer must show as surely as a change of terms)

/** A contract version's id in attestations: "<contractId>/v<version>". */
const versionKey = (contractId: string, version: number) => `${contractId}/v${version}`;

/** The attestation of one contract version as stored (call after inserting it). */
export async function versionAttestation(sql: Sql, contractId: string, version: number): Promise<Attestation> {
  const record = await versionRecord(sql, contractId, version);
  if (record === undefined) throw new Error(`contract ${contractId} version ${version} not found for its digest`);
  return { type: "contract_version", id: versionKey(contractId, version), digest: digestOf(JSON.parse(record)) };
}

/** Every contract version's attestation, a page at a time. */
export async function* versionAttestations(sql: Sql, pageSize = 500): AsyncGenerator<Attestation> {
  let after = FIRST_ID;
  for (;;) {
    const rows = await versionRecords(sql, after, pageSize);
    for (const r of rows) yield { type: "contract_version", id: versionKey(r.contract_id, Number(r.version)), digest: digestOf(JSON.parse(r.record)) };
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.id;
  }
}
