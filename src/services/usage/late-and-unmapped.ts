// What ingestion and voids share: the contract and issued period an event falls in, and the exceptions they
// raise, one per group rather than per event: late_usage per (contract, issued period, latest document),
// unmapped_usage per (customer id, UTC month).
import { type IdentifierTerm, type IssuedPeriod, contractIdentifiers, lateActivity, lockedExceptionDetails } from "../../db/queries/usage.js";
import type { Sql } from "../../db/sql.js";
import { formatInstant } from "../../domain/periods.js";
import { dedupeKey, raiseException } from "../exceptions/raise.js";

export function contractAt(terms: IdentifierTerm[] | undefined, ms: number): string | null {
  if (!terms) return null;
  for (const t of terms) if (t.startMs <= ms && (t.endMs === null || ms < t.endMs)) return t.contractId;
  return null;
}

export function issuedPeriodAt(periods: IssuedPeriod[] | undefined, ms: number): IssuedPeriod | null {
  if (!periods) return null;
  for (const p of periods) if (p.startMs <= ms && ms < p.endMs) return p;
  return null;
}

interface LateGroup {
  kind: "late_usage";
  key: string;
  period: IssuedPeriod;
  arrived: number;
  voided: number;
}

interface UnmappedGroup {
  kind: "unmapped_usage";
  key: string;
  customerId: string;
  period: { start: string; end: string };
  events: number;
  metrics: Set<string>;
}

/** The groups of one batch or void, by dedupe key. */
export type ExceptionGroups = Map<string, LateGroup | UnmappedGroup>;

function utcMonth(ms: number): { start: string; end: string } {
  const d = new Date(ms);
  return {
    start: formatInstant(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)),
    end: formatInstant(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)),
  };
}

export function lateGroup(groups: ExceptionGroups, p: IssuedPeriod): LateGroup {
  const key = dedupeKey({ kind: "late_usage", contractId: p.contractId, period: p, subject: p.documentId });
  let g = groups.get(key) as LateGroup | undefined;
  if (!g) {
    g = { kind: "late_usage", key, period: p, arrived: 0, voided: 0 };
    groups.set(key, g);
  }
  return g;
}

/** Counts an event of a customer id that maps to no contract at its instant. */
export function addUnmapped(groups: ExceptionGroups, customerId: string, ms: number, metric: string): void {
  const period = utcMonth(ms);
  const key = dedupeKey({ kind: "unmapped_usage", contractId: null, customerId, period, subject: "" });
  let g = groups.get(key) as UnmappedGroup | undefined;
  if (!g) {
    g = { kind: "unmapped_usage", key, customerId, period, events: 0, metrics: new Set() };
    groups.set(key, g);
  }
  g.events++;
  g.metrics.add(metric);
}

/** Raises the groups' exceptions in dedupe-key order (the row locks they take then never cross). */
export async function raiseGroups(sql: Sql, groups: ExceptionGroups): Promise<void> {
  const sorted = [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const g of sorted) {
    if (g.kind === "late_usage") {
      const p = g.period;
      const ids = await contractIdentifiers(sql, p.contractId);
      const since = await lateActivity(sql, ids, p, p.issuedAt);
      await raiseException(sql, {
        kind: "late_usage",
        contractId: p.contractId,
        period: { start: p.start, end: p.end },
        subject: p.documentId,
        message:
          `${since.arrived} event(s) arrived and ${since.voided} were voided in the period ${p.start} – ${p.end} ` +
          `after document ${p.documentId} was issued; re-run the true-up`,
        details: {
          events: since.arrived + since.voided,
          arrived: since.arrived,
          voided: since.voided,
          documentId: p.documentId,
          issuedAt: p.issuedAt,
          lastBatch: { arrived: g.arrived, voided: g.voided },
        },
      });
    } else {
      // Counted across batches: the row is locked first so concurrent batches add up instead of overwriting.
      const prior = await lockedExceptionDetails<{ events?: number; metrics?: string[] }>(sql, g.key);
      const events = (typeof prior?.events === "number" ? prior.events : 0) + g.events;
      const metrics = [...new Set([...(prior?.metrics ?? []), ...g.metrics])].sort();
      await raiseException(sql, {
        kind: "unmapped_usage",
        contractId: null,
        customerId: g.customerId,
        period: g.period,
        subject: "",
        message: `${events} event(s) of "${g.customerId}" in ${g.period.start.slice(0, 7)} map to no contract`,
        details: { events, metrics },
      });
    }
  }
}
