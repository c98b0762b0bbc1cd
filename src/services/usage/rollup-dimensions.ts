// A step of creating and amending a contract (not an action of its own): when the contract's meters filter on
// a property its ids' rollups are not split by yet, record it (usage_dimensions) and rebuild those ids' rollups
// of that metric from the events, in the caller's transaction, so filtered meters read rollups and never scan
// a period's events (docs/rating.md, "Where the figures come from").
import { rebuildRollups, refreshUsageDimensions } from "../../db/queries/usage.js";
import type { Sql } from "../../db/sql.js";

export async function refreshRollupDimensions(sql: Sql, identifiers: string[]): Promise<void> {
  const grown = await refreshUsageDimensions(sql, identifiers);
  await rebuildRollups(sql, grown);
}
