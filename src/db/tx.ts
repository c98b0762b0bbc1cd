// Transactions: the one helper every use case goes through, with one retry policy: serialization failures and
// deadlocks (SQLSTATE 40001, 40P01), plus what a caller names (a race a concurrent twin won).
import type { Database } from "./client.js";
import { isRetryable } from "./errors.js";
import { type Sql, pgSql } from "./sql.js";

export type Isolation = "read committed" | "repeatable read" | "serializable";

export interface TransactionOptions {
  isolation?: Isolation;
  /** Attempts after the first on a serialization failure or deadlock (40001, 40P01). */
  retries?: number;
  /** A further error worth one more attempt, e.g. a unique violation when a concurrent twin won a race. */
  retryOn?: (e: unknown) => boolean;
  readOnly?: boolean;
}

/**
 * THE transaction helper: one pooled connection, BEGIN … COMMIT, the whole function retried (with jitter)
 * on serialization failures and deadlocks, and on what `retryOn` names. The function gets the one query
 * surface every function in src/db/queries takes. A connection whose ROLLBACK fails is not returned to the pool.
 */
export async function transaction<T>(db: Database, fn: (sql: Sql) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const retries = opts.retries ?? 5;
  const begin = `BEGIN${opts.isolation ? ` ISOLATION LEVEL ${opts.isolation.toUpperCase()}` : ""}${opts.readOnly ? " READ ONLY" : ""}`;
  for (let attempt = 0; ; attempt++) {
    const client = await db.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(begin);
      const result = await fn(pgSql(client));
      await client.query("COMMIT");
      return result;
    } catch (e) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackError) {
        broken = rollbackError as Error;
      }
      if (attempt < retries && (isRetryable(e) || opts.retryOn?.(e) === true)) {
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
        continue;
      }
      throw e;
    } finally {
      client.release(broken);
    }
  }
}
