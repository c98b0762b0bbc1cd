// What a meter measures (DESIGN §3, docs/rating.md "What a meter measures"), end to end over HTTP with the real
// PostgreSQL: every aggregation from ingest to the issued document and its backup, filters and their
// validation, amendments and the rollup rebuilds they cause, late events and voids, the usage summary, the
// minimum billed to the cent, a first-tier flat fee at zero usage, preview = issue, and a property test that
// holds the SQL figures to the reference definition (aggregateEvents).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Decimal, formatDecimal } from "../../src/domain/money.js";
import { type Measure, type PlainEvent, aggregateEvents, matchesFilter } from "../../src/domain/rating/measures.js";
import { rollupMismatches, uniqueValueMismatches } from "../../src/db/queries/audit.js";
import { expectProblem, useTestApp } from "../helpers/app.js";
import { contractBody, uniqueId } from "../helpers/factories.js";

const t = useTestApp();

const JUNE = "2026-06-01T00:00:00Z";
const JUNE_MS = Date.parse(JUNE);
const JULY_MS = Date.parse("2026-07-01T00:00:00Z");

interface Ev {
  eventId: string;
  customerId: string;
  metric: string;
  quantity: string;
  timestamp: string;
  properties?: Record<string, unknown>;
}

let seq = 0;
/** One usage event with a fresh id. */
const ev = (customerId: string, metric: string, quantity: string, timestamp: string, properties?: Record<string, unknown>): Ev => ({
  eventId: `mtr-${process.pid}-${++seq}`,
  customerId,
  metric,
  quantity,
  timestamp,
  ...(properties === undefined ? {} : { properties }),
});

const perUnit = (unitPrice: string) => ({ model: "per_unit", unitPrice });

/** A monthly 2026 contract for a fresh customer with these meters (and other terms); `over` replaces fields. */
async function contractWith(meters: unknown[], over: Record<string, unknown> = {}, extraTerms: Record<string, unknown> = {}) {
  const customerId = (over.customerId as string | undefined) ?? uniqueId("mtr");
  const c = await t.createContract(contractBody({ customerId, name: `meters ${customerId}`, terms: { meters, ...extraTerms }, ...over }));
  return { c, customerId: c.customerId as string };
}

/** The usage lines of one meter, in segment order. */
const usageLines = (calc: { lines: any[] }, meterId: string) => calc.lines.filter((l) => l.kind === "usage" && l.meterId === meterId);
/** The one usage line of a meter (a period with one segment). */
function usageLine(calc: { lines: any[] }, meterId: string) {
  const lines = usageLines(calc, meterId);
  expect(lines, `usage lines of ${meterId}: ${JSON.stringify(calc.lines)}`).toHaveLength(1);
  return lines[0];
}

const kinds = (calc: { exceptions: { kind: string }[] }) => calc.exceptions.map((e) => e.kind);

/** Approves the calculation's blocking exceptions and issues it: the document. */
async function issue(contractId: string, calc: any) {
  await t.approveAll(calc);
  const res = await t.issue(contractId, calc.id);
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

/** The backup CSV's line rows, as objects keyed by the header. */
async function backupLines(documentId: string): Promise<Record<string, string>[]> {
  const res = await t.get(`/v1/documents/${documentId}/backup.csv`, "reader");
  expect(res.statusCode, res.body).toBe(200);
  const rows = res.body.trimEnd().split("\r\n").map((r) => (r === "" ? [] : r.slice(1, -1).split('","')));
  const header = rows[9]!;
  return rows.slice(10).map((row) => Object.fromEntries(header.map((h, i) => [h, row[i] ?? ""])));
}

async function voidEvents(customerId: string, eventIds: string[]) {
  const res = await t.post("/v1/usage/void", { customerId, eventIds, reason: "meter correction" }, "writer");
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json()).toMatchObject({ voided: eventIds.length, notFound: [] });
}

/** Every check an issued usage line of a meter must pass: the preview's figures on the document and in the backup. */
async function expectIssuedMeterLine(
  doc: any,
  meterId: string,
  want: { metric: string; aggregation: string; filter: Record<string, unknown[]> | null; filterText: string; usage: string; amount: string },
) {
  const line = doc.lines.find((l: any) => l.kind === "usage" && l.meterId === meterId);
  expect(line, JSON.stringify(doc.lines)).toBeDefined();
  expect(line).toMatchObject({ meterId, metric: want.metric, amount: want.amount });
  expect(line.explanation).toMatchObject({ aggregation: want.aggregation, filter: want.filter, usage: want.usage });
  const again = (await t.get(`/v1/documents/${doc.id}`, "reader")).json();
  expect(again.lines).toEqual(doc.lines);
  const csv = (await backupLines(doc.id)).find((r) => r.kind === "usage" && r.meterId === meterId);
  expect(csv).toMatchObject({ meterId, metric: want.metric, aggregation: want.aggregation, filter: want.filterText, usage: want.usage, amount: want.amount });
}

// ---------------------------------------------------------------------------------------------------------

