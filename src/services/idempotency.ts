// Idempotency (docs/conventions.md): a key is stored with the hash of its request and the response first
// given to it, in the transaction that produced the response, so only a success is stored. The same key and
// request → that response again, with its status; the same key with another request → idempotency_conflict.
// Two requests with one key in flight at once: the second to store it fails on the unique key (23505), so
// the caller runs its transaction with retryOn: isUniqueViolation and the retry sees the first one's record.
import { idempotencyRecord, insertIdempotencyRecord, insertIdempotencyRecords } from "../db/queries/idempotency.js";
import type { Sql } from "../db/sql.js";
import { canonicalJson } from "../domain/canonical-json.js";
import { sha256Hex } from "../domain/sha256.js";
import { DomainError } from "../errors.js";

export interface IdempotentRequest {
  /** Which operation the key belongs to ("POST /v1/contracts/:id/true-ups"): a key is unique per scope. */
  scope: string;
  key: string;
  /** What makes two requests the same (path parameters and body): hashed as canonical JSON. */
  request: unknown;
}

export interface IdempotentResponse<T> {
  status: number;
  response: T;
  /** true: the stored response to an earlier request with this key. */
  replayed: boolean;
}

/**
 * Runs `produce` once per key: with no key it simply runs; with a key seen before it answers the stored
 * response (or refuses another request); else it runs and stores the response in the same transaction.
 */
export async function idempotent<T>(
  sql: Sql,
  req: IdempotentRequest | undefined,
  produce: () => Promise<{ status: number; response: T }>,
): Promise<IdempotentResponse<T>> {
  if (req === undefined) return { ...(await produce()), replayed: false };
  const requestHash = requestHashOf(req);
  const prior = await idempotencyRecord(sql, req.scope, req.key);
  if (prior) {
    if (prior.request_hash !== requestHash) throw new DomainError("idempotency_conflict", "this Idempotency-Key was used with a different request");
    return { status: prior.status_code, response: prior.response as T, replayed: true };
  }
  const { status, response } = await produce();
  await insertIdempotencyRecord(sql, req.scope, req.key, requestHash, status, response);
  return { status, response, replayed: false };
}

/** What makes two requests with one key the same: the hash of the request's canonical JSON. */
export const requestHashOf = (req: IdempotentRequest): string => sha256Hex(canonicalJson(req.request));

/** Stores the responses of requests produced outside `idempotent` (a billing run's chunk), in the caller's transaction. */
export async function storeIdempotentResponses(sql: Sql, responses: readonly { req: IdempotentRequest; status: number; response: unknown }[]): Promise<void> {
  await insertIdempotencyRecords(
    sql,
    responses.map(({ req, status, response }) => ({ scope: req.scope, key: req.key, requestHash: requestHashOf(req), status, response })),
  );
}
