// A document line's drill-down (GET /v1/documents/:id/lines/:lineNo/events, docs/drill-down.md): the line and
// whose usage it is, then the events behind it as the document saw them, one keyset page at a time: as rows
// (the JSON list), or as CSV PostgreSQL writes from the same query and cells (COPY, for events.csv).
//
// "As issued": received at or before the document's issued_at, and not voided by then (voided_at NULL or
// after it). Ingestion and voids take the contract's lock shared and issuing exclusive (lockContractsShared),
// so that is exactly what the rating inside the issuing transaction read; an event voided later is still listed (voided_after_issue).
//
// Order: the meter's (occurred_at, received_at, customer_id, event_id), so the last row listed is a `latest`
// meter's figure. Each id is one range of the (customer_id, metric, occurred_at) index read in that order with
// its own LIMIT (only the events of one instant are sorted among themselves), the ids merged above: a page
// costs its own rows whatever the line's size, so no index of its own is needed.
import pg from "pg";
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
  /** Up to and including this event (a page whose end is known: the CSV's); none: no upper bound. */
  through?: LineEventKey | null;
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

/** The meter's order over the columns of `alias`. */
const ORDER = (alias: string) => `${alias}.occurred_at, ${alias}.received_at, ${alias}.customer_id, ${alias}.event_id`;

interface PageEvents {
  /** The derived table `e` (usage_events' columns and carried_over), neither ordered nor limited yet. */
  events: string;
  /**
   * Its order: the meter's, without customer_id when the line reads a single id and nothing carried in (one
   * branch, already in that order, so the plan sorts nothing more).
   */
  order: (alias: string) => string;
  /** The placeholder of q.limit. */
  limit: string;
}

/** The page's events, of each id one range of the index with its own LIMIT; parameters pushed onto `params`. */
function pageEvents(q: LineEventQuery, params: unknown[]): PageEvents {
  const arg = (v: unknown) => `$${params.push(v)}`;
  const ids = [...new Set(q.ids)];
  const [$ids, $metric, $from, $to, $issued, $limit] = [arg(ids), arg(q.metric), arg(q.from), arg(q.to), arg(q.issuedAt), arg(q.limit)];
  const asIssued = `e.received_at <= ${$issued}::timestamptz AND (e.voided_at IS NULL OR e.voided_at > ${$issued}::timestamptz)`;
  const filter = filterSql("e.properties", q.filter, params);
  const bounds: string[] = [];
  const starts: string[] = [];
  const bound = (op: ">" | "<=", k: LineEventKey) => {
    const occurred = `${arg(k.occurred)}::timestamptz`;
    bounds.push(`(${ORDER("e")}) ${op} (${occurred}, ${arg(k.received)}::timestamptz, ${arg(k.customerId)}::text, ${arg(k.eventId)}::text)`);
    // The same bound as an index condition: the row comparison alone would be a filter after the scan.
    starts.push(`AND e.occurred_at ${op === ">" ? ">=" : "<="} ${occurred}`);
  };
  if (q.after) bound(">", q.after);
  if (q.through) bound("<=", q.through);
  const inRange = bounds.length > 0 ? bounds.join(" AND ") : "TRUE";
  const columns = (carried: boolean) =>
    `e.id, e.event_id, e.customer_id, e.metric, e.quantity, e.occurred_at, e.properties, e.received_at, ${carried} AS carried_over, e.voided_at`;
  const branch = (i: number) => `(SELECT ${columns(false)} FROM usage_events e
     WHERE e.customer_id = (${$ids}::text[])[${i}] AND e.metric = ${$metric} AND e.occurred_at >= ${$from}::timestamptz AND e.occurred_at < ${$to}::timestamptz ${starts.join(" ")}
       AND ${asIssued} AND ${filter} AND ${inRange}
     ORDER BY e.occurred_at, e.received_at, e.event_id LIMIT ${$limit})`;
  const parts = ids.map((_, i) => branch(i + 1));
  if (q.carried) {
    // The level carried in: the last event before the segment per id (one backward index step each), the last
    // of those; only then compared with the page's bounds, so a later page never finds an earlier one instead.
    parts.push(`(SELECT * FROM (
      SELECT x.* FROM unnest(${$ids}::text[]) AS c(id)
      CROSS JOIN LATERAL (
        SELECT ${columns(true)} FROM usage_events e
        WHERE e.customer_id = c.id AND e.metric = ${$metric} AND e.occurred_at < ${$from}::timestamptz AND ${asIssued} AND ${filter}
        ORDER BY e.occurred_at DESC, e.received_at DESC, e.event_id DESC LIMIT 1
      ) x
      ORDER BY x.occurred_at DESC, x.received_at DESC, x.customer_id DESC, x.event_id DESC LIMIT 1) e
     WHERE ${inRange})`);
  }
  const order = parts.length === 1 ? (a: string) => `${a}.occurred_at, ${a}.received_at, ${a}.event_id` : ORDER;
  return { events: `(${parts.join("\n     UNION ALL\n     ")}) e`, order, limit: $limit };
}

