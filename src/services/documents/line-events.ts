// A usage line's drill-down (GET /v1/documents/:id/lines/:lineNo/events, docs/drill-down.md): exactly the
// events behind the line as the document was issued, so that aggregating them as the meter does gives the
// line's `usage`: the contract's customer and account ids, the line's metric and meter filter, inside its
// segment; for `latest` and `time_weighted` also the event that set the level carried in (carriedOver); of
// the events received at or before issuedAt, those voided after it flagged voidedAfterIssue.
import {
  type LineEventKey,
  type LineEventQuery,
  type LineEventRow,
  lineEventKey,
  lineEventRows,
  lineSource,
} from "../../db/queries/line-events.js";
import type { Sql } from "../../db/sql.js";
import type { Filter } from "../../domain/rating/measures.js";
import { DomainError, conflict, invalid, notFound } from "../../errors.js";

export interface LineEventView {
  eventId: string;
  customerId: string;
  metric: string;
  quantity: string;
  /** The stored instant (UTC, six fraction digits): what the engine measured. */
  timestamp: string;
  properties: Record<string, unknown> | null;
  receivedAt: string;
  carriedOver: boolean;
  voidedAfterIssue: boolean;
}

/** What the line reads: the events of a query, less the page's place. */
export interface LineScope {
  documentNumber: string;
  lineNo: number;
  query: Omit<LineEventQuery, "after" | "through" | "limit">;
}

const LOOKS_BACK = new Set(["latest", "time_weighted"]);

/**
 * The usage line and whose events it counts. Unknown document or line → not_found; a line that is not made
 * of events (platform fee, shortfall, discounts, credits) → conflict, naming its kind.
 */
export async function lineScope(sql: Sql, documentId: string, lineNo: number): Promise<LineScope> {
  const row = await lineSource(sql, documentId, lineNo);
  if (!row) throw notFound("document", documentId);
  if (row.kind === null) throw new DomainError("not_found", `document ${row.number} has no line ${lineNo}`, { lineNo });
  const e = row.explanation ?? {};
  const segment = e.segment as { from?: unknown; to?: unknown } | null | undefined;
  if (row.kind !== "usage" || row.metric === null || typeof segment?.from !== "string" || typeof segment.to !== "string")
    throw conflict(`line ${lineNo} of document ${row.number} is a ${row.kind} line: only usage lines are made of events`, { lineNo, kind: row.kind });
  // Lines issued before meters had aggregations and filters carry neither: a plain sum of the metric.
  const aggregation = typeof e.aggregation === "string" ? e.aggregation : "sum";
  const filter = e.filter && typeof e.filter === "object" && Object.keys(e.filter).length > 0 ? (e.filter as Filter) : null;
  return {
    documentNumber: row.number,
    lineNo,
    query: {
      ids: [row.customer_id, ...row.account_ids],
      metric: row.metric,
      filter,
      from: segment.from,
      to: segment.to,
      issuedAt: row.issued_at,
      carried: LOOKS_BACK.has(aggregation),
    },
  };
}

export function toLineEventView(r: LineEventRow): LineEventView {
  return {
    eventId: r.event_id,
    customerId: r.customer_id,
    metric: r.metric,
    quantity: r.quantity,
    timestamp: r.occurred,
    properties: r.properties === null ? null : (JSON.parse(r.properties) as Record<string, unknown>),
    receivedAt: r.received,
    carriedOver: r.carried_over,
    voidedAfterIssue: r.voided_after_issue,
  };
}

/**
 * One page of the line's events in the meter's order (timestamp, arrival, customer and event id), up to
 * `limit` rows after the event `after` names (an internal id a cursor carries), each with its key.
 */
export async function lineEvents(
  sql: Sql,
  documentId: string,
  lineNo: number,
  q: { after?: string | undefined; limit: number },
): Promise<{ key: string; event: LineEventView }[]> {
  const { query } = await lineScope(sql, documentId, lineNo);
  let after: LineEventKey | null = null;
  if (q.after !== undefined) {
    after = (await lineEventKey(sql, query.ids, query.metric, q.after)) ?? null;
    if (after === null) throw invalid([{ field: "cursor", message: "is not a cursor this list returned" }]);
  }
  const rows = await lineEventRows(sql, { ...query, after, limit: q.limit });
  return rows.map((r) => ({ key: r.key, event: toLineEventView(r) }));
}
