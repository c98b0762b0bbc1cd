// A usage line's events as CSV (GET /v1/documents/:id/lines/:lineNo/events.csv): the rows of the JSON list, in
// its order, streamed. PostgreSQL writes the CSV (COPY … TO STDOUT (FORMAT csv), db/queries/line-events.ts), one
// keyset page at a time: csv-stringify and pg's row parsing were most of the CPU per event, and a COPY's bytes
// need neither. A page is one bounded statement on a connection of its own, read whole and the connection
// released before the page is sent, so none is held while a slow client reads (idle_in_transaction_session_timeout
// would end it). Its end is found first (a one-row query), so the next page's COPY runs beside this one's on
// another backend: two connections at most. The stream makes the next chunk only when the reply has taken the
// previous one, so a line of millions of events runs in the memory of three pages.
import { Readable } from "node:stream";
import { stringify } from "csv-stringify/sync";
import type { Database } from "../../db/client.js";
import { type LineEventKey, lineEventPageEnd, lineEventsCsvPage } from "../../db/queries/line-events.js";
import { lineScope } from "./line-events.js";

/**
 * The columns, named as the JSON list's items name them; `properties` is the event's properties as JSON. The
 * cells are lineEventRows' (db/queries/line-events.ts), with text a client sent defused as defuseFormula does.
 */
const HEADER = ["eventId", "customerId", "metric", "quantity", "timestamp", "properties", "receivedAt", "carriedOver", "voidedAfterIssue"];

/** Events per page (~3.5 MiB of CSV): a COPY's start and the page-end query are small beside its rows. */
export const LINE_EVENTS_CSV_PAGE = 20_000;

interface Page {
  /** The key of the page's last event; null: the page is the last. */
  end: Promise<LineEventKey | null>;
  csv: Promise<Buffer[]>;
}

/**
 * The line's events as a CSV stream with a header. The line is resolved first, so an unknown document or line
 * and a line that is not a usage line are answered as problems before any byte is sent; a failure later ends
 * the stream with an error (the response is cut short rather than passed off as complete).
 */
export async function lineEventsCsv(
  db: Database,
  documentId: string,
  lineNo: number,
  pageSize = LINE_EVENTS_CSV_PAGE,
): Promise<{ filename: string; stream: Readable }> {
  const scope = await lineScope(db.sql, documentId, lineNo);
  const read = (after: LineEventKey | null): Page => {
    const end = lineEventPageEnd(db.sql, { ...scope.query, after, limit: pageSize });
    const csv = end.then(async (through) => {
      const client = await db.pool.connect();
      try {
        const page = await lineEventsCsvPage(client, { ...scope.query, after, through, limit: pageSize });
        client.release();
        return page;
      } catch (e) {
        client.release(e as Error); // a COPY cut short leaves the connection in no known state
        throw e;
      }
    });
    // Awaited below; a page read ahead that the client no longer wants must not go unhandled.
    end.catch(() => undefined);
    csv.catch(() => undefined);
    return { end, csv };
  };
  async function* chunks() {
    yield Buffer.from(stringify([HEADER], { quoted: true, quoted_empty: true, record_delimiter: "\r\n" }));
    let page = read(null);
    for (;;) {
      const end = await page.end;
      // The next page starts once this one's end is known: its COPY runs while this one's does and is sent.
      const next = end === null ? null : read(end);
      yield* await page.csv;
      if (next === null) return;
      page = next;
    }
  }
  // One chunk buffered at most (objectMode counts chunks): the next is made only once the reply took this one.
  // A reply destroyed because the client went away destroys the stream, which ends the generator.
  return { filename: `${scope.documentNumber}-line-${lineNo}-events.csv`, stream: Readable.from(chunks(), { highWaterMark: 1 }) };
}