/** A row's cells as text (and flags), as lineEventRows gives them. */
const ROW_CELLS = `e.id::text AS key, e.event_id, e.customer_id, e.metric, trim_scale(e.quantity)::text AS quantity, ${instant("e.occurred_at")} AS occurred,
     e.properties::text AS properties, ${instant("e.received_at")} AS received, e.carried_over, (e.voided_at IS NOT NULL) AS voided_after_issue`;

/** One page of a line's events, in the meter's order, strictly after `after`. */
export async function lineEventRows(sql: Sql, q: LineEventQuery): Promise<LineEventRow[]> {
  const params: unknown[] = [];
  const { events, order, limit } = pageEvents(q, params);
  return sql.query<LineEventRow>(`SELECT ${ROW_CELLS} FROM ${events} ORDER BY ${order("e")} LIMIT ${limit}`, params);
}

/**
 * Where the page of `limit` events after `after` ends: its last event's key, or null when fewer remain (the
 * page is the last). The page's scan, with one row out.
 */
export async function lineEventPageEnd(sql: Sql, q: Omit<LineEventQuery, "through">): Promise<LineEventKey | null> {
  const params: unknown[] = [];
  const { events, order } = pageEvents(q, params);
  // The instants written for the one row out only: to_char on every row skipped would cost what the scan does.
  const [row] = await sql.query<LineEventKey>(
    `SELECT ${instant("x.occurred_at")} AS occurred, ${instant("x.received_at")} AS received, x.customer_id AS "customerId", x.event_id AS "eventId"
     FROM (SELECT ${ORDER("e")} FROM ${events} ORDER BY ${order("e")} OFFSET $${params.push(q.limit - 1)} LIMIT 1) x`,
    params,
  );
  return row ?? null;
}

/**
 * Text a client sent, defused in SQL as src/services/csv.ts defuseFormula does in JavaScript (a leading
 * apostrophe before =, +, @, a tab or a CR first, and before a "-" that does not start a number), for the CSV
 * PostgreSQL writes itself; test/api/line-events.test.ts holds the two to the same answers. `text`: a column.
 */
export const defusedSql = (text: string) =>
  // ascii(): the first character's code point (=, +, @, tab, CR; -), a cheaper test than left()'s text.
  `CASE WHEN ascii(${text}) IN (61, 43, 64, 9, 13) OR (ascii(${text}) = 45 AND ${text} !~ '^-[0-9]+(\\.[0-9]+)?$')
     THEN '''' || ${text} ELSE ${text} END`;

/** The CSV's cells, in its columns' order, from a row's cells `p` (ROW_CELLS). */
const CSV_CELLS = [
  defusedSql("p.event_id"),
  defusedSql("p.customer_id"),
  defusedSql("p.metric"),
  "p.quantity",
  "p.occurred",
  `coalesce(${defusedSql("p.properties")}, '')`,
  "p.received",
  "p.carried_over::text",
  "p.voided_after_issue::text",
].join(",\n     ");

/**
 * One page of a line's events as CSV written by PostgreSQL (`COPY … TO STDOUT (FORMAT csv, FORCE_QUOTE *)`): the
 * cells of lineEventRows, defused, each one quoted, each record ended by CRLF. Bounded (after `after`, through
 * `through` from lineEventPageEnd, at most `limit`): the caller holds its connection for one bounded read.
 * COPY takes no parameters, so they are written into the text as literals (pg's escapeLiteral).
 */
