// Reading the alerts that fired (GET /v1/alerts).
import { type AlertFilter, type AlertRow, listAlerts as listAlertRows } from "../../db/queries/alerts.js";
import type { Sql } from "../../db/sql.js";
import { normalizeQuantity } from "../../domain/usage-rules.js";
import type { AlertKind } from "../../domain/terms.js";

export interface AlertView {
  id: string;
  contractId: string;
  alertId: string;
  kind: AlertKind;
  metric: string | null;
  grantId: string | null;
  threshold: string;
  value: string;
  share: string | null;
  period: { start: string; end: string };
  version: number;
  firedAt: string;
}

/** numeric(38,9) text without its padding zeros: "0.800000000" → "0.8". */
const decimal = (text: string) => normalizeQuantity(text) ?? text;

export const toAlertView = (r: AlertRow): AlertView => ({
  id: r.id,
  contractId: r.contract_id,
  alertId: r.alert_id,
  kind: r.kind as AlertKind,
  metric: r.metric,
  grantId: r.grant_id,
  threshold: decimal(r.threshold),
  value: decimal(r.value),
  share: r.share === null ? null : decimal(r.share),
  period: { start: r.period_start.toISOString(), end: r.period_end.toISOString() },
  version: r.version,
  firedAt: r.fired_at.toISOString(),
});

export async function listAlerts(sql: Sql, q: AlertFilter): Promise<AlertView[]> {
  return (await listAlertRows(sql, q)).map(toAlertView);
}
