// The process: read config, get a database (the configured one, or the embedded PostgreSQL), migrate,
// listen, and shut down gracefully on SIGINT/SIGTERM (stopping the embedded PostgreSQL cleanly).
import { join } from "node:path";
import { pino } from "pino";
import { buildApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { connectDatabase } from "./db/client.js";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./db/embedded.js";
import { migrate } from "./db/migrator.js";
import { loadKeys } from "./keys.js";

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
  const logger = pino({ level: config.LOG_LEVEL });

  let embedded: EmbeddedDatabase | null = null;
  let url = config.DATABASE_URL;
  if (!url) {
    logger.info({ dir: join(config.DATA_DIR, "pg") }, "no DATABASE_URL: starting the embedded PostgreSQL");
    embedded = await startEmbeddedPostgres({ dir: config.DATA_DIR });
    url = embedded.url;
  }
  const applied = await migrate(url);
  logger.info({ applied }, applied.length ? "migrations applied" : "database schema up to date");

  const db = connectDatabase(url, config.DB_POOL_SIZE);
  const { ring, generatedAdminKey } = loadKeys(config);
  const app = await buildApp({ config, db, keys: ring, logger });

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    await app.close().catch((e) => logger.error({ err: e }, "closing the server"));
    await db.close();
    if (embedded) await embedded.stop().catch((e) => logger.error({ err: e }, "stopping PostgreSQL"));
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  await app.listen({ port: config.PORT, host: config.HOST, listenTextResolver: (address) => `listening on ${address}` });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.PORT;
  const shown = config.HOST === "0.0.0.0" ? "127.0.0.1" : config.HOST;
  const lines = [``, `  Swagger UI:  http://${shown}:${port}/docs`, `  OpenAPI:     http://${shown}:${port}/openapi.json`];
  if (generatedAdminKey) lines.push(`  Admin key:   ${generatedAdminKey}   (kept in ${join(config.DATA_DIR, "admin-key")})`);
  else lines.push(`  API keys:    from API_KEYS (${config.API_KEYS.map((k) => `${k.name}:${k.role}`).join(", ")})`);
  process.stdout.write(`${lines.join("\n")}\n\n`);
}

main().catch((e) => {
  process.stderr.write(`start-up failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
