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

/** A concurrent request that stored the same (scope, key) first makes this a unique violation (23505). */
export async function insertIdempotencyRecord(sql: Sql, scope: string, key: string, requestHash: string, status: number, response: unknown): Promise<void> {
  await sql.query(
    `INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response) VALUES ($1, $2, $3, $4, $5::jsonb)`,
    [scope, key, requestHash, status, JSON.stringify(response)],
  );
}
