// A usage line's drill-down (DESIGN §10 "Line drill-down", docs/drill-down.md) over HTTP on a real PostgreSQL:
// for every aggregation and a filtered meter, across an amendment's two segments, the listed events are exactly
// the line's (ids, metric, filter, segment, the level carried in), as issued (later arrivals left out, later
// voids flagged), and aggregate as the meter does to the line's `usage`; pages without gaps or duplicates; the
// CSV is the JSON's rows under a header, the same bytes in pages of any size, client text defused as
// defuseFormula does; problems; roles; and a 200,000-event line read as a stream.
import type { Readable } from "node:stream";
import fc from "fast-check";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { defusedSql } from "../../src/db/queries/line-events.js";
import { rebuildRollups } from "../../src/db/queries/usage.js";
import { Decimal, formatDecimal } from "../../src/domain/money.js";
import { type Filter, type Measure, type PlainEvent, aggregateEvents, matchesFilter } from "../../src/domain/rating/measures.js";
import { defuseFormula } from "../../src/services/csv.js";
import { lineEventsCsv } from "../../src/services/documents/line-events-csv.js";
import { type TestRole, expectProblem, useTestApp } from "../helpers/app.js";
import { contractBody, uniqueId } from "../helpers/factories.js";

const t = useTestApp();

const JUNE = "2026-06-01T00:00:00Z";
const CUT = "2026-06-16T12:00:00Z"; // the amendment: two segments per meter
const HEADER = ["eventId", "customerId", "metric", "quantity", "timestamp", "properties", "receivedAt", "carriedOver", "voidedAfterIssue"];

const perUnit = (unitPrice: string) => ({ model: "per_unit", unitPrice });
const METERS = [
  { metric: "api_calls", pricing: perUnit("0.01") },
  { id: "txns", metric: "transactions", aggregation: "count", pricing: perUnit("0.10") },
  { id: "peak", metric: "peak_seats", aggregation: "max", pricing: perUnit("1.00") },
  { id: "storage", metric: "storage_gb", aggregation: "latest", pricing: perUnit("0.50") },
  { id: "mau", metric: "logins", aggregation: "unique_count", uniqueBy: "user", pricing: perUnit("2.00") },
  { id: "seats", metric: "seats", aggregation: "time_weighted", pricing: perUnit("3.00") },
  { id: "req-eu", metric: "requests", filter: { region: ["eu"] }, pricing: perUnit("0.02") },
  { id: "req-amer", metric: "requests", filter: { region: ["us", "ca"] }, pricing: perUnit("0.03") },
] as const;
const UNIQUE_BY: Record<string, string> = { mau: "user" };

interface Sent {
  eventId: string;
  customerId: string;
  metric: string;
  quantity: string;
  timestamp: string;
  properties?: Record<string, unknown>;
  /** Which ingest call sent it: arrival order. */
  batch: number;
  voidedBeforeIssue?: boolean;
  receivedAfterIssue?: boolean;
  voidedAfterIssue?: boolean;
}

interface Item {
  eventId: string;
  customerId: string;
  metric: string;
  quantity: string;
  timestamp: string;
  properties: Record<string, unknown> | null;
  receivedAt: string;
  carriedOver: boolean;
  voidedAfterIssue: boolean;
}

let seq = 0;
const ev = (customerId: string, metric: string, quantity: string, timestamp: string, properties?: Record<string, unknown>) => ({
  eventId: `le-${process.pid}-${++seq}`,
  customerId,
  metric,
  quantity,
  timestamp,
  ...(properties === undefined ? {} : { properties }),
});

