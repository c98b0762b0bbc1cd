// A document line's drill-down (GET /v1/documents/:id/lines/:lineNo/events, docs/drill-down.md): the line and
// whose usage it is, then the events behind it as the document saw them, one keyset page at a time.
//
// "As issued": received at or before the document's issued_at, and not voided by then (voided_at NULL or
// after it). Ingestion and voids lock the contract FOR SHARE and issuing FOR UPDATE, so that is exactly what
// the rating inside the issuing transaction read; an event voided later is still listed (voided_after_issue).
//
// Order: the meter's (occurred_at, received_at, customer_id, event_id), so the last row listed is a `latest`
// meter's figure. Each id is one range of the (customer_id, metric, occurred_at) index read in that order with
// its own LIMIT (only the events of one instant are sorted among themselves), the ids merged above: a page
// costs its own rows whatever the line's size, so no index of its own is needed.
import type { Filter } from "../../domain/rating/measures.js";
import type { Sql } from "../sql.js";
import { filterSql } from "./measures.js";

/** An instant as stored, exactly (UTC, six fraction digits): the cursor's value and what the engine measured. */
const instant = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export interface LineSourceRow {
  number: string;
  issued_at: string;
  customer_id: string;
  account_ids: string[];
  /** null: the document has no line of this number. */
  kind: string | null;
  metric: string | null;
  explanation: Record<string, unknown> | null;
}

/** The document (none: undefined), its contract's ids and the line of this number (kind null when there is none). */
export async function lineSource(sql: Sql, documentId: string, lineNo: number): Promise<LineSourceRow | undefined> {
  const [row] = await sql.query<LineSourceRow>(
    `SELECT d.number, ${instant("d.issued_at")} AS issued_at, c.customer_id, coalesce(c.account_ids, '{}') AS account_ids,
            l.kind, l.metric, l.explanation
     FROM documents d JOIN contracts c ON c.id = d.contract_id
     LEFT JOIN document_lines l ON l.document_id = d.id AND l.line_no = $2
     WHERE d.id = $1::uuid`,
    [documentId, lineNo],
  );
  return row;
}

/** Where a page starts: strictly after this event in the meter's order. */
export interface LineEventKey {
  occurred: string;
  received: string;
  customerId: string;
  eventId: string;
}

/** The event a cursor names (its internal id), if it is an event of these ids and metric: its place in the order. */
export async function lineEventKey(sql: Sql, ids: string[], metric: string, key: string): Promise<LineEventKey | undefined> {
  const [row] = await sql.query<LineEventKey>(
    `SELECT ${instant("occurred_at")} AS occurred, ${instant("received_at")} AS received, customer_id AS "customerId", event_id AS "eventId"
     FROM usage_events WHERE id = $1::bigint AND customer_id = ANY($2::text[]) AND metric = $3`,
    [key, ids, metric],
  );
  return row;
}

export interface LineEventQuery {
  ids: string[];
  metric: string;
  filter: Filter | null;
  /** The segment [from, to). */
  from: string;
  to: string;
  issuedAt: string;
  /** latest and time_weighted: also the last event before `from` (the level carried in). */
  carried: boolean;
  after: LineEventKey | null;
  limit: number;
}

export interface LineEventRow {
  /** usage_events.id: the JSON list's cursor. */
  key: string;
  event_id: string;
  customer_id: string;
  metric: string;
  /** Without trailing zeros (trim_scale): a plain decimal string. */
  quantity: string;
  occurred: string;
  /** The properties as JSON text (jsonb's output), null when the event has none. */
  properties: string | null;
  received: string;
  carried_over: boolean;
  voided_after_issue: boolean;
}

/** One page of a line's events, in the meter's order, strictly after `after`. */
export async function lineEventRows(sql: Sql, q: LineEventQuery): Promise<LineEventRow[]> {
  const ids = [...new Set(q.ids)];
  const params: unknown[] = [ids, q.metric, q.from, q.to, q.issuedAt, q.limit];
  const asIssued = `e.received_at <= $5::timestamptz AND (e.voided_at IS NULL OR e.voided_at > $5::timestamptz)`;
  const filter = filterSql("e.properties", q.filter, params);
  let after = "TRUE";
  let start = "";
  if (q.after) {
    params.push(q.after.occurred, q.after.received, q.after.customerId, q.after.eventId);
    const n = params.length;
    after = `(e.occurred_at, e.received_at, e.customer_id, e.event_id) > ($${n - 3}::timestamptz, $${n - 2}::timestamptz, $${n - 1}::text, $${n}::text)`;
    // The same bound as an index condition: the row comparison alone would be a filter after the scan.
    start = `AND e.occurred_at >= $${n - 3}::timestamptz`;
  }
  const columns = (carried: boolean) =>
    `e.id::text AS key, e.event_id, e.customer_id, e.metric, trim_scale(e.quantity)::text AS quantity, ${instant("e.occurred_at")} AS occurred,
     e.properties::text AS properties, ${instant("e.received_at")} AS received, ${carried} AS carried_over,
     (e.voided_at IS NOT NULL) AS voided_after_issue, e.occurred_at, e.received_at`;
  const branch = (i: number) => `(SELECT ${columns(false)} FROM usage_events e
     WHERE e.customer_id = ($1::text[])[${i}] AND e.metric = $2 AND e.occurred_at >= $3::timestamptz AND e.occurred_at < $4::timestamptz ${start}
       AND ${asIssued} AND ${filter} AND ${after}
     ORDER BY e.occurred_at, e.received_at, e.event_id LIMIT $6)`;
  const parts = ids.map((_, i) => branch(i + 1));
  if (q.carried) {
    // The level carried in: the last event before the segment per id (one backward index step each), the last
    // of those; only then compared with the cursor, so a later page never finds an earlier one instead.
    parts.push(`(SELECT * FROM (
      SELECT x.* FROM unnest($1::text[]) AS c(id)
      CROSS JOIN LATERAL (
        SELECT ${columns(true)} FROM usage_events e
        WHERE e.customer_id = c.id AND e.metric = $2 AND e.occurred_at < $3::timestamptz AND ${asIssued} AND ${filter}
        ORDER BY e.occurred_at DESC, e.received_at DESC, e.event_id DESC LIMIT 1
      ) x
      ORDER BY x.occurred_at DESC, x.received_at DESC, x.customer_id DESC, x.event_id DESC LIMIT 1) e
     WHERE ${after})`);
  }
  return sql.query<LineEventRow>(
    `SELECT key, event_id, customer_id, metric, quantity, occurred, properties, received, carried_over, voided_after_issue
     FROM (${parts.join("\n     UNION ALL\n     ")}) e
     ORDER BY e.occurred_at, e.received_at, e.customer_id, e.event_id LIMIT $6`,
    params,
  );
}
