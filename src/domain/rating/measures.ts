// What a meter measures (docs/rating.md, "What a meter measures"): the aggregation of a segment's
// non-voided events of one metric that match the meter's filter. The database computes the figures
// (db/queries/measures.ts, from rollups and indexes); this module says what they mean, turns them into
// usage, and holds the reference definition over plain events that the tests hold the database to.
//
// Decisions where the contract is silent (docs/rating.md lists them too):
//  - Events at the same instant are ordered by arrival (received), then customer and event id: the last one is
//    the `latest` and the level a `time_weighted` meter keeps from that instant (a correction sent later wins).
//  - unique_count: a property whose value is JSON null counts as absent (null identifies nobody).
//  - A filter matches an event when, for every property it names, the event's value is one of the listed
//    scalars by canonical JSON (so "1" and 1 differ; a missing property never matches).
import { canonicalJson, jsonString } from "../canonical-json.js";
import { Decimal, ZERO } from "../money.js";
import type { Aggregation, Meter } from "../terms.js";

export type FilterValue = string | number | boolean;
export type Filter = Record<string, FilterValue[]>;

/** What one meter reads from the events: its metric, aggregation, filter and (unique_count) property. */
export interface Measure {
  metric: string;
  aggregation: Aggregation;
  filter: Filter | null;
  uniqueBy: string | null;
}

/**
 * A measure's figure over one window [from, to), as the database returns it (a row not given is 0):
 * sum: Σ quantity; count: number of events; max: the largest quantity; latest: the last quantity before `to`
 * (looking back before `from`); unique_count: distinct values; time_weighted: Σ level × seconds over the
 * window (the level carried in from before `from`), which the engine divides by the window's seconds.
 */
export interface MeasuredUsage {
  from: string;
  to: string;
  measure: Measure;
  value: string;
}

/** Levels are held, not accumulated: their included units and tier bounds are not prorated. */
export const isLevel = (a: Aggregation): boolean => a !== "sum" && a !== "count";

export function measureOf(m: Pick<Meter, "metric" | "aggregation" | "filter" | "uniqueBy">): Measure {
  return {
    metric: m.metric,
    aggregation: m.aggregation ?? "sum",
    filter: m.filter && Object.keys(m.filter).length > 0 ? (m.filter as Filter) : null,
    uniqueBy: m.uniqueBy ?? null,
  };
}

/** One spelling per measure: the key the engine and its callers agree on. */
export function measureKey(m: Measure): string {
  const { metric, aggregation, filter, uniqueBy } = m;
  // Written directly (keys in canonical order) in the usual case, strings and no filter: every measured row of
  // a rating is keyed. Anything else (a filter, a member missing, a value of another type) is left to canonicalJson.
  if (typeof metric === "string" && typeof aggregation === "string" && filter === null && (uniqueBy === null || typeof uniqueBy === "string")) {
    return `{"aggregation":${jsonString(aggregation)},"filter":null,"metric":${jsonString(metric)},"uniqueBy":${uniqueBy === null ? "null" : jsonString(uniqueBy)}}`;
  }
  return canonicalJson({ metric, aggregation, filter, uniqueBy });
}

/** The sum of the events a measure's filter selects: what a metric's filtered meters match, to find what none does. */
export const filteredSumOf = (m: Measure): Measure => ({ ...m, aggregation: "sum", uniqueBy: null });

/** An unfiltered sum is the metric's total, which the engine always has: no separate figure is asked for it. */
export const isPlainSum = (m: Measure): boolean => m.aggregation === "sum" && m.filter === null;

/** The usage of a window from its figure: the figure itself, except time_weighted (÷ the window's seconds). */
export function usageFromFigure(m: Measure, figure: Decimal, fromMs: number, toMs: number): Decimal {
  if (m.aggregation !== "time_weighted") return figure;
  return toMs > fromMs ? figure.times(1000).dividedBy(toMs - fromMs) : ZERO;
}

// ---------------------------------------------------------------------------------------------------------
// The reference definition over plain events (tests compare the engine and the database with it)

export interface PlainEvent {
  /** Milliseconds since the epoch. */
  at: number;
  quantity: string;
  properties?: Record<string, unknown> | null;
  voided?: boolean;
  /** Arrival order among events at the same instant (higher = later); default 0. */
  received?: number;
  id?: string;
}

export function matchesFilter(filter: Filter | null, properties: Record<string, unknown> | null | undefined): boolean {
  if (filter === null) return true;
  for (const [property, values] of Object.entries(filter)) {
    if (!properties || !Object.hasOwn(properties, property)) return false;
    const v = canonicalJson(properties[property]);
    if (!values.some((x) => canonicalJson(x) === v)) return false;
  }
  return true;
}

const order = (a: PlainEvent, b: PlainEvent) => a.at - b.at || (a.received ?? 0) - (b.received ?? 0) || ((a.id ?? "") < (b.id ?? "") ? -1 : (a.id ?? "") > (b.id ?? "") ? 1 : 0);

/** The usage of `m` over [fromMs, toMs) from the events (all of them: look-backs read before fromMs). */
export function aggregateEvents(m: Measure, events: readonly PlainEvent[], fromMs: number, toMs: number): Decimal {
  const own = events.filter((e) => !e.voided && matchesFilter(m.filter, e.properties));
  const inside = own.filter((e) => e.at >= fromMs && e.at < toMs);
  switch (m.aggregation) {
    case "sum":
      return inside.reduce((s, e) => s.plus(e.quantity), ZERO);
    case "count":
      return new Decimal(inside.length);
    case "max":
      return inside.length === 0 ? ZERO : Decimal.max(...inside.map((e) => new Decimal(e.quantity)));
    case "latest": {
      const before = own.filter((e) => e.at < toMs).sort(order);
      const last = before[before.length - 1];
      return last ? new Decimal(last.quantity) : ZERO;
    }
    case "unique_count": {
      const seen = new Set<string>();
      for (const e of inside) {
        const v = m.uniqueBy !== null && e.properties ? e.properties[m.uniqueBy] : undefined;
        if (v !== undefined && v !== null) seen.add(canonicalJson(v));
      }
      return new Decimal(seen.size);
    }
    case "time_weighted": {
      if (toMs <= fromMs) return ZERO;
      const sorted = own.filter((e) => e.at < toMs).sort(order);
      let level = ZERO;
      let at = fromMs;
      let area = ZERO;
      for (const e of sorted) {
        if (e.at <= fromMs) {
          level = new Decimal(e.quantity);
          continue;
        }
        area = area.plus(level.times(e.at - at));
        level = new Decimal(e.quantity);
        at = e.at;
      }
      area = area.plus(level.times(toMs - at));
      return area.dividedBy(toMs - fromMs);
    }
  }
}
