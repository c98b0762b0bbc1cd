// Transactions: one helper so every use case gets the same retry on serialization failures and
// deadlocks (SQLSTATE 40001, 40P01) and the same timeouts.
import type { Prisma } from "../generated/prisma/client.js";
import type { Database } from "./client.js";
import { isRetryable } from "./errors.js";

export type Tx = Prisma.TransactionClient;

/** The little SQL surface the raw-SQL helpers need, so they run inside a Prisma or a pg transaction. */
export interface Sql {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export const sqlOf = (tx: Tx): Sql => ({
  query: <T>(text: string, params: unknown[] = []) => tx.$queryRawUnsafe<T[]>(text, ...params),
});

export const pgSql = (client: { query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }> }): Sql => ({
  query: async <T>(text: string, params: unknown[] = []) => (await client.query(text, params)).rows as T[],
});

export interface TxOptions {
  isolationLevel?: Prisma.TransactionIsolationLevel;
  retries?: number;
}

export async function withTransaction<T>(db: Database, fn: (tx: Tx) => Promise<T>, opts: TxOptions = {}): Promise<T> {
  const retries = opts.retries ?? 5;
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.prisma.$transaction(fn, {
        maxWait: 10_000,
        timeout: 60_000,
        ...(opts.isolationLevel ? { isolationLevel: opts.isolationLevel } : {}),
      });
    } catch (e) {
      if (attempt < retries && isRetryable(e)) {
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
        continue;
      }
      throw e;
    }
  }
}
