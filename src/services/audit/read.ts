// Reading the audit log: entries in chain order, optionally of one entity.
import { type AuditRow, auditRows } from "../../db/queries/audit.js";
import type { Sql } from "../../db/sql.js";
import type { AuditEntry } from "./append.js";

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

export async function listAudit(sql: Sql, q: { entityId?: string | undefined; afterSeq?: string | undefined; limit: number }): Promise<AuditEntry[]> {
  return (await auditRows(sql, { entityId: q.entityId ?? null, afterSeq: q.afterSeq ?? "0", limit: q.limit })).map(toEntry);
}
