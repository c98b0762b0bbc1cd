// The process: read config, get a database (the configured one, or the embedded PostgreSQL), migrate,
// listen, and shut down gracefully on SIGINT/SIGTERM (stopping the embedded PostgreSQL cleanly).
import { join } from "node:path";
import { pino } from "pino";
import { buildApp } from "./app.js";
import { loadAuditSigningKey } from "./audit-key.js";
import { ConfigError, loadConfig } from "./config.js";
import { connectDatabase } from "./db/client.js";
import { type EmbeddedDatabase, EmbeddedPostgresError, startEmbeddedPostgres } from "./db/embedded.js";
import { migrate } from "./db/migrator.js";
import { runtimePrivilegeWarnings } from "./db/roles.js";
import { loadKeys } from "./keys.js";

/** Started by main(); stopped on shutdown and when start-up fails after it, so no postmaster is left behind. */
let embedded: EmbeddedDatabase | null = null;

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
  // A person at a terminal reads pretty lines; anything else (a container, a file, a collector) gets one JSON
  // object per line. pino-pretty runs as a transport, off the main thread.
  const pretty = process.stdout.isTTY === true && process.env.NODE_ENV !== "production";
  const logger = pino({
    level: config.LOG_LEVEL,
    ...(pretty ? { transport: { target: "pino-pretty", options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" } } } : {}),
  });

  // Migrations run as the owner of the tables; the service runs as a role that owns nothing (docs/database-roles.md).
  let url = config.DATABASE_URL;
  let ownerUrl = config.MIGRATION_DATABASE_URL ?? url;
  if (!url) {
    logger.info({ dir: join(config.DATA_DIR, "pg") }, "no DATABASE_URL: starting the embedded PostgreSQL");
    embedded = await startEmbeddedPostgres({ dir: config.DATA_DIR });
    url = embedded.runtimeUrl;
    ownerUrl = embedded.ownerUrl;
  }
  const applied = await migrate(ownerUrl ?? url);
  logger.info({ applied }, applied.length ? "migrations applied" : "database schema up to date");

  const db = connectDatabase(url, config.DB_POOL_SIZE, { statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS });
  for (const warning of await runtimePrivilegeWarnings(db.pool).catch((e: Error) => [`could not check the database role's privileges: ${e.message}`]))
    logger.warn(warning);
  const { ring, generatedAdminKey } = loadKeys(config);
  const auditKey = loadAuditSigningKey(config);
  if (auditKey.file) logger.info({ file: auditKey.file }, "audit checkpoints are signed with the key in DATA_DIR (AUDIT_SIGNING_KEY not set)");
  const app = await buildApp({ config, db, keys: ring, logger, auditSigningKey: auditKey.key });

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
  const lines = [``, `  Node.js:     ${process.version}`, `  Swagger UI:  http://${shown}:${port}/docs`, `  OpenAPI:     http://${shown}:${port}/openapi.json`];
  if (generatedAdminKey) lines.push(`  Admin key:   ${generatedAdminKey}   (kept in ${join(config.DATA_DIR, "admin-key")})`);
  else lines.push(`  API keys:    from API_KEYS (${config.API_KEYS.map((k) => `${k.name}:${k.role}`).join(", ")})`);
  process.stdout.write(`${lines.join("\n")}\n\n`);
}

main().catch(async (e) => {
  // A known cause is a sentence for the operator; anything else keeps its stack.
  const why = e instanceof EmbeddedPostgresError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`start-up failed: ${why}\n`);
  await embedded?.stop().catch(() => undefined);
  process.exit(1);
});
