// One pg pool per process, shared by Prisma (through its pg adapter) and by the few hot paths that
// speak SQL directly (bulk usage inserts, aggregates).
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "../generated/prisma/client.js";
import { type Sql, pgSql } from "./sql.js";

// numeric and bigint come back as strings: money never passes through a JavaScript number.
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => v);
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => v);

export interface Database {
  pool: pg.Pool;
  /** Queries outside a transaction (reads), on the pool: the same surface a transaction gives. */
  sql: Sql;
  prisma: PrismaClient;
  close(): Promise<void>;
}

export interface DatabaseTimeouts {
  /** statement_timeout and lock_timeout of every pooled session (config DB_STATEMENT_TIMEOUT_MS); 0 = none (benchmarks' bulk loads). */
  statementTimeoutMs?: number;
}

/** Kept in step with config DB_STATEMENT_TIMEOUT_MS's default. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 15_000;

export function connectDatabase(url: string, poolSize = 10, timeouts: DatabaseTimeouts = {}): Database {
  const statementTimeoutMs = timeouts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A stuck database (a lock held elsewhere, a runaway plan) must not hold a request and a pooled
    // connection for minutes: PostgreSQL cancels the statement (SQLSTATE 57014, 55P03 for a lock wait),
    // which the errors plugin answers with 503 + Retry-After. A transaction left idle (a crashed caller)
    // is ended after 60 s, the longest an interactive transaction may last (db/tx.ts). Sent as startup
    // parameters, so they apply to every statement of the pool; the migrator has its own connection.
    statement_timeout: statementTimeoutMs,
    lock_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: 60_000,
  });
  // An idle client losing its server (PostgreSQL restarted) must not crash the process.
  pool.on("error", () => undefined);
  // Nor an error on a checked-out client between queries (graphile-worker's LISTEN connection is one).
  pool.on("connect", (client) => client.on("error", () => undefined));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    pool,
    sql: pgSql(pool),
    prisma,
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}