/** Every page of a line's events with this page size; asserts each page's size and that no event repeats. */
async function allPages(documentId: string, lineNo: number, limit: number, role: TestRole = "reader"): Promise<Item[]> {
  const out: Item[] = [];
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    expect(pages).toBeLessThan(10_000);
    const res = await t.get(`/v1/documents/${documentId}/lines/${lineNo}/events?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, role);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { data: Item[]; nextCursor: string | null };
    expect(body.data.length).toBeLessThanOrEqual(limit);
    if (body.nextCursor !== null) expect(body.data).toHaveLength(limit);
    out.push(...body.data);
    if (body.nextCursor === null) break;
    cursor = body.nextCursor;
  }
  expect(new Set(out.map((e) => `${e.customerId}|${e.eventId}`)).size).toBe(out.length);
  return out;
}

/** An RFC 4180 CSV whose cells are all quoted (csv-stringify's `quoted`), CRLF after each record. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(cell), (cell = "");
    else if (ch === "\r" && text[i + 1] === "\n") row.push(cell), rows.push(row), (row = []), (cell = ""), i++;
    else cell += ch;
  }
  expect(row.length === 0 && cell === "", "the CSV ends with CRLF").toBe(true);
  return rows;
}

const asCsvRow = (e: Item) => [
  e.eventId, e.customerId, e.metric, e.quantity, e.timestamp, e.properties === null ? "" : JSON.stringify(e.properties),
  e.receivedAt, String(e.carriedOver), String(e.voidedAfterIssue),
];

/** The CSV of a line, parsed: the header, then rows whose properties are compared as JSON. */
async function csvOf(documentId: string, lineNo: number) {
  const res = await t.get(`/v1/documents/${documentId}/lines/${lineNo}/events.csv`, "reader");
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers["content-type"]).toBe("text/csv; charset=utf-8");
  expect(String(res.headers["content-disposition"])).toMatch(new RegExp(`^attachment; filename="(INV|CM)-\\d{6}-line-${lineNo}-events\\.csv"$`));
  const [header, ...rows] = parseCsv(res.body);
  expect(header).toEqual(HEADER);
  // properties as jsonb prints it; compared as JSON.
  return rows.map((r) => r.map((cell, i) => (i === 5 && cell !== "" ? JSON.stringify(JSON.parse(cell)) : cell)));
}

/** A stream's bytes as text. */
async function textOf(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts).toString("utf8");
}

/** The line's CSV as the service writes it in pages of `pageSize` events (the route's pages hold 20,000). */
const csvInPagesOf = async (documentId: string, lineNo: number, pageSize: number) => textOf((await lineEventsCsv(t.db, documentId, lineNo, pageSize)).stream);

/** The meter's usage of [from, to) over the listed events, in their order (the list's order is the meter's). */
function aggregateListed(line: any, items: Item[]): string {
  const e = line.explanation;
  const measure: Measure = { metric: line.metric, aggregation: e.aggregation, filter: (e.filter as Filter | null) ?? null, uniqueBy: UNIQUE_BY[line.meterId] ?? null };
  const events: PlainEvent[] = items.map((x, i) => ({ at: Date.parse(x.timestamp), quantity: x.quantity, properties: x.properties, received: i, id: x.eventId }));
  return formatDecimal(aggregateEvents(measure, events, Date.parse(e.segment.from), Date.parse(e.segment.to)));
}

describe("the events behind each usage line, for every aggregation, as issued", () => {
  it("lists exactly the line's events; they aggregate to its usage; later arrivals are left out and later voids flagged", async () => {
    const customerId = uniqueId("le-cust");
    const accountId = uniqueId("le-acct");
    const other = uniqueId("le-other"); // no contract: its events are nobody's line
    const res = await t.post("/v1/contracts", contractBody({ customerId, accountIds: [accountId], terms: { platformFee: { amount: "100.00" }, meters: METERS } }), "writer");
    expect(res.statusCode, res.body).toBe(201);
    const contract = res.json();
    const amend = await t.post(`/v1/contracts/${contract.id}/amendments`, { effectiveFrom: CUT, reason: "split June", terms: { platformFee: { amount: "100.00" }, meters: METERS } }, "writer");
    expect(amend.statusCode, amend.body).toBe(201);

    const sent: Sent[] = [];
    let batch = 0;
    const send = async (events: ReturnType<typeof ev>[], flags: Partial<Sent> = {}) => {
      batch++;
      await t.ingest(events);
      sent.push(...events.map((e) => ({ ...e, batch, ...flags })));
      return events;
    };
    const hour = (d: number, h: number) => `2026-06-${String(d).padStart(2, "0")}T${String(h).padStart(2, "0")}:17:00.250Z`;

    // sum: 40 events of the customer and its account over June, edges included; neighbours outside it.
    await send([
      ...Array.from({ length: 36 }, (_, i) => ev(i % 4 === 3 ? accountId : customerId, "api_calls", String(10 + i), hour(1 + (i % 30), i % 24))),
      ev(customerId, "api_calls", "7", JUNE),
      ev(customerId, "api_calls", "8", CUT),
      ev(customerId, "api_calls", "9", "2026-06-16T11:59:59.999Z"),
      ev(customerId, "api_calls", "11", "2026-06-30T23:59:59.999Z"),
      ev(customerId, "api_calls", "1000", "2026-05-31T23:59:59.999Z"),
      ev(customerId, "api_calls", "1000", "2026-07-01T00:00:00Z"),
      ev(other, "api_calls", "1000", hour(5, 5)),
    ]);
    // count (quantities ignored), max, unique_count (events without the property are listed, and count nothing).
    await send([
      ev(customerId, "transactions", "0", hour(2, 1)),
      ev(accountId, "transactions", "5.5", hour(3, 1)),
      ev(customerId, "transactions", "2", hour(20, 1)),
      ev(customerId, "peak_seats", "12", hour(2, 3)),
      ev(accountId, "peak_seats", "27.25", hour(10, 3)),
      ev(customerId, "peak_seats", "25", hour(18, 3)),
      ev(customerId, "peak_seats", "90", "2026-05-30T00:00:00Z"),
      ev(customerId, "logins", "1", hour(2, 4), { user: "a" }),
      ev(customerId, "logins", "1", hour(3, 4), { user: "b", device: "ios" }),
      ev(accountId, "logins", "1", hour(4, 4), { user: "a" }),
      ev(customerId, "logins", "1", hour(5, 4)),
      ev(customerId, "logins", "1", hour(20, 4), { user: 1 }),
      ev(customerId, "logins", "1", hour(21, 4), { user: "1" }),
    ]);
    // latest and time_weighted look back: April's level is not the one carried in, May's is.
    await send([
      ev(customerId, "storage_gb", "300", "2026-04-20T00:00:00Z"),
      ev(customerId, "storage_gb", "420", "2026-05-10T12:00:00Z"),
      ev(accountId, "storage_gb", "500", hour(10, 6)),
      ev(customerId, "storage_gb", "450", hour(20, 6)),
      ev(customerId, "seats", "80", "2026-04-02T00:00:00Z"),
      ev(customerId, "seats", "100", "2026-05-20T08:00:00Z"),
      ev(customerId, "seats", "150", "2026-06-16T00:00:00Z"), // in segment 1: the level carried into segment 2
      ev(accountId, "seats", "120.5", "2026-06-25T06:00:00Z"),
      ev(customerId, "requests", "10", hour(2, 7), { region: "eu" }),
      ev(customerId, "requests", "20", hour(3, 7), { region: "us" }),
      ev(accountId, "requests", "5", hour(17, 7), { region: "ca", tier: "x" }),
      ev(accountId, "requests", "7", hour(18, 7), { region: "eu" }),
      ev(customerId, "requests", "1000", hour(19, 7), { region: "EU" }), // no meter's: unpriced
      ev(customerId, "requests", "1000", hour(19, 8)), // no region: unpriced
    ]);
    // The same instant, later arrival: the later one is the `latest` (and listed after it).
    const [tie] = await send([ev(accountId, "storage_gb", "470", hour(20, 6))]);
    // Voided before the issue: not listed (and not the level carried in either).
    const [voidedBefore] = await send([ev(customerId, "seats", "999", "2026-05-25T00:00:00Z")]);
    const [voidedSum] = await send([ev(customerId, "api_calls", "5000", hour(12, 12))]);
    const v = await t.post("/v1/usage/void", { customerId, eventIds: [voidedBefore!.eventId, voidedSum!.eventId], reason: "duplicate" }, "writer");
    expect(v.statusCode, v.body).toBe(200);
    for (const s of sent) if (s.eventId === voidedBefore!.eventId || s.eventId === voidedSum!.eventId) s.voidedBeforeIssue = true;

    const calc = await t.preview(contract.id, JUNE);
    await t.approveAll(calc);
    const issued = await t.issue(contract.id, calc.id);
    expect(issued.statusCode, issued.body).toBe(201);
    const doc = issued.json();

    // After the issue: arrivals inside the period are not listed; voids are listed, flagged.
    await send([ev(customerId, "api_calls", "777", hour(9, 9)), ev(customerId, "seats", "5", hour(9, 9)), ev(customerId, "storage_gb", "1", hour(29, 9))], {
      receivedAfterIssue: true,
    });
    const seatsCarried = sent.find((s) => s.metric === "seats" && s.quantity === "100")!;
    const sumVoided = sent.find((s) => s.metric === "api_calls" && s.quantity === "10")!;
    const peakVoided = sent.find((s) => s.metric === "peak_seats" && s.quantity === "27.25")!;
    for (const [who, ids] of [[customerId, [seatsCarried.eventId, sumVoided.eventId]], [accountId, [peakVoided.eventId]]] as const) {
      const r = await t.post("/v1/usage/void", { customerId: who, eventIds: ids, reason: "corrected after the invoice" }, "writer");
      expect(r.statusCode, r.body).toBe(200);
    }
    for (const s of [seatsCarried, sumVoided, peakVoided]) s.voidedAfterIssue = true;

    const usageLines = doc.lines.filter((l: any) => l.kind === "usage");
    expect(usageLines).toHaveLength(METERS.length * 2);
    const mine = new Set([customerId, accountId]);
    for (const line of usageLines) {
      const { segment, aggregation, filter } = line.explanation;
      const fromMs = Date.parse(segment.from);
      const toMs = Date.parse(segment.to);
      const what = `line ${line.lineNo} (${line.meterId}, ${segment.from} to ${segment.to})`;
      const items = await allPages(doc.id, line.lineNo, 500);

      // Exactly these: the contract's ids, the metric and filter, as issued, inside the segment; the level carried in.
      const eligible = sent.filter(
        (s) => mine.has(s.customerId) && s.metric === line.metric && matchesFilter(filter ?? null, s.properties) && !s.voidedBeforeIssue && !s.receivedAfterIssue,
      );
      const inside = eligible.filter((s) => Date.parse(s.timestamp) >= fromMs && Date.parse(s.timestamp) < toMs);
      const before = eligible.filter((s) => Date.parse(s.timestamp) < fromMs).sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp) || a.batch - b.batch);
      const carried = aggregation === "latest" || aggregation === "time_weighted" ? before.slice(-1) : [];
      const want = [...carried, ...inside];
      expect(items.map((i) => i.eventId).sort(), what).toEqual(want.map((s) => s.eventId).sort());
      expect(items.filter((i) => i.carriedOver).map((i) => i.eventId), what).toEqual(carried.map((s) => s.eventId));
      expect(items.filter((i) => i.voidedAfterIssue).map((i) => i.eventId).sort(), what).toEqual(want.filter((s) => s.voidedAfterIssue).map((s) => s.eventId).sort());
      for (const i of items) {
        const s = want.find((w) => w.eventId === i.eventId)!;
        expect(i, what).toMatchObject({ customerId: s.customerId, metric: s.metric, properties: s.properties ?? null });
        expect(i.quantity).toBe(formatDecimal(new Decimal(s.quantity)));
        expect(Date.parse(i.timestamp)).toBe(Date.parse(s.timestamp));
        expect(i.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
        expect(Date.parse(i.receivedAt)).toBeLessThanOrEqual(Date.parse(doc.issuedAt));
      }
      // The meter's order: timestamps never go back, the carried-in level first.
      for (let k = 1; k < items.length; k++) expect(Date.parse(items[k]!.timestamp)).toBeGreaterThanOrEqual(Date.parse(items[k - 1]!.timestamp));
      if (carried.length) expect(items[0]!.carriedOver).toBe(true);

      // Aggregated as the meter does, they give the line's usage as issued.
      expect(aggregateListed(line, items), `${what}: ${JSON.stringify(items)}`).toBe(line.explanation.usage);
      expect(items.length, what).toBeGreaterThan(0);

      // The same rows in pages of 1 and 7, and as CSV.
      expect(await allPages(doc.id, line.lineNo, 1)).toEqual(items);
      expect(await allPages(doc.id, line.lineNo, 7)).toEqual(items);
      expect(await csvOf(doc.id, line.lineNo)).toEqual(items.map(asCsvRow));
      // Pages end inside runs of one instant, between ids and after the level carried in: the same bytes.
      const body = (await t.get(`/v1/documents/${doc.id}/lines/${line.lineNo}/events.csv`, "reader")).body;
      for (const pageSize of [1, 2, 3]) expect(await csvInPagesOf(doc.id, line.lineNo, pageSize), `${what}, pages of ${pageSize}`).toBe(body);
    }

    // The figures this fixture was written for, so the check above cannot pass vacuously.
    const usageOf = (meterId: string) => usageLines.filter((l: any) => l.meterId === meterId).map((l: any) => l.explanation.usage);
    expect(usageOf("storage")).toEqual(["500", "470"]); // segment 1: the 10th's 500; segment 2: the later of the tie
    expect(usageOf("peak")).toEqual(["27.25", "25"]);
    expect(usageOf("mau")).toEqual(["2", "2"]);
    expect(usageOf("req-eu")).toEqual(["10", "7"]);
    expect(usageOf("req-amer")).toEqual(["20", "5"]);
    const storage2 = usageLines.find((l: any) => l.meterId === "storage" && l.explanation.segment.from === "2026-06-16T12:00:00.000Z");
    const storageItems = await allPages(doc.id, storage2.lineNo, 500);
    expect(storageItems.at(-1)!.eventId).toBe(tie!.eventId);
    const seats2 = usageLines.find((l: any) => l.meterId === "seats" && l.explanation.segment.from === "2026-06-16T12:00:00.000Z");
    expect((await allPages(doc.id, seats2.lineNo, 500)).map((i) => [i.quantity, i.carriedOver])).toEqual([["150", true], ["120.5", false]]);
    const seats1 = usageLines.find((l: any) => l.meterId === "seats" && l.explanation.segment.to === "2026-06-16T12:00:00.000Z");
    expect((await allPages(doc.id, seats1.lineNo, 500)).map((i) => [i.quantity, i.carriedOver, i.voidedAfterIssue])).toEqual([
      ["100", true, true],
      ["150", false, false],
    ]);

    // Problems: not a usage line, unknown line, unknown document, bad parameters and cursors.
    const fee = doc.lines.find((l: any) => l.kind === "platform_fee");
    for (const suffix of ["events", "events.csv"]) {
      const notUsage = expectProblem(await t.get(`/v1/documents/${doc.id}/lines/${fee.lineNo}/${suffix}`, "reader"), 409, "conflict");
      expect(notUsage).toMatchObject({ lineNo: fee.lineNo, kind: "platform_fee" });
      expect(notUsage.detail).toContain("platform_fee");
      const noLine = expectProblem(await t.get(`/v1/documents/${doc.id}/lines/999/${suffix}`, "reader"), 404, "not_found");
      expect(noLine.detail).toBe(`document ${doc.number} has no line 999`);
      expectProblem(await t.get(`/v1/documents/0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b/lines/1/${suffix}`, "reader"), 404, "not_found");
      for (const bad of ["0", "x", "1.5", "-1", "01"]) {
        const p = expectProblem(await t.get(`/v1/documents/${doc.id}/lines/${bad}/${suffix}`, "reader"), 400, "validation_failed");
        expect(p.errors).toEqual([expect.objectContaining({ path: "params.lineNo" })]);
      }
      expect(expectProblem(await t.get(`/v1/documents/not-a-uuid/lines/1/${suffix}`, "reader"), 400, "validation_failed").errors).toEqual([
        expect.objectContaining({ path: "params.id" }),
      ]);
      expectProblem(await t.get(`/v1/documents/${doc.id}/lines/${usageLines[0].lineNo}/${suffix}?foo=1`, "reader"), 400, "validation_failed");
    }
    const url = `/v1/documents/${doc.id}/lines/${usageLines[0].lineNo}/events`;
    for (const q of ["limit=0", "limit=501", "limit=1e2", "cursor=%21%21", `cursor=${Buffer.from("abc").toString("base64url")}`, `cursor=${Buffer.from("999999999999").toString("base64url")}`]) {
      const p = expectProblem(await t.get(`${url}?${q}`, "reader"), 400, "validation_failed");
      expect(p.errors[0].path, q).toBe(q.startsWith("limit") ? "querystring.limit" : "querystring.cursor");
    }
    // A cursor is an event of the line's ids and metric: one of another line's metric is refused.
    const txns = usageLines.find((l: any) => l.meterId === "txns");
    const txnsCursor = (await t.get(`/v1/documents/${doc.id}/lines/${txns.lineNo}/events?limit=1`, "reader")).json().nextCursor;
    expect(expectProblem(await t.get(`${url}?cursor=${txnsCursor}`, "reader"), 400, "validation_failed").errors[0].path).toBe("querystring.cursor");

    // Roles: any key reads; no key is 401.
    for (const role of ["reader", "writer", "approver", "admin"] as const) {
      expect((await t.get(url, role)).statusCode).toBe(200);
      expect((await t.get(`${url}.csv`, role)).statusCode).toBe(200);
    }
    for (const path of [url, `${url}.csv`]) {
      const anonymous = await t.app.inject({ method: "GET", url: path });
      expectProblem(anonymous, 401, "unauthorized");
    }
  });
});

describe("client text in the CSV", () => {
  it("is defused as defuseFormula does: in the SQL PostgreSQL runs for the CSV, and through the route", async () => {
    // The rule in SQL against the one in JavaScript: the cases it names, and strings made of the characters it looks at.
    const cases = ["", "=", "=1+1", "+1", "@A1", "\tx", "\rx", "-", "-1", "-1.5", "-1.", "-.5", "-1e5", "-1.5.5", "-x", "- 1", "-1\n", "-١", "-１",
      "--1", "'=x", "a=b", "x", "1", "é", "=é", '"=', " =x"];
    const chars = ["=", "+", "-", "@", "\t", "\r", "\n", "0", "7", ".", "e", "'", '"', ",", " ", "é", "١"];
    const made = fc.sample(fc.array(fc.constantFrom(...chars), { maxLength: 6 }).map((cs) => cs.join("")), { numRuns: 2000, seed: 20261202 });
    const all = [...cases, ...made];
    const rows = await t.db.sql.query<{ d: string }>(`SELECT ${defusedSql("u.x")} AS d FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) ORDER BY u.i`, [all]);
    expect(rows.map((r) => r.d)).toEqual(all.map(defuseFormula));

    // Through the route: ids, metric and properties as a client sent them, each cell as defuseFormula makes it.
    const customerId = uniqueId("=le-f");
    const contract = await t.createContract(contractBody({ customerId, terms: { meters: [{ metric: "-calls", pricing: perUnit("0.01") }] } }));
    const ids = ["=1+1", "+cmd", "@SUM(A1)", "-2", "-2.5", "-x", "'=quoted", 'a "b", c', "plain"];
    await t.ingest(ids.map((id, i) => ({ ...ev(customerId, "-calls", "1", `2026-06-0${i + 1}T10:00:00Z`, { "=k": "=v", n: -1 }), eventId: id })));
    const calc = await t.preview(contract.id, JUNE);
    await t.approveAll(calc);
    const issued = await t.issue(contract.id, calc.id);
    expect(issued.statusCode, issued.body).toBe(201);
    const line = issued.json().lines.find((l: any) => l.kind === "usage");
    const items = await allPages(issued.json().id, line.lineNo, 500);
    expect(items).toHaveLength(ids.length);
    const defused = (e: Item) => [defuseFormula(e.eventId), defuseFormula(e.customerId), defuseFormula(e.metric), ...asCsvRow(e).slice(3)];
    expect(await csvOf(issued.json().id, line.lineNo)).toEqual(items.map(defused));
    const cells = (await csvOf(issued.json().id, line.lineNo)).map((r) => r.slice(0, 3));
    expect(cells[0]).toEqual(["'=1+1", `'${customerId}`, "'-calls"]);
    expect(cells.map((c) => c[0])).toEqual(["'=1+1", "'+cmd", "'@SUM(A1)", "-2", "-2.5", "'-x", "'=quoted", 'a "b", c', "plain"]);
  });
});

