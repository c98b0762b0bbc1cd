// A usage line's events as CSV (GET /v1/documents/:id/lines/:lineNo/events.csv): the rows of the JSON list, in
// its order, streamed. Keyset pages on the pool, each query its own (no connection or transaction is held while
// a slow client reads: idle_in_transaction_session_timeout would end it); each page is written by csv-stringify
// as one chunk (a chunk per row would cost a stream step and a socket write per event), and the next page is
// read while this one is sent. The stream yields a chunk only when the reply has taken the previous one, so a
// line of millions of events runs in the memory of two pages.
import { Readable } from "node:stream";
import { stringify } from "csv-stringify/sync";
import type { Database } from "../../db/client.js";
import { type LineEventRow, lineEventRows } from "../../db/queries/line-events.js";
import { defuseFormula } from "../csv.js";
import { keyOf, lineScope } from "./line-events.js";

/**
 * The columns, named as the JSON list's items name them; `properties` is the event's properties as JSON.
 * Only text a client sent is defused: quantities, instants and flags are written by the service and never
 * start like a formula (a negative quantity is a number).
 */
const COLUMNS: Array<{ name: string; value: (r: LineEventRow) => string }> = [
  { name: "eventId", value: (r) => defuseFormula(r.event_id) },
  { name: "customerId", value: (r) => defuseFormula(r.customer_id) },
  { name: "metric", value: (r) => defuseFormula(r.metric) },
  { name: "quantity", value: (r) => r.quantity },
  { name: "timestamp", value: (r) => r.occurred },
  { name: "properties", value: (r) => (r.properties === null ? "" : defuseFormula(r.properties)) },
  { name: "receivedAt", value: (r) => r.received },
  { name: "carriedOver", value: (r) => String(r.carried_over) },
  { name: "voidedAfterIssue", value: (r) => String(r.voided_after_issue) },
];

const OPTIONS = { quoted: true, quoted_empty: true, record_delimiter: "\r\n" } as const;

/** Rows per query: large enough that round trips do not dominate, small enough to be the only memory used. */
export const LINE_EVENTS_CSV_PAGE = 5000;

/**
 * The line's events as a CSV stream with a header. The line is resolved first, so an unknown document or line
 * and a line that is not a usage line are answered as problems before any byte is sent; a failure later ends
 * the stream with an error (the response is cut short rather than passed off as complete).
 */
export async function lineEventsCsv(db: Database, documentId: string, lineNo: number): Promise<{ filename: string; stream: Readable }> {
  const scope = await lineScope(db.sql, documentId, lineNo);
  const read = (after: LineEventRow | null) => {
    const page = lineEventRows(db.sql, { ...scope.query, after: after === null ? null : keyOf(after), limit: LINE_EVENTS_CSV_PAGE });
    page.catch(() => undefined); // awaited below; a read ahead the client no longer wants must not go unhandled
    return page;
  };
  async function* chunks() {
    yield stringify([COLUMNS.map((c) => c.name)], OPTIONS);
    let next = read(null);
    for (;;) {
      const page = await next;
      const more = page.length === LINE_EVENTS_CSV_PAGE;
      if (more) next = read(page[page.length - 1]!);
      if (page.length > 0) yield stringify(page.map((r) => COLUMNS.map((c) => c.value(r))), OPTIONS);
      if (!more) return;
    }
  }
  // One chunk buffered at most (objectMode counts chunks): the next is made only once the reply took this one.
  // A reply destroyed because the client went away destroys the stream, which ends the generator.
  return { filename: `${scope.documentNumber}-line-${lineNo}-events.csv`, stream: Readable.from(chunks(), { highWaterMark: 1 }) };
}
