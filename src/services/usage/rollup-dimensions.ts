// A step of creating and amending a contract (not an action of its own): when the contract's meters filter on
// a property its ids' rollups are not split by yet, or count one (unique_count) whose distinct values they do
// not keep, record it (usage_dimensions) and rebuild those ids' rollups of that metric from the events, in the
// caller's transaction, so these meters read rollups and never scan a period's events (docs/rating.md, "Where
// the figures come from").
import { lockIdentifiers, rebuildHourlyRollups, rebuildUniqueValues, refreshUsageDimensions } from "../../db/queries/usage.js";
import type { Sql } from "../../db/sql.js";

/**
 * Locks the ids against ingestion (exclusive; ingestion takes them shared). Call it first in the transaction,
 * before any row lock, so the lock order is the same as ingestion's.
 */
export async function lockIdentifiersForTerms(sql: Sql, identifiers: string[]): Promise<void> {
  await lockIdentifiers(sql, identifiers, "exclusive");
}

/**
 * After the contract's versions are written: record grown dimensions and rebuild those rollups (ids locked
 * first); the hourly ones only where a filtered property was added (a new counted property leaves them be).
 */
export async function refreshRollupDimensions(sql: Sql, identifiers: string[]): Promise<void> {
  const grown = await refreshUsageDimensions(sql, identifiers);
  await rebuildHourlyRollups(sql, grown.filter((g) => g.dims_grew));
  await rebuildUniqueValues(sql, grown);
}
