// The one query surface: every function in src/db/queries takes a Sql, whether it runs inside a transaction
// (db/tx.ts) or on the pool (db.sql), so a query never knows which.
/** What a query needs of its connection: text, parameters, and optionally a prepared-statement name. */
export interface Sql {
  /** With a `name`, a prepared statement: parsed and planned once per connection (the hottest reads). */
  query<T = Record<string, unknown>>(text: string, params?: unknown[], name?: string): Promise<T[]>;
}

interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  query(q: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

export const pgSql = (client: PgQueryable): Sql => ({
  query: async <T>(text: string, values: unknown[] = [], name?: string) =>
    (await (name === undefined ? client.query(text, values) : client.query({ name, text, values }))).rows as T[],
});