export async function lineEventsCsvPage(client: pg.ClientBase, q: LineEventQuery): Promise<Buffer[]> {
  const params: unknown[] = [];
  const { events, order, limit } = pageEvents(q, params);
  // The row cells are made once each (properties' jsonb output is the dearest) and defused outside; ordered
  // again there, which the plan takes as given (a subquery scan keeps its order).
  const select = `SELECT ${CSV_CELLS}
     FROM (SELECT ${ROW_CELLS}, e.occurred_at, e.received_at FROM ${events} ORDER BY ${order("e")} LIMIT ${limit}) p
     ORDER BY ${order("p")}`;
  return client.query(new CsvCopy(`COPY (${inlined(select, params)}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)`)).done;
}

/** The text with each $n replaced by the literal of params[n - 1]: strings by escapeLiteral, arrays as ARRAY[…] (the text casts them). */
function inlined(text: string, params: readonly unknown[]): string {
  const literal = (v: unknown): string => {
    if (typeof v === "string") return pg.escapeLiteral(v);
    if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
    if (Array.isArray(v)) return `ARRAY[${v.map(literal).join(", ")}]`;
    throw new TypeError(`no SQL literal for a ${typeof v}`);
  };
  return text.replace(/\$(\d+)/g, (_, n: string) => literal(params[Number(n) - 1]));
}

const LF = 0x0a;
const CR = 0x0d;
/** The first block of a page, doubled up to the largest: a small page takes little, a large one few blocks. */
const FIRST_BLOCK = 64 * 1024;
const LARGEST_BLOCK = 1024 * 1024;

/**
 * COPY … TO STDOUT on a pg client without a library, as the bench's baseline reads it: a submittable query
 * collecting the CopyData messages. The backend sends one per record (the protocol's rule), ending with the LF
 * PostgreSQL writes after a record; that becomes CRLF, the record delimiter of the service's CSV files
 * (csv-stringify's), so the bytes are those csv-stringify wrote for the same cells. A message's bytes are a
 * view of pg's read buffer, which pg reuses: they are copied into blocks at once.
 */
class CsvCopy implements pg.Submittable {
  /** The page's bytes in blocks, not joined (that would copy every byte again). */
  readonly done: Promise<Buffer[]>;
  private settle!: (error: Error | null) => void;
  private readonly blocks: Buffer[] = [];
  private block = Buffer.allocUnsafe(FIRST_BLOCK);
  private used = 0;
  private error: Error | null = null;

  constructor(private readonly text: string) {
    this.done = new Promise((resolve, reject) => {
      let settled = false;
      this.settle = (error) => {
        if (settled) return;
        settled = true;
        if (error) return reject(error);
        if (this.used > 0) this.blocks.push(this.block.subarray(0, this.used));
        resolve(this.blocks);
      };
    });
  }

  submit(connection: pg.Connection): void {
    connection.query(this.text);
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    const record = msg.chunk;
    const n = record.length;
    if (n === 0 || record[n - 1] !== LF) {
      this.error ??= new Error("COPY sent a CopyData message that is not one record");
      return;
    }
    if (this.used + n + 1 > this.block.length) {
      if (this.used > 0) this.blocks.push(this.block.subarray(0, this.used));
      this.block = Buffer.allocUnsafe(Math.max(Math.min(2 * this.block.length, LARGEST_BLOCK), n + 1));
      this.used = 0;
    }
    record.copy(this.block, this.used, 0, n - 1);
    this.used += n - 1;
    this.block[this.used++] = CR;
    this.block[this.used++] = LF;
  }

  // A statement's error comes here, and the ReadyForQuery after it reaches no query (pg has let this one go);
  // a lost connection comes here alone. Either way it is the end.
  handleError(error: Error): void {
    this.settle(error);
  }

  handleReadyForQuery(): void {
    this.settle(this.error);
  }

  // The rest of what pg hands a query: nothing a COPY TO needs.
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
}
