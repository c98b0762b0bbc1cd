// The worker: graphile-worker's runner over our task list (docs/webhooks.md). It runs inside the service
// process by default (WORKER=inline, started and stopped with the app) or as its own process
// (src/worker-process.ts, `npm run worker`); any number of either may run against one database: jobs are
// claimed with SKIP LOCKED, and what must happen once is a unique row, not the worker's luck.
import { type Runner, type TaskList, run } from "graphile-worker";
import type { Logger } from "pino";
import type { Clock } from "./clock.js";
import type { Config } from "./config.js";
import type { Database } from "./db/client.js";
import { JOB_QUEUE_SCHEMA, jobQueueLogger } from "./db/job-queue.js";
import { TASKS, releaseStaleJobs } from "./db/queries/jobs.js";
import { evaluateAlerts } from "./services/alerts/evaluate.js";
import { billContracts } from "./services/billing-runs/bill-contracts.js";
import { deliverWebhook } from "./services/webhooks/deliver.js";

export type WorkerConfig = Pick<Config, "WORKER_CONCURRENCY" | "WEBHOOK_RETRY_SCHEDULE" | "WEBHOOK_TIMEOUT_MS" | "WEBHOOK_DENY_PRIVATE" | "JOB_LOCK_TIMEOUT_SECONDS">;

export interface WorkerOptions {
  db: Database;
  config: WorkerConfig;
  clock: Clock;
  logger?: Logger | undefined;
  /** The jitter's randomness (tests pin it). */
  random?: () => number;
}

const RELEASE_STALE = "release_stale_jobs";

export async function startWorker(opts: WorkerOptions): Promise<Runner> {
  const { db, config, clock, logger } = opts;
  const taskList: TaskList = {
    [TASKS.evaluateAlerts]: async (payload) => {
      const { contractId } = payload as { contractId: string };
      const fired = await evaluateAlerts(db, contractId, clock.now());
      if (fired.length) logger?.info({ contractId, alerts: fired }, "alerts fired");
    },
    [TASKS.deliverWebhook]: async (payload) => {
      const { deliveryId } = payload as { deliveryId: string };
      await deliverWebhook(db, deliveryId, {
        schedule: config.WEBHOOK_RETRY_SCHEDULE,
        timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        denyPrivate: config.WEBHOOK_DENY_PRIVATE,
        ...(opts.random ? { random: opts.random } : {}),
        ...(logger ? { log: (fields, message) => logger.info(fields, message) } : {}),
      });
    },
    [TASKS.billContracts]: async (payload) => {
      const { runId, contractIds } = payload as { runId: string; contractIds: string[] };
      await billContracts(db, runId, contractIds, clock.now());
    },
    [RELEASE_STALE]: async () => {
      const workers = await releaseStaleJobs(db.sql, config.JOB_LOCK_TIMEOUT_SECONDS);
      if (workers.length) logger?.warn({ workers }, "released the jobs of workers that stopped holding their locks");
    },
  };
  // A worker that starts after a crash releases what the dead one held, then looks every minute.
  await releaseStaleJobs(db.sql, config.JOB_LOCK_TIMEOUT_SECONDS);
  return run({
    pgPool: db.pool,
    schema: JOB_QUEUE_SCHEMA,
    concurrency: config.WORKER_CONCURRENCY,
    noHandleSignals: true,
    // Jobs due now arrive by LISTEN/NOTIFY; this only bounds how late a scheduled retry starts.
    pollInterval: 250,
    taskList,
    crontab: `* * * * * ${RELEASE_STALE}`,
    logger: jobQueueLogger((level, message, meta) => {
      if (!logger) return;
      if (level === "error") logger.error(meta ?? {}, message);
      else if (level === "warning") logger.warn(meta ?? {}, message);
      else logger.debug(meta ?? {}, message);
    }),
  });
}
