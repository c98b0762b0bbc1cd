// Alerts that fired (DESIGN.md §9): one row per contract, alert id and billing period, by the unique key.
import type { Sql } from "../sql.js";

export interface AlertRow {
  id: string;
  contract_id: string;
  alert_id: string;
  kind: string;
  metric: string | null;
  grant_id: string | null;
  threshold: string;
  value: string;
  share: string | null;
  period_start: Date;
  period_end: Date;
  version: number;
  fired_at: Date;
}

const COLUMNS = `id::text AS id, contract_id::text AS contract_id, alert_id, kind, metric, grant_id, threshold::text AS threshold,
  value::text AS value, share::text AS share, period_start, period_end, version, fired_at`;

export interface AlertInsert {
  id: string;
  contractId: string;
  alertId: string;
  kind: string;
  metric: string | null;
  grantId: string | null;
  threshold: string;
  value: string;
  share: string | null;
  periodStart: string;
  periodEnd: string;
  version: number;
}

/** Records a firing unless this alert already fired in this period (then undefined): the once is the key's. */
export async function insertAlertOnce(sql: Sql, a: AlertInsert): Promise<AlertRow | undefined> {
  const [row] = await sql.query<AlertRow>(
    `INSERT INTO alerts (id, contract_id, alert_id, kind, metric, grant_id, threshold, value, share, period_start, period_end, version)
     VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::numeric, $8::numeric, $9::numeric, $10::timestamptz, $11::timestamptz, $12)
     ON CONFLICT (contract_id, alert_id, period_start) DO NOTHING
     RETURNING ${COLUMNS}`,
    [a.id, a.contractId, a.alertId, a.kind, a.metric, a.grantId, a.threshold, a.value, a.share, a.periodStart, a.periodEnd, a.version],
  );
  return row;
}

export interface AlertFilter {
  contractId?: string | undefined;
  kind?: string | undefined;
  after?: string | undefined;
  limit: number;
}

/** Alerts in firing order (ids are time-ordered, made as the row is written), after a cursor. */
export async function listAlerts(sql: Sql, f: AlertFilter): Promise<AlertRow[]> {
  return sql.query<AlertRow>(
    `SELECT ${COLUMNS} FROM alerts
     WHERE ($1::uuid IS NULL OR contract_id = $1::uuid)
       AND ($2::text IS NULL OR kind = $2)
       AND ($3::uuid IS NULL OR id > $3::uuid)
     ORDER BY id
     LIMIT $4`,
    [f.contractId ?? null, f.kind ?? null, f.after ?? null, f.limit],
  );
}

/** The alert ids of a contract that already fired in the period starting at `periodStart`. */
export async function firedAlertIds(sql: Sql, contractId: string, periodStart: string): Promise<Set<string>> {
  const rows = await sql.query<{ alert_id: string }>(
    `SELECT alert_id FROM alerts WHERE contract_id = $1::uuid AND period_start = $2::timestamptz`,
    [contractId, periodStart],
  );
  return new Set(rows.map((r) => r.alert_id));
}