describe("a line of 200,000 events", () => {
  it("streams its CSV (read as a stream): every row once, adding up to the line's usage", async () => {
    const customerId = uniqueId("le-big");
    const contract = await t.createContract(contractBody({ customerId, terms: { meters: [{ metric: "api_calls", pricing: perUnit("0.001") }] } }));
    const N = 200_000;
    const owner = new pg.Client({ connectionString: t.url });
    await owner.connect();
    try {
      // 12 s apart from June 1st: 27.8 days of June; quantities 1..7.
      await owner.query(
        `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash)
         SELECT $1, 'big-' || g, 'api_calls', 1 + g % 7, timestamptz '${JUNE}' + g * interval '12 seconds', md5(g::text)
         FROM generate_series(0, $2::int - 1) g`,
        [customerId, N],
      );
      await owner.query("ANALYZE usage_events");
    } finally {
      await owner.end();
    }
    await rebuildRollups(t.db.sql, [{ customer_id: customerId, metric: "api_calls" }]);
    const calc = await t.preview(contract.id, JUNE);
    await t.approveAll(calc);
    const issued = await t.issue(contract.id, calc.id);
    expect(issued.statusCode, issued.body).toBe(201);
    const doc = issued.json();
    const line = doc.lines.find((l: any) => l.kind === "usage");
    // Σ (1 + g % 7) over g < 200,000: 28,571 whole weeks of 28, and g = 199,997..199,999 → 1 + 2 + 3.
    expect(line.explanation.usage).toBe(String(28_571 * 28 + 6));

    const res = await t.app.inject({ method: "GET", url: `/v1/documents/${doc.id}/lines/${line.lineNo}/events.csv`, headers: { authorization: "Bearer test-reader-secret" }, payloadAsStream: true });
    expect(res.statusCode).toBe(200);
    let rows = 0;
    let total = 0n;
    let rest = "";
    let chunks = 0;
    for await (const chunk of res.stream()) {
      chunks++;
      const lines = (rest + chunk.toString("utf8")).split("\r\n");
      rest = lines.pop()!;
      for (const l of lines) {
        if (rows++ === 0) {
          expect(l).toBe(HEADER.map((h) => `"${h}"`).join(","));
          continue;
        }
        total += BigInt(l.split('","')[3]!);
      }
    }
    expect(rest).toBe("");
    expect(rows).toBe(N + 1);
    expect(String(total)).toBe(line.explanation.usage);
    expect(chunks).toBeGreaterThan(10); // it came as a stream, not as one body
  });
});
