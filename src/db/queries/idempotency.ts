// Idempotency SQL: one row per (scope, key) with the hash of the request and the response first given to it.
import type { Sql } from "../sql.js";

export interface IdempotencyRow {
  request_hash: string;
  status_code: number;
  response: unknown;
}

export async function idempotencyRecord(sql: Sql, scope: string, key: string): Promise<IdempotencyRow | undefined> {
  const [row] = await sql.query<IdempotencyRow>(
    `SELECT request_hash, status_code, response FROM idempotency_keys WHERE scope = $1 AND key = $2`,
    [scope, key],
  );
  return row;
}

/** The records of several keys of one scope, by key. */
export async function idempotencyRecordsOf(sql: Sql, scope: string, keys: readonly string[]): Promise<Map<string, IdempotencyRow>> {
  if (keys.length === 0) return new Map();
  const rows = await sql.query<IdempotencyRow & { key: string }>(
    `SELECT key, request_hash, status_code, response FROM idempotency_keys WHERE scope = $1 AND key = ANY($2::text[])`,
    [scope, keys],
  );
  return new Map(rows.map((r) => [r.key, r]));
}

/** A concurrent request that stored the same (scope, key) first makes this a unique violation (23505). */
export async function insertIdempotencyRecord(sql: Sql, scope: string, key: string, requestHash: string, status: number, response: unknown): Promise<void> {
  await sql.query(
    `INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response) VALUES ($1, $2, $3, $4, $5::jsonb)`,
    [scope, key, requestHash, status, JSON.stringify(response)],
  );
}

/** Several records in one statement (a billing run chunk's issues). */
export async function insertIdempotencyRecords(
  sql: Sql,
  records: readonly { scope: string; key: string; requestHash: string; status: number; response: unknown }[],
): Promise<void> {
  if (records.length === 0) return;
  await sql.query(
    `INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::jsonb[])`,
    [records.map((r) => r.scope), records.map((r) => r.key), records.map((r) => r.requestHash), records.map((r) => r.status), records.map((r) => JSON.stringify(r.response))],
  );
}
