// Evaluating a contract's alerts (the evaluate_alerts job, enqueued by every usage batch, void, amendment and
// issued document that touches the contract): the figures of the current billing period (the one containing
// now), the alerts of the version in force, and a row per alert reached — unless it already fired this
// period, which the unique key decides, also between concurrent jobs and service instances. Each new row
// emits usage.threshold_crossed in the same transaction.
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { firedAlertIds, insertAlertOnce } from "../../db/queries/alerts.js";
import { contractById } from "../../db/queries/contracts.js";
import { transaction } from "../../db/tx.js";
import {
  type AlertFigures,
  type AlertTerm,
  type ContractTerms,
  Decimal,
  alertsReached,
  countsTowardCommitment,
  formatInstant,
  latestGrantDefinitions,
  periodContaining,
} from "../../domain/index.js";
import { DomainError } from "../../errors.js";
import { getContract, periodContractOf, versionInForceAt } from "../contracts/read.js";
import { rateContractPeriod } from "../true-ups/rate.js";
import { usageSummary } from "../usage/summary.js";
import { emitWebhookEvent } from "../webhooks/emit.js";
import { toAlertView } from "./read.js";

/** The alerts that fired now (those that already fired this period are not looked at again). */
export async function evaluateAlerts(db: Database, contractId: string, now: Date): Promise<string[]> {
  // A job for a contract that is not there (never, in practice: contracts are not deleted) has nothing to do;
  // any other error fails the job, which graphile-worker retries.
  const contract = await getContract(db, contractId).catch((e: unknown) => {
    if (e instanceof DomainError && e.code === "not_found") return null;
    throw e;
  });
  if (!contract) return [];
  const instant = formatInstant(now.getTime());
  const period = periodContaining(periodContractOf(contract), instant);
  if (!period) return []; // outside the term: no current period to watch
  const inForce = versionInForceAt(contract.versions, now.getTime());
  const terms = inForce?.terms as ContractTerms | undefined;
  const fired = await firedAlertIds(db.sql, contractId, period.start);
  const open = ((terms?.alerts ?? []) as AlertTerm[]).filter((a) => !fired.has(a.id));
  if (!inForce || !terms || open.length === 0) return [];

  const figures: AlertFigures = {
    meters: new Map(),
    usageCharges: new Decimal(0),
    periodCommitment: terms.commitment?.scope === "period" ? new Decimal(terms.commitment.amount) : null,
    grantBalances: new Map(),
  };
  // Each figure only when an alert still open needs it: usage from the summary's reads, money from a fresh rating.
  if (open.some((a) => a.kind === "included_share" || a.kind === "quantity")) {
    const summary = await usageSummary(db, contractId, undefined, now);
    figures.meters = new Map(summary.meters.map((m) => [m.meterId, { used: new Decimal(m.used), included: new Decimal(m.included) }]));
  }
  if (open.some((a) => a.kind === "commitment_share" || a.kind === "credit_balance")) {
    const record = await contractById(db.sql, contractId);
    if (!record) return [];
    const rating = await rateContractPeriod(db.sql, record, { start: period.start, end: period.end });
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

  const reached = alertsReached(open, figures);
  if (reached.length === 0) return [];
  return transaction(db, async (sql) => {
    const firedNow: string[] = [];
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
        version: inForce.version,
      });
      if (!row) continue; // a concurrent evaluation fired it first
      firedNow.push(row.alert_id);
      await emitWebhookEvent(sql, "usage.threshold_crossed", toAlertView(row));
    }
    return firedNow;
  });
}
