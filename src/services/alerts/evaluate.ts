// Evaluating a contract's alerts (the evaluate_alerts job, enqueued by every usage batch, void, amendment and
// issued document that touches the contract): the figures of the current billing period (the one containing
// now), the alerts of the version in force, and a row per alert reached — unless it already fired this
// period, which the unique key decides, also between concurrent jobs and service instances. Each new row
// emits usage.threshold_crossed in the same transaction.
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { insertAlertOnce } from "../../db/queries/alerts.js";
import { contractById } from "../../db/queries/contracts.js";
import { transaction } from "../../db/tx.js";
import { type AlertFigures, type AlertTerm, type ContractTerms, Decimal, alertsReached, countsTowardCommitment, latestGrantDefinitions } from "../../domain/index.js";
import { DomainError } from "../../errors.js";
import { getContract } from "../contracts/read.js";
import { rateContractPeriod } from "../true-ups/rate.js";
import { usageSummary } from "../usage/summary.js";
import { emitWebhookEvent } from "../webhooks/emit.js";
import { toAlertView } from "./read.js";

/** The alerts that fired now (already-fired ones are not repeated). */
export async function evaluateAlerts(db: Database, contractId: string, now: Date): Promise<string[]> {
  const contract = await contractById(db.sql, contractId);
  if (!contract) return [];
  let summary;
  try {
    summary = await usageSummary(db, contractId, undefined, now);
  } catch (e) {
    // Outside the term (or before any version is in force) there is no current period to watch.
    if (e instanceof DomainError) return [];
    throw e;
  }
  const version = (await getContract(db, contractId)).versions.find((v) => v.version === summary.version)?.terms as ContractTerms | undefined;
  const alerts = (version?.alerts ?? []) as AlertTerm[];
  if (alerts.length === 0) return [];

  const period = summary.period;
  const figures: AlertFigures = {
    meters: new Map(summary.meters.map((m) => [m.meterId, { used: new Decimal(m.used), included: new Decimal(m.included) }])),
    usageCharges: new Decimal(0),
    periodCommitment: version?.commitment?.scope === "period" ? new Decimal(version.commitment.amount) : null,
    grantBalances: new Map(),
  };
  // Money figures need a fresh rating of the period so far; usage figures do not.
  if (alerts.some((a) => a.kind === "commitment_share" || a.kind === "credit_balance")) {
    const rating = await rateContractPeriod(db.sql, contract, period);
    figures.usageCharges = rating.result.lines.filter((l) => countsTowardCommitment(l.kind)).reduce((acc, l) => acc.plus(l.amount), new Decimal(0));
    const drawn = new Map(rating.result.creditsApplied.map((c) => [c.grantId, new Decimal(c.amount)]));
    const grants = latestGrantDefinitions(rating.input.versions);
    const startMs = Date.parse(period.start);
    const endMs = Date.parse(period.end);
    const balances = new Map<string, Decimal>();
    for (const b of rating.input.creditBalances) {
      const g = grants.get(b.grantId);
      // Valid in the period: granted before its end, expiring after its start.
      if (!g || Date.parse(g.grantedAt) >= endMs || Date.parse(g.expiresAt) <= startMs) continue;
      balances.set(b.grantId, Decimal.max(0, new Decimal(b.available).minus(drawn.get(b.grantId) ?? 0)));
    }
    figures.grantBalances = balances;
  }

  const reached = alertsReached(alerts, figures);
  if (reached.length === 0) return [];
  return transaction(db, async (sql) => {
    const fired: string[] = [];
    for (const r of reached) {
      const row = await insertAlertOnce(sql, {
        id: newId(),
        contractId,
        alertId: r.alert.id,
        kind: r.alert.kind,
        metric: r.alert.metric ?? null,
        grantId: r.alert.grantId ?? null,
        threshold: r.alert.threshold,
        value: r.value,
        share: r.share,
        periodStart: period.start,
        periodEnd: period.end,
        version: summary.version,
      });
      if (!row) continue;
      fired.push(row.alert_id);
      await emitWebhookEvent(sql, "usage.threshold_crossed", toAlertView(row));
    }
    return fired;
  });
}
