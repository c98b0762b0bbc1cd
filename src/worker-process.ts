// `npm run worker`: the job worker as its own process (docs/webhooks.md), beside service processes started
// with WORKER=off (or inline: several of either may run). It needs the database the service uses (DATABASE_URL);
// the service's start-up migrates it.
import { pino } from "pino";
import { ConfigError, loadConfig } from "./config.js";
import { systemClock } from "./clock.js";
import { connectDatabase } from "./db/client.js";
import { startWorker } from "./worker.js";

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (!config.DATABASE_URL) {
    process.stderr.write("npm run worker needs DATABASE_URL: the database the service runs on (with the embedded PostgreSQL, the service runs its worker inline)\n");
    process.exit(2);
  }
  const logger = pino({ level: config.LOG_LEVEL });
  const db = connectDatabase(config.DATABASE_URL, config.WORKER_CONCURRENCY + 2, { statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS });
  const runner = await startWorker({ db, config, clock: systemClock, logger });
  logger.info({ concurrency: config.WORKER_CONCURRENCY }, "worker started");
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "worker stopping");
    setTimeout(() => process.exit(1), 20_000).unref();
    await runner.stop().catch((e) => logger.error({ err: e }, "stopping the worker"));
    await db.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  await runner.promise;
}

main().catch((e) => {
  process.stderr.write(`worker failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
