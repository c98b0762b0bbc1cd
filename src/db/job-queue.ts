// The durable job queue is graphile-worker's, in its own schema (graphile_worker) of the same database, so a
// job is added by SQL inside the transaction of the change that causes it (docs/webhooks.md). Its schema is
// installed by the migrator, as the owner, and granted to the runtime role here: the service adds, claims,
// completes and fails jobs, which means writing graphile-worker's own tables (never ours beyond our grants).
import { Logger, type LogFunctionFactory, runMigrations } from "graphile-worker";
import type pg from "pg";
import { RUNTIME_GROUP } from "./roles.js";

export const JOB_QUEUE_SCHEMA = "graphile_worker";

/** graphile-worker's log lines through a function of ours (pino in the service; silent in the migrator). */
export function jobQueueLogger(log: (level: string, message: string, meta?: unknown) => void): Logger {
  const factory: LogFunctionFactory = () => (level, message, meta) => log(level, message, meta);
  return new Logger(factory);
}

const silent = jobQueueLogger(() => undefined);

/** Installs or upgrades graphile-worker's schema and grants it to RUNTIME_GROUP. Idempotent; run as the owner. */
export async function installJobQueue(ownerUrl: string, client: Pick<pg.ClientBase, "query">): Promise<void> {
  await runMigrations({ connectionString: ownerUrl, schema: JOB_QUEUE_SCHEMA, logger: silent });
  // Every start, so an upgrade's new tables and functions are granted too.
  await client.query(`
    GRANT USAGE ON SCHEMA ${JOB_QUEUE_SCHEMA} TO ${RUNTIME_GROUP};
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${JOB_QUEUE_SCHEMA} TO ${RUNTIME_GROUP};
    GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${JOB_QUEUE_SCHEMA} TO ${RUNTIME_GROUP};
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${JOB_QUEUE_SCHEMA} TO ${RUNTIME_GROUP};`);
  // graphile-worker keeps row-level security on its tables (only their owner passes); the service is not
  // the owner, so it gets a policy of its own on each of them.
  await client.query(`DO $$
    DECLARE t record;
    BEGIN
      FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = '${JOB_QUEUE_SCHEMA}' AND c.relkind = 'r' AND c.relrowsecurity LOOP
        IF NOT EXISTS (SELECT FROM pg_policies WHERE schemaname = '${JOB_QUEUE_SCHEMA}' AND tablename = t.relname AND policyname = 'rating_runtime_jobs') THEN
          EXECUTE format('CREATE POLICY rating_runtime_jobs ON ${JOB_QUEUE_SCHEMA}.%I TO ${RUNTIME_GROUP} USING (true) WITH CHECK (true)', t.relname);
        END IF;
      END LOOP;
    END $$`);
}