describe("each aggregation, from ingest to the issued document", () => {
  it("count: the number of events, quantities ignored", async () => {
    const { c, customerId } = await contractWith([
      { id: "txns", metric: "transactions", aggregation: "count", included: "2", pricing: perUnit("1.50") },
    ]);
    await t.ingest([
      ev(customerId, "transactions", "10", "2026-06-02T09:00:00Z"),
      ev(customerId, "transactions", "0", "2026-06-02T09:30:00Z"),
      ev(customerId, "transactions", "999.5", "2026-06-15T12:00:00Z"),
      ev(customerId, "transactions", "3", "2026-06-30T23:59:59.999Z"),
      ev(customerId, "transactions", "1", JUNE),
      // Outside June: not counted.
      ev(customerId, "transactions", "1", "2026-05-31T23:59:59.999Z"),
      ev(customerId, "transactions", "1", "2026-07-01T00:00:00Z"),
    ]);
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "txns")).toMatchObject({
      metric: "transactions",
      aggregation: "count",
      filter: null,
      usage: "5",
      included: "2",
      billable: "3",
      amount: "4.50",
    });
    expect(calc.total).toBe("4.50");
    expect(calc.exceptions).toEqual([]);
    const doc = await issue(c.id, calc);
    expect(doc.amount).toBe("4.50");
    await expectIssuedMeterLine(doc, "txns", { metric: "transactions", aggregation: "count", filter: null, filterText: "", usage: "5", amount: "4.50" });
  });

  it("max: the peak in the period (two events in one hour, larger ones just outside it)", async () => {
    const { c, customerId } = await contractWith([
      { id: "peak-seats", metric: "seats", aggregation: "max", included: "20", pricing: perUnit("10.00") },
    ]);
    await t.ingest([
      ev(customerId, "seats", "12", "2026-06-03T00:00:00Z"),
      ev(customerId, "seats", "27", "2026-06-10T08:15:00Z"),
      ev(customerId, "seats", "25", "2026-06-10T08:45:00Z"),
      ev(customerId, "seats", "18", "2026-06-28T17:00:00Z"),
      ev(customerId, "seats", "90", "2026-05-31T23:59:59Z"),
      ev(customerId, "seats", "95", "2026-07-01T00:00:00Z"),
    ]);
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "peak-seats")).toMatchObject({ aggregation: "max", usage: "27", included: "20", billable: "7", amount: "70.00" });
    const doc = await issue(c.id, calc);
    expect(doc.amount).toBe("70.00");
    await expectIssuedMeterLine(doc, "peak-seats", { metric: "seats", aggregation: "max", filter: null, filterText: "", usage: "27", amount: "70.00" });
  });

  it("latest: no event in the period → the last level before it (looking back across months)", async () => {
    const { c, customerId } = await contractWith([
      { id: "storage-end", metric: "storage_gb", aggregation: "latest", pricing: perUnit("0.50") },
    ]);
    await t.ingest([
      ev(customerId, "storage_gb", "300", "2026-04-20T00:00:00Z"),
      ev(customerId, "storage_gb", "420", "2026-05-10T12:00:00Z"),
      ev(customerId, "storage_gb", "999", "2026-07-02T00:00:00Z"), // after the period: not the June figure
    ]);
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "storage-end")).toMatchObject({ aggregation: "latest", usage: "420", billable: "420", amount: "210.00" });
    const doc = await issue(c.id, calc);
    await expectIssuedMeterLine(doc, "storage-end", { metric: "storage_gb", aggregation: "latest", filter: null, filterText: "", usage: "420", amount: "210.00" });
    // With nothing before it at all, latest is 0: April's figure is the April level, March has none.
    expect(usageLine(await t.preview(c.id, "2026-03-01T00:00:00Z"), "storage-end")).toMatchObject({ usage: "0", amount: "0.00" });
  });

  it("unique_count: distinct properties[uniqueBy] by canonical JSON; events without it (or null) do not count", async () => {
    const { c, customerId } = await contractWith([
      { id: "mau", metric: "logins", aggregation: "unique_count", uniqueBy: "user", included: "1", pricing: perUnit("5.00") },
    ]);
    await t.ingest([
      ev(customerId, "logins", "1", "2026-06-02T00:00:00Z", { user: "a" }),
      ev(customerId, "logins", "7", "2026-06-03T00:00:00Z", { user: "b" }),
      ev(customerId, "logins", "1", "2026-06-04T00:00:00Z", { user: "a", device: "ios" }),
      ev(customerId, "logins", "1", "2026-06-05T00:00:00Z", { user: "c" }),
      ev(customerId, "logins", "1", "2026-06-06T00:00:00Z", { user: "1" }),
      ev(customerId, "logins", "1", "2026-06-06T00:00:01Z", { user: 1 }), // 1 and "1" differ
      ev(customerId, "logins", "1", "2026-06-07T00:00:00Z"), // no properties
      ev(customerId, "logins", "1", "2026-06-07T00:00:01Z", { user: null }),
      ev(customerId, "logins", "1", "2026-06-07T00:00:02Z", { account: "a" }),
      ev(customerId, "logins", "1", "2026-05-20T00:00:00Z", { user: "z" }), // May
    ]);
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "mau")).toMatchObject({ aggregation: "unique_count", usage: "5", included: "1", billable: "4", amount: "20.00" });
    const doc = await issue(c.id, calc);
    await expectIssuedMeterLine(doc, "mau", { metric: "logins", aggregation: "unique_count", filter: null, filterText: "", usage: "5", amount: "20.00" });
  });

  it("time_weighted: 100 seats from the 1st and 150 from the 16th of June → 125; a level set in May is carried in", async () => {
    const meter = { id: "seat-months", metric: "seats", aggregation: "time_weighted", included: "100", pricing: perUnit("40.00") };
    const fromFirst = await contractWith([meter]);
    await t.ingest([
      ev(fromFirst.customerId, "seats", "100", JUNE),
      ev(fromFirst.customerId, "seats", "150", "2026-06-16T00:00:00Z"),
    ]);
    const carried = await contractWith([meter]);
    await t.ingest([
      ev(carried.customerId, "seats", "80", "2026-04-02T00:00:00Z"),
      ev(carried.customerId, "seats", "100", "2026-05-20T08:00:00Z"),
      ev(carried.customerId, "seats", "150", "2026-06-16T00:00:00Z"),
    ]);
    for (const { c } of [fromFirst, carried]) {
      const calc = await t.preview(c.id, JUNE);
      const line = usageLine(calc, "seat-months");
      expect(line).toMatchObject({ aggregation: "time_weighted", usage: "125", included: "100", billable: "25", amount: "1000.00" });
      expect(line.description).toContain("seat-months (seats, time-weighted average): 125 used − 100 included = 25 billable");
      const doc = await issue(c.id, calc);
      expect(doc.amount).toBe("1000.00");
      await expectIssuedMeterLine(doc, "seat-months", { metric: "seats", aggregation: "time_weighted", filter: null, filterText: "", usage: "125", amount: "1000.00" });
    }
    // May of the carried contract: 80 until the 20th 08:00, then 100: (80 × (19 d + 8 h) + 100 × (11 d + 16 h)) ÷ 31 d.
    const may = usageLine(await t.preview(carried.c.id, "2026-05-01T00:00:00Z"), "seat-months");
    const expected = new Decimal(80).times(19 * 24 + 8).plus(new Decimal(100).times(11 * 24 + 16)).dividedBy(31 * 24);
    expect(new Decimal(may.usage).minus(expected).abs().lessThan("1e-30"), `${may.usage} vs ${expected}`).toBe(true);
  });

  it("sum with a filter: only the events whose property is one of the values", async () => {
    const filter = { plan: ["pro", "team"] };
    const { c, customerId } = await contractWith([{ id: "gb-paid", metric: "gb", filter, pricing: perUnit("2.00") }]);
    await t.ingest([
      ev(customerId, "gb", "10", "2026-06-02T10:00:00Z", { plan: "pro" }),
      ev(customerId, "gb", "5.5", "2026-06-02T10:20:00Z", { plan: "team", region: "eu" }),
      ev(customerId, "gb", "4.5", "2026-06-20T00:00:00Z", { plan: "team" }),
    ]);
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "gb-paid")).toMatchObject({ aggregation: "sum", filter, usage: "20", amount: "40.00" });
    expect(usageLine(calc, "gb-paid").description).toContain("gb-paid (gb, sum; plan in [pro, team])");
    const doc = await issue(c.id, calc);
    await expectIssuedMeterLine(doc, "gb-paid", { metric: "gb", aggregation: "sum", filter, filterText: "plan in [pro, team]", usage: "20", amount: "40.00" });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("filters", () => {
  it("two meters of one metric at two prices; an event matching neither → unpriced_metric naming its quantity", async () => {
    const eu = { region: ["eu"] };
    const us = { region: ["us"] };
    const { c, customerId } = await contractWith([
      { id: "calls-eu", metric: "calls", filter: eu, pricing: perUnit("0.10") },
      { id: "calls-us", metric: "calls", filter: us, pricing: perUnit("0.20") },
    ]);
    await t.ingest([
      ev(customerId, "calls", "600", "2026-06-02T10:00:00Z", { region: "eu" }),
      ev(customerId, "calls", "400", "2026-06-02T10:30:00Z", { region: "eu" }),
      ev(customerId, "calls", "500", "2026-06-02T10:40:00Z", { region: "us" }),
      ev(customerId, "calls", "7", "2026-06-02T10:50:00Z", { region: "apac" }),
    ]);
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "calls-eu")).toMatchObject({ metric: "calls", filter: eu, usage: "1000", amount: "100.00" });
    expect(usageLine(calc, "calls-us")).toMatchObject({ metric: "calls", filter: us, usage: "500", amount: "100.00" });
    expect(calc.total).toBe("200.00");
    const unpriced = calc.exceptions.filter((e: any) => e.kind === "unpriced_metric");
    expect(unpriced).toHaveLength(1);
    expect(unpriced[0]).toMatchObject({ blocking: true, status: "open", subject: "calls", details: { metric: "calls", quantity: "7" } });
    expect(unpriced[0].message).toContain("(7)");
    const summary = (await t.get(`/v1/contracts/${c.id}/usage-summary?at=2026-06-15T00:00:00Z`, "reader")).json();
    expect(summary.meters.map((m: any) => [m.meterId, m.used])).toEqual([["calls-eu", "1000"], ["calls-us", "500"]]);
    expect(summary.unmetered).toEqual([{ metric: "calls", used: "7" }]);
    expect((await t.issue(c.id, calc.id)).json().code).toBe("blocking_exceptions");
    const doc = await issue(c.id, calc);
    expect(doc.amount).toBe("200.00"); // the apac usage is not billed
    const csv = await backupLines(doc.id);
    expect(csv.filter((r) => r.kind === "usage").map((r) => [r.meterId, r.aggregation, r.filter, r.amount])).toEqual([
      ["calls-eu", "sum", "region in [eu]", "100.00"],
      ["calls-us", "sum", "region in [us]", "100.00"],
    ]);
  });

  const refused = async (meters: unknown[]) => {
    const res = await t.post("/v1/contracts", contractBody({ customerId: uniqueId("bad"), terms: { meters } }), "writer");
    const body = expectProblem(res, 400, "validation_failed");
    return body.errors as { path: string; message: string }[];
  };

  it("overlapping filters → 400 naming both meters", async () => {
    const errors = await refused([
      { id: "a", metric: "calls", filter: { region: ["eu", "us"] }, pricing: perUnit("1") },
      { id: "b", metric: "calls", filter: { region: ["us", "apac"] }, pricing: perUnit("2") },
    ]);
    const overlap = errors.find((e) => /overlap/.test(e.message));
    expect(overlap, JSON.stringify(errors)).toBeDefined();
    expect(overlap!.path).toBe("body.terms.meters.1.filter");
    expect(overlap!.message).toContain("meters[0]");
    expect(overlap!.message).toContain("meters[1]");
    expect(overlap!.message).toContain('"a"');
    expect(overlap!.message).toContain('"b"');
    // Filters on different properties can both match one event: also overlapping.
    const other = await refused([
      { id: "eu", metric: "calls", filter: { region: ["eu"] }, pricing: perUnit("1") },
      { id: "pro", metric: "calls", filter: { plan: ["pro"] }, pricing: perUnit("2") },
    ]);
    expect(other.map((e) => e.path)).toContain("body.terms.meters.1.filter");
    // And in an amendment, which answers the same.
    const { c } = await contractWith([{ metric: "calls", pricing: perUnit("1") }]);
    const res = await t.post(`/v1/contracts/${c.id}/amendments`, {
      effectiveFrom: "2026-08-01T00:00:00Z",
      reason: "overlap",
      terms: {
        meters: [
          { id: "x", metric: "calls", filter: { region: ["eu"] }, pricing: perUnit("1") },
          { id: "y", metric: "calls", filter: { region: ["eu"] }, pricing: perUnit("1") },
        ],
      },
    }, "writer");
    const body = expectProblem(res, 400, "validation_failed");
    expect(body.errors.some((e: any) => e.path === "body.terms.meters.1.filter" && e.message.includes("meters[0]") && e.message.includes("meters[1]"))).toBe(true);
  });

  it("an unfiltered meter beside a filtered one of the same metric → 400", async () => {
    const errors = await refused([
      { id: "all", metric: "calls", pricing: perUnit("1") },
      { id: "eu", metric: "calls", filter: { region: ["eu"] }, pricing: perUnit("2") },
    ]);
    expect(errors.map((e) => e.path)).toContain("body.terms.meters.1.filter");
    expect(errors.find((e) => e.path === "body.terms.meters.1.filter")!.message).toMatch(/meters\[0\].*meters\[1\]/);
  });

  it("a metric with two meters without ids → 400 on each id", async () => {
    const errors = await refused([
      { metric: "calls", filter: { region: ["eu"] }, pricing: perUnit("1") },
      { metric: "calls", filter: { region: ["us"] }, pricing: perUnit("2") },
    ]);
    const paths = errors.map((e) => e.path);
    expect(paths).toContain("body.terms.meters.0.id");
    expect(paths).toContain("body.terms.meters.1.id");
  });

  it("unique_count without uniqueBy → 400; uniqueBy on a sum meter → 400", async () => {
    const missing = await refused([{ metric: "logins", aggregation: "unique_count", pricing: perUnit("1") }]);
    expect(missing.map((e) => e.path)).toEqual(["body.terms.meters.0.uniqueBy"]);
    const stray = await refused([{ metric: "calls", uniqueBy: "user", pricing: perUnit("1") }]);
    expect(stray.map((e) => e.path)).toEqual(["body.terms.meters.0.uniqueBy"]);
    const strayExplicit = await refused([{ metric: "calls", aggregation: "sum", uniqueBy: "user", pricing: perUnit("1") }]);
    expect(strayExplicit.map((e) => e.path)).toEqual(["body.terms.meters.0.uniqueBy"]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("amendments", () => {
  it("a mid-month amendment (off the hour): each segment its own peak, sum and level; a level's price is per period × fraction", async () => {
    const v = (seatPrice: string, callPrice: string) => [
      { id: "peak", metric: "seats", aggregation: "max", included: "20", pricing: perUnit(seatPrice) },
      { metric: "calls", pricing: perUnit(callPrice) },
      { id: "licences", metric: "licences", aggregation: "time_weighted", pricing: perUnit("1") },
    ];
    const cut = "2026-06-16T00:30:00Z";
    const amend = async (contractId: string, terms: unknown[]) => {
      const res = await t.post(`/v1/contracts/${contractId}/amendments`, { effectiveFrom: cut, reason: "new prices", terms: { meters: terms } }, "writer");
      expect(res.statusCode, res.body).toBe(201);
    };
    const events = (customerId: string) => [
      ev(customerId, "seats", "25", "2026-06-05T10:00:00Z"),
      ev(customerId, "seats", "40", "2026-06-16T00:10:00Z"), // before the cut, in the hour it splits
      ev(customerId, "seats", "35", "2026-06-16T00:45:00Z"), // after the cut, same hour
      ev(customerId, "seats", "30", "2026-06-20T00:00:00Z"),
      ev(customerId, "calls", "1000", "2026-06-16T00:10:00Z"),
      ev(customerId, "calls", "2000", "2026-06-16T00:45:00Z"),
      ev(customerId, "licences", "100", JUNE),
      ev(customerId, "licences", "150", "2026-06-10T00:00:00Z"),
    ];
    const { c, customerId } = await contractWith(v("10", "0.01"));
    await amend(c.id, v("12", "0.02"));
    await t.ingest(events(customerId));
    // Segment 1 is 15 days 30 minutes of June's 30 days, segment 2 the other 14 days 23 hours 30 minutes (in minutes).
    const f1 = new Decimal(15 * 1440 + 30).dividedBy(30 * 1440);
    const f2 = new Decimal(14 * 1440 + 23 * 60 + 30).dividedBy(30 * 1440);
    const money = (d: Decimal) => d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);
    const calc = await t.preview(c.id, JUNE);
    const peak = usageLines(calc, "peak");
    // Included seats are not scaled (20 in each part); the charge of a level is its period's charge × fraction.
    expect(peak.map((l) => [l.segment.version, l.segment.from, l.segment.to, l.usage, l.included, l.billable, l.amount])).toEqual([
      [1, "2026-06-01T00:00:00.000Z", "2026-06-16T00:30:00.000Z", "40", "20", "20", money(f1.times(20 * 10))],
      [2, "2026-06-16T00:30:00.000Z", "2026-07-01T00:00:00.000Z", "35", "20", "15", money(f2.times(15 * 12))],
    ]);
    expect(peak.map((l) => l.amount)).toEqual(["100.14", "89.88"]);
    const calls = usageLines(calc, "calls");
    expect(calls.map((l) => [l.segment.version, l.usage, l.amount])).toEqual([
      [1, "1000", "10.00"],
      [2, "2000", "40.00"],
    ]);
    // The level set on the 10th (in segment 1) carries into segment 2: 150 throughout it.
    const licences = usageLines(calc, "licences");
    const avg1 = new Decimal(100).times(9 * 1440).plus(new Decimal(150).times(6 * 1440 + 30)).dividedBy(15 * 1440 + 30);
    expect(licences.map((l) => l.usage)).toEqual([formatDecimal(avg1), "150"]);
    expect(licences.map((l) => l.amount)).toEqual([money(avg1.times(f1)), money(f2.times(150))]);
    expect(licences.map((l) => l.amount)).toEqual(["60.10", "74.90"]); // together the month's 135 licence-months
    expect(calc.total).toBe("375.02");
    const doc = await issue(c.id, calc);
    expect(doc.amount).toBe("375.02");

    // An amendment that changes nothing changes no level's amount (per meter, the segments add up to the month's).
    const same = await contractWith(v("10", "0.01"));
    await amend(same.c.id, v("10", "0.01"));
    const whole = await contractWith(v("10", "0.01"));
    await t.ingest([...events(same.customerId), ...events(whole.customerId)]);
    const split = await t.preview(same.c.id, JUNE);
    const unsplit = await t.preview(whole.c.id, JUNE);
    expect(usageLine(unsplit, "peak")).toMatchObject({ usage: "40", billable: "20", amount: "200.00" });
    expect(usageLine(unsplit, "licences")).toMatchObject({ usage: "135", amount: "135.00" });
    const add = (lines: any[]) => lines.reduce((acc, l) => acc.plus(l.amount), new Decimal(0)).toFixed(2);
    expect(add(usageLines(split, "licences"))).toBe("135.00");
    // The peak is per segment (40 before the cut, 35 after), so a split month bills each part's peak for its share.
    expect(usageLines(split, "peak").map((l) => l.amount)).toEqual([money(f1.times(200)), money(f2.times(150))]);
  });

  it("a contract created after its customer's events were ingested: filtered meters read rebuilt rollups", async () => {
    const customerId = uniqueId("before");
    const account = `${customerId}-sub`;
    await t.ingest([
      ev(account, "calls", "1000", "2026-06-03T10:25:00Z", { region: "us" }),
      ev(customerId, "calls", "100", "2026-06-03T10:05:00Z", { region: "eu" }),
      ev(customerId, "calls", "40", "2026-06-03T10:10:00Z", { region: "us" }), // same hour as an eu event
      ev(customerId, "calls", "60", "2026-06-21T00:00:00Z", { region: "eu" }),
      ev(customerId, "seats", "7", "2026-06-03T10:15:00Z", { plan: "pro" }),
      ev(customerId, "seats", "9", "2026-06-03T10:20:00Z", { plan: "free" }), // the hour's peak, but not pro
    ]);
    const { c } = await contractWith(
      [
        { id: "calls-eu", metric: "calls", filter: { region: ["eu"] }, pricing: perUnit("1.00") },
        { id: "calls-us", metric: "calls", filter: { region: ["us"] }, pricing: perUnit("2.00") },
        { id: "pro-peak", metric: "seats", aggregation: "max", filter: { plan: ["pro"] }, pricing: perUnit("3.00") },
        { id: "free-peak", metric: "seats", aggregation: "max", filter: { plan: ["free"] }, pricing: perUnit("1.00") },
      ],
      { customerId, accountIds: [account] },
    );
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "calls-eu")).toMatchObject({ usage: "160", amount: "160.00" });
    expect(usageLine(calc, "calls-us")).toMatchObject({ usage: "1040", amount: "2080.00" }); // the account's 1000 too
    expect(usageLine(calc, "pro-peak")).toMatchObject({ usage: "7", amount: "21.00" });
    expect(usageLine(calc, "free-peak")).toMatchObject({ usage: "9", amount: "9.00" });
    expect(kinds(calc)).not.toContain("unpriced_metric");
    // Events ingested afterwards land in the split rollups too.
    await t.ingest([ev(customerId, "calls", "5", "2026-06-03T10:30:00Z", { region: "eu" })]);
    const again = await t.preview(c.id, JUNE);
    expect(usageLine(again, "calls-eu")).toMatchObject({ usage: "165", amount: "165.00" });
    expect(usageLine(again, "calls-us")).toMatchObject({ usage: "1040", amount: "2080.00" });
    const doc = await issue(c.id, again);
    expect(doc.amount).toBe("2275.00");
  });

  it("unique_count from distinct-value rollups: rebuilt for a contract made after its events, kept by ingestion and voids, across UTC months", async () => {
    const customerId = uniqueId("uniq");
    const account = `${customerId}-sub`;
    // Asia/Kolkata: June is 2026-05-31T18:30Z … 2026-06-30T18:30Z, two UTC months, cut mid-hour at both ends.
    await t.ingest([
      ev(customerId, "logins", "1", "2026-05-31T18:10:00Z", { user: "early" }), // before the period, same UTC hour as its start
      ev(customerId, "logins", "1", "2026-05-31T18:40:00Z", { user: "may-edge" }),
      ev(customerId, "logins", "1", "2026-05-31T22:00:00Z", { user: "a" }),
      ev(customerId, "logins", "1", "2026-06-10T09:00:00Z", { user: "a" }),
      ev(account, "logins", "1", "2026-06-10T09:30:00Z", { user: 1 }),
      ev(account, "logins", "1", "2026-06-11T09:30:00Z", { user: "1" }), // "1" and 1 are two users
      ev(customerId, "logins", "1", "2026-06-30T18:20:00Z", { user: "last" }),
      ev(customerId, "logins", "1", "2026-06-30T18:45:00Z", { user: "after" }), // after the period, same UTC hour as its end
      ev(customerId, "logins", "1", "2026-06-12T00:00:00Z", { user: null }),
    ]);
    const { c } = await contractWith(
      [{ id: "mau", metric: "logins", aggregation: "unique_count", uniqueBy: "user", pricing: perUnit("1.00") }],
      { customerId, accountIds: [account], timezone: "Asia/Kolkata" },
    );
    const rows = await t.db.pool.query("SELECT count(*)::int AS n FROM usage_unique_values WHERE customer_id = ANY($1)", [[customerId, account]]);
    expect(rows.rows[0].n).toBe(8); // a row per value and UTC month ("a" in May and in June), none for null
    const june = "2026-05-31T18:30:00Z";
    expect(usageLine(await t.preview(c.id, june), "mau").usage).toBe("5"); // may-edge, a, 1, "1", last
    // Two events of one value in one hour: voiding one keeps the value; voiding both removes it.
    const twice = [ev(customerId, "logins", "1", "2026-06-15T10:05:00Z", { user: "b" }), ev(customerId, "logins", "1", "2026-06-15T10:55:00Z", { user: "b" })];
    await t.ingest(twice);
    expect(usageLine(await t.preview(c.id, june), "mau").usage).toBe("6");
    await voidEvents(customerId, [twice[0]!.eventId]);
    expect(usageLine(await t.preview(c.id, june), "mau").usage).toBe("6");
    await voidEvents(customerId, [twice[1]!.eventId]);
    expect(usageLine(await t.preview(c.id, june), "mau").usage).toBe("5");
    // An amendment counting another property rebuilds: its figure is right at once.
    const amended = await t.post(`/v1/contracts/${c.id}/amendments`, {
      effectiveFrom: "2026-06-15T18:30:00Z",
      reason: "count teams instead",
      terms: { meters: [{ id: "teams", metric: "logins", aggregation: "unique_count", uniqueBy: "team", pricing: perUnit("10.00") }] },
    }, "writer");
    expect(amended.statusCode, amended.body).toBe(201);
    await t.ingest([ev(customerId, "logins", "1", "2026-06-20T00:00:00Z", { user: "a", team: "red" }), ev(account, "logins", "1", "2026-06-21T00:00:00Z", { team: "blue" })]);
    const calc = await t.preview(c.id, june);
    expect(usageLines(calc, "mau").map((l) => l.usage)).toEqual(["4"]); // may-edge, a, 1, "1" before the 16th (Kolkata)
    expect(usageLines(calc, "teams").map((l) => l.usage)).toEqual(["2"]);
    expect(await uniqueValueMismatches(t.db.sql)).toEqual([]);
    // The amendment added a counted property only: the hourly rollups were left as they were, and still add up.
    expect(await rollupMismatches(t.db.sql)).toEqual([]);
  });

  it("an amendment that adds a filter property rebuilds the rollups: a preview right afterwards is right", async () => {
    const { c, customerId } = await contractWith([
      { id: "calls-eu", metric: "calls", filter: { region: ["eu"] }, pricing: perUnit("1.00") },
      { id: "calls-us", metric: "calls", filter: { region: ["us"] }, pricing: perUnit("2.00") },
    ]);
    await t.ingest([
      ev(customerId, "calls", "100", "2026-06-05T10:00:00Z", { region: "eu", plan: "pro" }),
      ev(customerId, "calls", "50", "2026-06-05T10:30:00Z", { region: "eu", plan: "free" }),
      ev(customerId, "calls", "10", "2026-06-05T10:40:00Z", { region: "us", plan: "pro" }),
      ev(customerId, "calls", "200", "2026-06-20T10:00:00Z", { region: "eu", plan: "pro" }),
      ev(customerId, "calls", "80", "2026-06-20T10:30:00Z", { region: "eu", plan: "free" }),
      ev(customerId, "calls", "30", "2026-06-20T10:40:00Z", { region: "us", plan: "free" }),
    ]);
    // A voided event stays out of the rebuilt rollups.
    const voided = ev(customerId, "calls", "1000", "2026-06-20T10:50:00Z", { region: "eu", plan: "free" });
    await t.ingest([voided]);
    await voidEvents(customerId, [voided.eventId]);
    const before = await t.preview(c.id, JUNE);
    expect(usageLine(before, "calls-eu")).toMatchObject({ usage: "430" });
    const amended = await t.post(`/v1/contracts/${c.id}/amendments`, {
      effectiveFrom: "2026-06-16T00:00:00Z",
      reason: "eu split by plan",
      terms: {
        meters: [
          { id: "calls-eu-pro", metric: "calls", filter: { region: ["eu"], plan: ["pro"] }, pricing: perUnit("1.00") },
          { id: "calls-eu-free", metric: "calls", filter: { region: ["eu"], plan: ["free"] }, pricing: perUnit("0.50") },
          { id: "calls-us", metric: "calls", filter: { region: ["us"] }, pricing: perUnit("2.00") },
        ],
      },
    }, "writer");
    expect(amended.statusCode, amended.body).toBe(201);
    const calc = await t.preview(c.id, JUNE);
    const rows = calc.lines.filter((l: any) => l.kind === "usage").map((l: any) => [l.segment.version, l.meterId, l.usage, l.amount]);
    expect(rows).toEqual([
      [1, "calls-eu", "150", "150.00"],
      [1, "calls-us", "10", "20.00"],
      [2, "calls-eu-pro", "200", "200.00"],
      [2, "calls-eu-free", "80", "40.00"],
      [2, "calls-us", "30", "60.00"],
    ]);
    expect(kinds(calc)).not.toContain("unpriced_metric");
    // Ingested after the amendment: the new dimension is kept by ingestion too.
    await t.ingest([ev(customerId, "calls", "20", "2026-06-25T00:00:00Z", { region: "eu", plan: "free" })]);
    const later = await t.preview(c.id, JUNE);
    expect(usageLines(later, "calls-eu-free").map((l) => [l.usage, l.amount])).toEqual([["100", "50.00"]]);
    expect(later.total).toBe("480.00");
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("concurrency", () => {
  it("batches ingested while an amendment adds a filter property: every event lands under the new dimensions", async () => {
    const { c, customerId } = await contractWith([
      { id: "calls-eu", metric: "calls", filter: { region: ["eu"] }, pricing: perUnit("1") },
      { id: "calls-us", metric: "calls", filter: { region: ["us"] }, pricing: perUnit("1") },
    ]);
    await t.ingest([ev(customerId, "calls", "1", "2026-06-20T10:00:00Z", { region: "eu", plan: "pro" })]);
    const batches = Array.from({ length: 8 }, (_, b) =>
      Array.from({ length: 25 }, (_, i) =>
        ev(customerId, "calls", String(b + 1), `2026-06-20T10:${String(i * 2).padStart(2, "0")}:00Z`, { region: i % 3 === 0 ? "us" : "eu", plan: i % 2 === 0 ? "pro" : "free" }),
      ),
    );
    const amendment = t.post(`/v1/contracts/${c.id}/amendments`, {
      effectiveFrom: "2026-06-16T00:00:00Z",
      reason: "split by plan",
      terms: {
        meters: [
          { id: "eu-pro", metric: "calls", filter: { region: ["eu"], plan: ["pro"] }, pricing: perUnit("1") },
          { id: "eu-free", metric: "calls", filter: { region: ["eu"], plan: ["free"] }, pricing: perUnit("1") },
          { id: "calls-us", metric: "calls", filter: { region: ["us"] }, pricing: perUnit("1") },
        ],
      },
    }, "writer");
    const results = await Promise.all([...batches.slice(0, 4).map((b) => t.sendUsage(b)), amendment, ...batches.slice(4).map((b) => t.sendUsage(b))]);
    for (const r of results) expect(r.statusCode, r.body).toBeLessThan(300);
    const all = [ev(customerId, "calls", "1", "2026-06-20T10:00:00Z", { region: "eu", plan: "pro" }), ...batches.flat()];
    const total = (pred: (p: Record<string, unknown>) => boolean) => all.filter((e) => pred(e.properties!)).reduce((a, e) => a + Number(e.quantity), 0);
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "eu-pro").usage).toBe(String(total((p) => p.region === "eu" && p.plan === "pro")));
    expect(usageLine(calc, "eu-free").usage).toBe(String(total((p) => p.region === "eu" && p.plan === "free")));
    expect(usageLines(calc, "calls-us").map((l) => l.usage)).toEqual(["0", String(total((p) => p.region === "us"))]);
    expect(kinds(calc)).not.toContain("unpriced_metric");
  });
});

describe("late events and voids", () => {
  it("a late event of an earlier issued month changes a look-back meter's figure → late_usage; voiding it restores it", async () => {
    const { c, customerId } = await contractWith([{ id: "storage-end", metric: "storage_gb", aggregation: "latest", pricing: perUnit("1.00") }], {
      allowTrueDown: true,
    });
    await t.ingest([ev(customerId, "storage_gb", "42", "2026-05-10T00:00:00Z")]);
    expect((await issue(c.id, await t.preview(c.id, "2026-05-01T00:00:00Z"))).amount).toBe("42.00");
    const june = await t.preview(c.id, JUNE);
    expect(usageLine(june, "storage-end")).toMatchObject({ usage: "42", amount: "42.00" });
    expect((await issue(c.id, june)).amount).toBe("42.00");

    const late = ev(customerId, "storage_gb", "60", "2026-05-20T00:00:00Z");
    await t.ingest([late]);
    const rerun = await t.preview(c.id, JUNE);
    expect(usageLine(rerun, "storage-end")).toMatchObject({ usage: "60", amount: "60.00" });
    expect(rerun).toMatchObject({ alreadyBilled: "42.00", delta: "18.00", action: "invoice" });
    expect(kinds(rerun)).toContain("late_usage");

    await voidEvents(customerId, [late.eventId]);
    const restored = await t.preview(c.id, JUNE);
    expect(usageLine(restored, "storage-end")).toMatchObject({ usage: "42", amount: "42.00" });
    expect(restored).toMatchObject({ delta: "0.00", action: "none" });
    expect(kinds(restored)).toContain("late_usage");
  });

  it("events at one instant: the one that arrived last is the latest and the level held (a correction sent later wins)", async () => {
    const { c, customerId } = await contractWith([
      { id: "storage-end", metric: "storage_gb", aggregation: "latest", pricing: perUnit("1") },
      { id: "seat-months", metric: "seats", aggregation: "time_weighted", pricing: perUnit("1") },
    ]);
    const at = "2026-06-10T00:00:00Z";
    const first = (metric: string, quantity: string) => ({ ...ev(customerId, metric, quantity, at), eventId: `zz-${uniqueId("tie")}` });
    const second = (metric: string, quantity: string) => ({ ...ev(customerId, metric, quantity, at), eventId: `aa-${uniqueId("tie")}` });
    await t.ingest([first("storage_gb", "10"), first("seats", "10")]);
    await t.ingest([second("storage_gb", "20"), second("seats", "30")]); // later, with smaller ids
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "storage-end").usage).toBe("20");
    expect(usageLine(calc, "seat-months").usage).toBe("21"); // 30 for 21 of 30 days
  });

  it("a late event raising an issued period's peak → late_usage and the new amount; voiding the peak lowers it again", async () => {
    const { c, customerId } = await contractWith([{ id: "peak", metric: "seats", aggregation: "max", pricing: perUnit("10.00") }], { allowTrueDown: true });
    const twenty = ev(customerId, "seats", "20", "2026-06-10T08:05:00Z");
    await t.ingest([ev(customerId, "seats", "10", "2026-06-03T00:00:00Z"), twenty, ev(customerId, "seats", "12", "2026-06-10T08:40:00Z")]);
    const first = await issue(c.id, await t.preview(c.id, JUNE));
    expect(first.amount).toBe("200.00");

    const peak = ev(customerId, "seats", "35", "2026-06-10T08:20:00Z");
    expect(await t.ingest([peak])).toMatchObject({ accepted: 1 });
    const rerun = await t.preview(c.id, JUNE);
    expect(usageLine(rerun, "peak")).toMatchObject({ usage: "35", amount: "350.00" });
    expect(rerun).toMatchObject({ total: "350.00", alreadyBilled: "200.00", delta: "150.00", action: "invoice" });
    expect(kinds(rerun)).toContain("late_usage");
    const second = await issue(c.id, rerun);
    expect(second).toMatchObject({ kind: "invoice", amount: "150.00", subtotal: "350.00" });

    // Voiding the peak: the hour's largest quantity is recomputed from the events left (20, not 35, not none).
    await voidEvents(customerId, [peak.eventId]);
    const hour = await t.db.pool.query("SELECT max_quantity::text AS m FROM usage_rollups WHERE customer_id = $1 AND metric = 'seats' AND hour = '2026-06-10T08:00:00Z' AND events > 0", [customerId]);
    expect(hour.rows.map((r) => r.m)).toEqual(["20.000000000"]);
    const lowered = await t.preview(c.id, JUNE);
    expect(usageLine(lowered, "peak")).toMatchObject({ usage: "20", amount: "200.00" });
    expect(lowered).toMatchObject({ total: "200.00", alreadyBilled: "350.00", delta: "-150.00", action: "credit_memo" });
    expect(kinds(lowered)).toContain("late_usage");
    // And again: the next largest in that hour.
    await voidEvents(customerId, [twenty.eventId]);
    expect(usageLine(await t.preview(c.id, JUNE), "peak")).toMatchObject({ usage: "12", amount: "120.00" });
  });

  it("voiding events removes them from count, unique_count, time_weighted and latest", async () => {
    const { c, customerId } = await contractWith([
      { id: "txns", metric: "transactions", aggregation: "count", pricing: perUnit("1") },
      { id: "mau", metric: "logins", aggregation: "unique_count", uniqueBy: "user", pricing: perUnit("1") },
      { id: "seat-months", metric: "seats", aggregation: "time_weighted", pricing: perUnit("1") },
      { id: "storage-end", metric: "storage_gb", aggregation: "latest", pricing: perUnit("1") },
    ]);
    const txn2 = ev(customerId, "transactions", "5", "2026-06-03T00:00:00Z");
    const loginA = ev(customerId, "logins", "1", "2026-06-02T00:00:00Z", { user: "a" });
    const loginB1 = ev(customerId, "logins", "1", "2026-06-03T00:00:00Z", { user: "b" });
    const seats100 = ev(customerId, "seats", "100", JUNE);
    const seats150 = ev(customerId, "seats", "150", "2026-06-16T00:00:00Z");
    const storageJune = ev(customerId, "storage_gb", "50", "2026-06-20T00:00:00Z");
    await t.ingest([
      ev(customerId, "transactions", "5", "2026-06-02T00:00:00Z"),
      txn2,
      ev(customerId, "transactions", "5", "2026-06-04T00:00:00Z"),
      loginA,
      loginB1,
      ev(customerId, "logins", "1", "2026-06-04T00:00:00Z", { user: "b" }),
      ev(customerId, "seats", "80", "2026-05-20T00:00:00Z"),
      seats100,
      seats150,
      ev(customerId, "storage_gb", "42", "2026-05-10T00:00:00Z"),
      storageJune,
    ]);
    const usages = async () => {
      const calc = await t.preview(c.id, JUNE);
      return Object.fromEntries(["txns", "mau", "seat-months", "storage-end"].map((id) => [id, usageLine(calc, id).usage]));
    };
    expect(await usages()).toEqual({ txns: "3", mau: "2", "seat-months": "125", "storage-end": "50" });
    for (const e of [txn2, loginA, seats150, storageJune]) await voidEvents(customerId, [e.eventId]);
    expect(await usages()).toEqual({ txns: "2", mau: "1", "seat-months": "100", "storage-end": "42" });
    await voidEvents(customerId, [seats100.eventId, loginB1.eventId]);
    // The May level carries through June; user b still logged in on the 4th.
    expect(await usages()).toEqual({ txns: "2", mau: "1", "seat-months": "80", "storage-end": "42" });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("filters on numbers and booleans", () => {
  it("1, \"1\" and true are different values, also through the rollups (one hour)", async () => {
    const { c, customerId } = await contractWith([
      { id: "tier-num", metric: "calls", filter: { tier: [1] }, pricing: perUnit("1") },
      { id: "tier-str", metric: "calls", filter: { tier: ["1"] }, pricing: perUnit("1") },
      { id: "tier-bool", metric: "calls", filter: { tier: [true] }, pricing: perUnit("1") },
    ]);
    await t.ingest([
      ev(customerId, "calls", "10", "2026-06-03T10:00:00Z", { tier: 1 }),
      ev(customerId, "calls", "20", "2026-06-03T10:10:00Z", { tier: "1" }),
      ev(customerId, "calls", "40", "2026-06-03T10:20:00Z", { tier: true }),
      ev(customerId, "calls", "5", "2026-06-03T10:30:00Z", { tier: false }),
      ev(customerId, "calls", "3", "2026-06-03T10:40:00Z", { tier: [1] }),
    ]);
    const calc = await t.preview(c.id, JUNE);
    expect(["tier-num", "tier-str", "tier-bool"].map((id) => usageLine(calc, id).usage)).toEqual(["10", "20", "40"]);
    const unpriced = calc.exceptions.find((e: any) => e.kind === "unpriced_metric");
    expect(unpriced).toMatchObject({ subject: "calls", details: { quantity: "8" } });
  });
});

describe("usage summary", () => {
  it("used, included and remaining per meter, with meterId, aggregation and filter, for the period containing ?at=", async () => {
    const { c, customerId } = await contractWith([
      { id: "calls-eu", metric: "calls", unit: "call", filter: { region: ["eu"] }, included: "1000", pricing: perUnit("0.01") },
      { id: "calls-us", metric: "calls", filter: { region: ["us"] }, included: "0", pricing: perUnit("0.02") },
      { id: "peak", metric: "seats_peak", aggregation: "max", included: "20", pricing: perUnit("1") },
      { id: "seat-months", metric: "seats", aggregation: "time_weighted", included: "100", pricing: perUnit("40") },
      { id: "mau", metric: "logins", aggregation: "unique_count", uniqueBy: "user", included: "10", pricing: perUnit("1") },
      { id: "txns", metric: "transactions", aggregation: "count", included: "5", pricing: perUnit("1") },
    ]);
    await t.ingest([
      ev(customerId, "calls", "200", "2026-06-02T00:00:00Z", { region: "eu" }),
      ev(customerId, "calls", "100", "2026-06-12T00:00:00Z", { region: "eu" }),
      ev(customerId, "calls", "70", "2026-06-12T00:00:00Z", { region: "us" }),
      ev(customerId, "seats_peak", "15", "2026-06-03T00:00:00Z"),
      ev(customerId, "seats_peak", "24", "2026-06-04T00:00:00Z"),
      ev(customerId, "seats", "100", JUNE),
      ev(customerId, "seats", "150", "2026-06-16T00:00:00Z"),
      ev(customerId, "logins", "1", "2026-06-05T00:00:00Z", { user: "a" }),
      ev(customerId, "logins", "1", "2026-06-06T00:00:00Z", { user: "b" }),
      ev(customerId, "logins", "1", "2026-06-07T00:00:00Z", { user: "a" }),
      ev(customerId, "transactions", "9", "2026-06-05T00:00:00Z"),
      ev(customerId, "transactions", "9", "2026-06-06T00:00:00Z"),
    ]);
    const res = await t.get(`/v1/contracts/${c.id}/usage-summary?at=2026-06-20T00:00:00Z`, "reader");
    expect(res.statusCode, res.body).toBe(200);
    const summary = res.json();
    expect(summary).toMatchObject({ contractId: c.id, period: { start: "2026-06-01T00:00:00.000Z", end: "2026-07-01T00:00:00.000Z" }, version: 1, unmetered: [] });
    expect(summary.meters).toEqual([
      { meterId: "calls-eu", metric: "calls", aggregation: "sum", filter: { region: ["eu"] }, unit: "call", used: "300", included: "1000", remaining: "700", shareUsed: "0.3" },
      { meterId: "calls-us", metric: "calls", aggregation: "sum", filter: { region: ["us"] }, unit: null, used: "70", included: "0", remaining: "0", shareUsed: null },
      { meterId: "peak", metric: "seats_peak", aggregation: "max", filter: null, unit: null, used: "24", included: "20", remaining: "0", shareUsed: "1.2" },
      { meterId: "seat-months", metric: "seats", aggregation: "time_weighted", filter: null, unit: null, used: "125", included: "100", remaining: "0", shareUsed: "1.25" },
      { meterId: "mau", metric: "logins", aggregation: "unique_count", filter: null, unit: null, used: "2", included: "10", remaining: "8", shareUsed: "0.2" },
      { meterId: "txns", metric: "transactions", aggregation: "count", filter: null, unit: null, used: "2", included: "5", remaining: "3", shareUsed: "0.4" },
    ]);
    // July: the time-weighted level carries in (150 to the period's end); the flows and the peak start again.
    const july = (await t.get(`/v1/contracts/${c.id}/usage-summary?at=2026-07-10T00:00:00Z`, "reader")).json();
    expect(july.meters.map((m: any) => [m.meterId, m.used])).toEqual([
      ["calls-eu", "0"],
      ["calls-us", "0"],
      ["peak", "0"],
      ["seat-months", "150"],
      ["mau", "0"],
      ["txns", "0"],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("money rules with meters", () => {
  it("the minimum to the cent: $20,000 quarterly, 3,599,999 calls at 0.005 → usage 18,000.00, shortfall 2,000.00, total 20,000.00", async () => {
    const { c, customerId } = await contractWith(
      [{ id: "api", metric: "api_calls", pricing: perUnit("0.005") }],
      { billingPeriod: "quarterly" },
      { commitment: { amount: "20000.00", scope: "period" } },
    );
    await t.ingest([
      ev(customerId, "api_calls", "1599999", "2026-04-10T00:00:00Z"),
      ev(customerId, "api_calls", "2000000", "2026-06-20T00:00:00Z"),
    ]);
    const calc = await t.preview(c.id, "2026-04-01T00:00:00Z");
    expect(calc.period).toEqual({ start: "2026-04-01T00:00:00.000Z", end: "2026-07-01T00:00:00.000Z" });
    expect(usageLine(calc, "api")).toMatchObject({ usage: "3599999", amount: "18000.00" });
    expect(calc.lines.filter((l: any) => l.kind === "commitment_shortfall").map((l: any) => l.amount)).toEqual(["2000.00"]);
    expect(calc.total).toBe("20000.00");
    const doc = await issue(c.id, calc);
    expect(doc).toMatchObject({ amount: "20000.00", subtotal: "20000.00" });
    expect(doc.lines.map((l: any) => [l.kind, l.amount])).toEqual([
      ["usage", "18000.00"],
      ["commitment_shortfall", "2000.00"],
    ]);
  });

  it("a first-tier flat fee is due at zero usage (graduated, and volume), with no events ingested", async () => {
    const { c } = await contractWith([
      {
        id: "api",
        metric: "api_calls",
        pricing: { model: "graduated", tiers: [{ upTo: "1000", unitPrice: "0", flatFee: "49.00" }, { upTo: null, unitPrice: "0.01", flatFee: "100.00" }] },
      },
      { id: "storage", metric: "storage_gb", pricing: { model: "volume", tiers: [{ upTo: "10", unitPrice: "1", flatFee: "10.00" }, { upTo: null, unitPrice: "0.5" }] } },
    ]);
    const calc = await t.preview(c.id, JUNE);
    expect(usageLine(calc, "api")).toMatchObject({ usage: "0", billable: "0", amount: "49.00" });
    expect(usageLine(calc, "storage")).toMatchObject({ usage: "0", billable: "0", amount: "10.00" });
    expect(calc).toMatchObject({ total: "59.00", action: "invoice" });
    const doc = await issue(c.id, calc);
    expect(doc.amount).toBe("59.00");
    expect(doc.lines.map((l: any) => [l.kind, l.meterId, l.amount])).toEqual([
      ["usage", "api", "49.00"],
      ["usage", "storage", "10.00"],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("preview = issue", () => {
  it("issuing the preview's calculation gives its lines; a changed peak between preview and issue → 409 stale_preview", async () => {
    const meters = [{ id: "peak", metric: "seats", aggregation: "max", pricing: perUnit("10") }];
    const ok = await contractWith(meters);
    await t.ingest([ev(ok.customerId, "seats", "6", "2026-06-02T00:00:00Z"), ev(ok.customerId, "seats", "4", "2026-06-03T00:00:00Z")]);
    const calc = await t.preview(ok.c.id, JUNE);
    const stored = (await t.get(`/v1/calculations/${calc.id}`, "reader")).json();
    expect(stored.inputsHash).toBe(calc.inputsHash);
    const doc = await issue(ok.c.id, calc);
    expect(doc.lines.map((l: any) => ({ kind: l.kind, meterId: l.meterId, metric: l.metric ?? undefined, amount: l.amount, ...l.explanation }))).toEqual(
      calc.lines.map((l: any) => ({ ...l, metric: l.metric ?? undefined })),
    );

    // A new peak.
    const raised = await contractWith(meters);
    await t.ingest([ev(raised.customerId, "seats", "6", "2026-06-02T00:00:00Z")]);
    const before = await t.preview(raised.c.id, JUNE);
    await t.ingest([ev(raised.customerId, "seats", "8", "2026-06-04T00:00:00Z")]);
    expectProblem(await t.issue(raised.c.id, before.id), 409, "stale_preview");

    // A new peak with the metric's sum unchanged (6 + 4 → 10): the hash covers the peak itself.
    const same = await contractWith(meters);
    const six = ev(same.customerId, "seats", "6", "2026-06-02T00:00:00Z");
    const four = ev(same.customerId, "seats", "4", "2026-06-03T00:00:00Z");
    await t.ingest([six, four]);
    const preview = await t.preview(same.c.id, JUNE);
    expect(usageLine(preview, "peak")).toMatchObject({ usage: "6", amount: "60.00" });
    await voidEvents(same.customerId, [six.eventId, four.eventId]);
    await t.ingest([ev(same.customerId, "seats", "10", "2026-06-05T00:00:00Z")]);
    expectProblem(await t.issue(same.c.id, preview.id), 409, "stale_preview");
    const fresh = await t.preview(same.c.id, JUNE);
    expect(usageLine(fresh, "peak")).toMatchObject({ usage: "10", amount: "100.00" });
    expect(fresh.inputsHash).not.toBe(preview.inputsHash);
    expect((await issue(same.c.id, fresh)).amount).toBe("100.00");
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("the SQL figures equal the reference definition", () => {
  // Each aggregation twice: unfiltered on one metric, and as two disjoint filtered meters (eu | us) of another.
  const AGGREGATIONS = ["sum", "count", "max", "latest", "unique_count", "time_weighted"] as const;
  const METERS = AGGREGATIONS.flatMap((aggregation) => {
    const extra = aggregation === "unique_count" ? { uniqueBy: "user" } : {};
    return [
      { id: aggregation, metric: `p_${aggregation}`, aggregation, filter: null, ...extra },
      { id: `${aggregation}-eu`, metric: `pf_${aggregation}`, aggregation, filter: { region: ["eu"] }, ...extra },
      { id: `${aggregation}-us`, metric: `pf_${aggregation}`, aggregation, filter: { region: ["us"] }, ...extra },
    ];
  });
  const METRICS = [...new Set(METERS.map((m) => m.metric))];
  const measureOfMeter = (m: (typeof METERS)[number]): Measure => ({
    metric: m.metric,
    aggregation: m.aggregation,
    filter: m.filter,
    uniqueBy: "uniqueBy" in m && m.uniqueBy !== undefined ? m.uniqueBy : null,
  });
  // June in UTC (whole hours), or in Asia/Kolkata (+05:30: the period's edges cut UTC hours in half).
  const PERIODS = {
    UTC: { from: JUNE_MS, to: JULY_MS },
    "Asia/Kolkata": { from: Date.parse("2026-05-31T18:30:00Z"), to: Date.parse("2026-06-30T18:30:00Z") },
  } as const;
  const EDGES = [
    JUNE_MS, JULY_MS - 1, JULY_MS, Date.parse("2026-06-15T12:00:00Z"), Date.parse("2026-06-15T12:30:00Z"),
    Date.parse("2026-05-31T18:00:00Z"), Date.parse("2026-05-31T18:29:59Z"), Date.parse("2026-05-31T18:30:00Z"), Date.parse("2026-05-31T18:45:00Z"),
    Date.parse("2026-06-30T18:10:00Z"), Date.parse("2026-06-30T18:29:59.999Z"), Date.parse("2026-06-30T18:30:00Z"), Date.parse("2026-06-30T18:50:00Z"),
  ];

  const quantity = fc.oneof(
    fc.integer({ min: 0, max: 1000 }).map(String),
    fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 1, max: 999 })).map(([i, f]) => `${i}.${String(f).padStart(3, "0")}`),
  );
  // Mostly June, a few in May (look-backs), some on the periods' edges or on one instant (ties).
  const instant = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: JUNE_MS, max: JULY_MS - 1 }).map((ms) => Math.floor(ms / 1000) * 1000) },
    { weight: 2, arbitrary: fc.integer({ min: Date.parse("2026-05-01T00:00:00Z"), max: JUNE_MS - 1 }).map((ms) => Math.floor(ms / 60000) * 60000) },
    { weight: 2, arbitrary: fc.constantFrom(...EDGES) },
  );
  const properties = fc.record(
    { user: fc.constantFrom("a", "b", "c", "1", 1, null), region: fc.constantFrom("eu", "us", "apac") },
    { requiredKeys: [] },
  );
  const eventArb = fc.record({ quantity, at: instant, properties, voided: fc.integer({ min: 0, max: 3 }).map((x) => x === 0), account: fc.boolean() });

  it("preview usage per meter = aggregateEvents over the same events (≤ 15 runs)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 0, maxLength: 14 }),
        fc.boolean(),
        fc.constantFrom("UTC", "Asia/Kolkata") as fc.Arbitrary<keyof typeof PERIODS>,
        // Sometimes an amendment with the same terms, off the hour: two segments, each measured on its own.
        fc.option(fc.integer({ min: 1, max: 30 * 86_400 - 1 }), { nil: null }),
        async (generated, voidSome, timezone, cutSeconds) => {
          const customerId = uniqueId("prop");
          const account = `${customerId}-b`;
          const { c } = await contractWith(METERS.map(({ filter, ...m }) => ({ ...m, ...(filter ? { filter } : {}), included: "0", pricing: perUnit("1") })), {
            customerId,
            accountIds: [account],
            timezone,
          });
          const period = PERIODS[timezone];
          const meterTerms = METERS.map(({ filter, ...m }) => ({ ...m, ...(filter ? { filter } : {}), included: "0", pricing: perUnit("1") }));
          const cut = cutSeconds === null ? null : period.from + cutSeconds * 1000;
          if (cut !== null) {
            const res = await t.post(`/v1/contracts/${c.id}/amendments`, { effectiveFrom: new Date(cut).toISOString(), reason: "no change", terms: { meters: meterTerms } }, "writer");
            expect(res.statusCode, res.body).toBe(201);
          }
          const windows = cut === null ? [[period.from, period.to]] : [[period.from, cut], [cut, period.to]];
          // Every generated event goes to every meter's metric, so each aggregation sees the same events.
          let n = 0;
          const sent: Array<{ metric: string; body: Ev; plain: PlainEvent; voided: boolean }> = [];
          for (const g of generated) {
            for (const metric of METRICS) {
              const eventId = `p${String(++n).padStart(4, "0")}`;
              const who = g.account ? account : customerId;
              const body: Ev = { eventId, customerId: who, metric, quantity: g.quantity, timestamp: new Date(g.at).toISOString(), properties: g.properties };
              // Ties at one instant (one batch: one arrival time) are broken by customer, then event id.
              const plain: PlainEvent = { at: g.at, quantity: g.quantity, properties: g.properties, id: `${g.account ? 1 : 0}|${eventId}`, received: 0 };
              sent.push({ metric, body, plain, voided: voidSome && g.voided });
            }
          }
          if (sent.length > 0) await t.ingest(sent.map((s) => s.body));
          for (const who of [customerId, account]) {
            const ids = sent.filter((s) => s.voided && s.body.customerId === who).map((s) => s.body.eventId);
            if (ids.length > 0) await voidEvents(who, ids);
          }
          for (const s of sent) s.plain.voided = s.voided;

          const calc = await t.preview(c.id, new Date(period.from).toISOString());
          for (const m of METERS) {
            const mine = sent.filter((s) => s.metric === m.metric).map((s) => s.plain);
            const lines = usageLines(calc, m.id);
            expect(lines.map((l) => [Date.parse(l.segment.from), Date.parse(l.segment.to)])).toEqual(windows);
            windows.forEach(([from, to], i) => {
              const expected = aggregateEvents(measureOfMeter(m), mine, from!, to!);
              expect(lines[i].usage, `${m.id} (${timezone}, [${from}, ${to})) over ${JSON.stringify(mine)}`).toBe(formatDecimal(expected));
              // Price 1: a flow bills its usage; a level its usage × the segment's fraction (a price per period).
              const fraction = new Decimal(to! - from!).dividedBy(period.to - period.from);
              const charge = m.aggregation === "sum" || m.aggregation === "count" ? expected : expected.times(fraction);
              expect(lines[i].amount, m.id).toBe(charge.toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2));
            });
          }
          // Usage of a filtered meters' metric matching neither filter is unpriced, with its quantity (Σ, whatever the aggregation).
          const wanted: Record<string, string> = {};
          for (const metric of METRICS.filter((x) => x.startsWith("pf_"))) {
            const q = sent
              .filter((s) => s.metric === metric && !s.voided && s.plain.at >= period.from && s.plain.at < period.to)
              .filter((s) => !matchesFilter({ region: ["eu", "us"] }, s.plain.properties))
              .reduce((acc, s) => acc.plus(s.plain.quantity), new Decimal(0));
            if (!q.isZero()) wanted[metric] = formatDecimal(q);
          }
          const unpriced = Object.fromEntries(calc.exceptions.filter((e: any) => e.kind === "unpriced_metric").map((e: any) => [e.subject, e.details.quantity]));
          expect(unpriced).toEqual(wanted);
          // unique_count read the distinct-value rollups (not the events), and they stand for the events exactly.
          const kept = await t.db.pool.query("SELECT count(*)::int AS n FROM usage_dimensions WHERE customer_id = ANY($1) AND 'user' = ANY(unique_by)", [[customerId, account]]);
          expect(kept.rows[0].n).toBe(4); // two metrics (one filtered), two ids
          expect(await uniqueValueMismatches(t.db.sql)).toEqual([]);
        },
      ),
      // 15 runs in the suite; METERS_PROPERTY_RUNS=200 for a deeper local search.
      { numRuns: Number(process.env.METERS_PROPERTY_RUNS ?? 15) },
    );
  }, 80_000);
});
