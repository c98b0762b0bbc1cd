// Transaction-scoped advisory locks on a set of ids: one lock per distinct hash of an id (or per bucket of
// hashes), taken in key order, so every transaction that takes locks of one class takes them in the same order.
import type { Sql } from "../sql.js";

export interface AdvisoryLockClass {
  /** The first key: what the locks are of (the second is the id's hash). */
  id: number;
  /** Names the prepared statements: `lock_${name}_shared`, `lock_${name}_exclusive`. */
  name: string;
  /** Ids share this many locks (a power of two), when a transaction may name very many; else one per hash. */
  buckets?: number;
}

/** Takes the class's locks on these ids, shared or exclusive, until the transaction ends. */
export async function takeAdvisoryLocks(sql: Sql, c: AdvisoryLockClass, ids: readonly string[], mode: "shared" | "exclusive"): Promise<void> {
  if (ids.length === 0) return;
  const fn = mode === "shared" ? "pg_advisory_xact_lock_shared" : "pg_advisory_xact_lock";
  const key = c.buckets === undefined ? "hashtext(id)" : `hashtext(id) & ${c.buckets - 1}`;
  await sql.query(
    `SELECT ${fn}(${c.id}, k) FROM (SELECT DISTINCT ${key} AS k FROM unnest($1::text[]) AS id ORDER BY 1) s`,
    [[...ids]],
    `lock_${c.name}_${mode}`,
  );
}
