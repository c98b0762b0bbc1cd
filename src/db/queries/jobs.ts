// Jobs of the durable queue (graphile-worker, src/db/job-queue.ts), added by SQL on the caller's transaction:
// a rolled-back change adds nothing, a committed one is never lost (docs/webhooks.md).
import type { Sql } from "../sql.js";

/** The tasks the worker runs (src/worker.ts). */
/**
 * graphile-worker runs lower numbers first: a delivery (0) never waits behind a burst of evaluations, and
 * neither waits behind a billing run's thousands of contracts.
 */
export const PRIORITY = { deliveries: 0, alerts: 1, billing: 2 } as const;

export const TASKS = { evaluateAlerts: "evaluate_alerts", deliverWebhook: "deliver_webhook", billContracts: "bill_contracts" } as const;

/**
 * One alert evaluation per contract, coalesced: while a contract's job waits, later batches join it (the
 * job key; preserve_run_at, so a stream of batches cannot postpone it); a job already running gets a
 * successor, which sees what committed after it started. Due now: the worker hears of it at once (LISTEN). Contracts without alerts in any version
 * are skipped here, so ingestion pays nothing for them. Ids sorted: concurrent batches take the job rows'
 * locks in one order.
 */
export async function enqueueAlertEvaluation(sql: Sql, contractIds: readonly string[]): Promise<void> {
  if (contractIds.length === 0) return;
  await sql.query(
    `SELECT graphile_worker.add_jobs(
       array_agg(($2::text, json_build_object('contractId', c.id::text), NULL, now(),
                  NULL, 'alerts:' || c.id::text, ${PRIORITY.alerts}, NULL)::graphile_worker.job_spec ORDER BY c.id),
       true)
     FROM contracts c
     WHERE c.id = ANY($1::uuid[])
       AND EXISTS (SELECT 1 FROM contract_versions v WHERE v.contract_id = c.id AND jsonb_array_length(COALESCE(v.terms->'alerts', '[]'::jsonb)) > 0)
     HAVING count(*) > 0`,
    [contractIds, TASKS.evaluateAlerts],
    "enqueue_alert_evaluation",
  );
}

/**
 * Releases the jobs of workers that have held a lock longer than any of our tasks can run: their process
 * died (a SIGKILL, a lost machine). graphile-worker itself would wait 4 hours; our tasks are bounded (a
 * delivery by its timeout, an evaluation by the statement timeout), so a lock this old is a dead worker's.
 * The job then runs again (at least once). Returns the workers released.
 */
export async function releaseStaleJobs(sql: Sql, olderThanSeconds: number): Promise<string[]> {
  const rows = await sql.query<{ workers: string[] | null }>(
    `WITH stale AS (SELECT array_agg(DISTINCT locked_by) AS workers FROM graphile_worker.jobs
                    WHERE locked_by IS NOT NULL AND locked_at < now() - make_interval(secs => $1::float8))
     SELECT workers, CASE WHEN workers IS NOT NULL THEN graphile_worker.force_unlock_workers(workers)::text END AS done FROM stale`,
    [olderThanSeconds],
  );
  return rows[0]?.workers ?? [];
}
