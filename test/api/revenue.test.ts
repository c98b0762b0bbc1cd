// Revenue recognition per contract through HTTP on a real PostgreSQL (DESIGN.md §7.2): the prepaid example and
// its tie-out with the engine's next balance, a quarterly fee over 30/31/30 days to the cent, usage by units
// with a remainder, the shortfall in the period's last month, breakage at expiry, unbilled → finalized.
import { describe, expect, it } from "vitest";
import { expectProblem, useTestApp, type TestApp } from "../helpers/app.js";
import { events, meter, uniqueId } from "../helpers/factories.js";

const t = useTestApp();

async function revenue(t: TestApp, id: string, from: string, to: string) {
  const res = await t.get(`/v1/contracts/${id}/revenue?from=${from}&to=${to}`, "reader");
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

async function issue(t: TestApp, contractId: string, periodStart: string) {
  const calc = await t.preview(contractId, periodStart);
  await t.approveAll(calc);
  const res = await t.issue(contractId, calc.id);
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

describe("the prepaid example", () => {
  it("$120,000 grant, $8,000 of usage, then $1,200 late: the rollforward, and its tie-out with the engine", async () => {
    const customer = uniqueId("prepaid");
    const c = await t.createContract({
      customerId: customer, name: "Prepaid", currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01", endDate: "2026-12-31",
      terms: {
        platformFee: { amount: "10000.00" },
        meters: [meter("api_calls", "0.01")],
        prepaidCredits: [{ id: "grant-2026", amount: "120000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
      },
    });
    await t.ingest(events(customer, "api_calls", "800000", "2026-01-20T00:00:00Z", 4));
    const before = await revenue(t, c.id, "2026-01", "2026-02");
    expect(before.months[0]).toMatchObject({ month: "2026-01", basis: "unbilled", billed: "0.00" });
    expect(before.months[0].recognized).toEqual({ platformFee: "10000.00", usage: "8000.00", commitment: "0.00", breakage: "0.00", total: "18000.00" });

    const jan = await issue(t, c.id, "2026-01-01T00:00:00Z");
    expect(jan.amount).toBe("10000.00"); // 18,000 less 8,000 of credits
    const after = await revenue(t, c.id, "2026-01", "2026-02");
    expect(after.months[0]).toEqual({
      month: "2026-01",
      recognized: { platformFee: "10000.00", usage: "8000.00", commitment: "0.00", breakage: "0.00", total: "18000.00" },
      basis: "finalized",
      billed: "10000.00",
      credits: [{ grantId: "grant-2026", opening: "0.00", additions: "120000.00", recognized: "8000.00", expired: "0.00", closing: "112000.00" }],
      catchUp: [],
    });
    // February has not been issued: a fresh rating (platform fee only) stands in.
    expect(after.months[1]).toMatchObject({ month: "2026-02", basis: "unbilled", credits: [{ opening: "112000.00", closing: "112000.00" }] });

    // $1,200 of January usage arrives late and is billed: the grant pays it too.
    await t.ingest(events(customer, "api_calls", "120000", "2026-01-25T00:00:00Z"));
    await issue(t, c.id, "2026-01-01T00:00:00Z");
    const late = await revenue(t, c.id, "2026-01", "2026-01");
    expect(late.months[0].recognized.usage).toBe("9200.00");
    expect(late.months[0].credits[0]).toMatchObject({ recognized: "9200.00", closing: "110800.00" });
    // The tie-out: January's closing balance is what the engine has available for February (rule 10).
    const feb = await t.preview(c.id, "2026-02-01T00:00:00Z");
    await t.ingest(events(customer, "api_calls", "11080000", "2026-02-10T00:00:00Z"));
    const febWithUsage = await t.preview(c.id, "2026-02-01T00:00:00Z");
    const credit = febWithUsage.lines.find((l: any) => l.kind === "credit_applied");
    expect(credit.available).toBe("110800.00");
    expect(feb.lines.find((l: any) => l.kind === "credit_applied")).toBeUndefined();
  });
});

describe("spreads", () => {
  it("a quarterly platform fee over 30/31/30 days, to the cent", async () => {
    const c = await t.createContract({
      customerId: uniqueId("fee"), name: "Quarterly", currency: "USD", billingPeriod: "quarterly", startDate: "2026-04-01", endDate: "2027-03-31",
      terms: { platformFee: { amount: "10000.00" }, meters: [] },
    });
    await issue(t, c.id, "2026-04-01T00:00:00Z");
    const r = await revenue(t, c.id, "2026-04", "2026-06");
    // Through April 10,000 × 30/91 = 3,296.70; through May 10,000 × 61/91 = 6,703.30 → May 3,406.60; June the rest.
    expect(r.months.map((m: any) => m.recognized.platformFee)).toEqual(["3296.70", "3406.60", "3296.70"]);
    expect(r.months.map((m: any) => m.billed)).toEqual(["0.00", "0.00", "10000.00"]);
    expect(r.months.every((m: any) => m.basis === "finalized")).toBe(true);
  });

  it("usage by the units of each month, the last month taking the remainder; a shortfall in the period's last month", async () => {
    const customer = uniqueId("units");
    const c = await t.createContract({
      customerId: customer, name: "Units", currency: "USD", billingPeriod: "quarterly", startDate: "2026-04-01", endDate: "2027-03-31",
      terms: { meters: [{ metric: "api_calls", pricing: { model: "per_unit", unitPrice: "0.03333" } }], commitment: { amount: "5.00", scope: "period" } },
    });
    for (const at of ["2026-04-10T00:00:00Z", "2026-05-10T00:00:00Z", "2026-06-10T00:00:00Z"]) await t.ingest(events(customer, "api_calls", "1", at));
    await issue(t, c.id, "2026-04-01T00:00:00Z");
    const r = await revenue(t, c.id, "2026-04", "2026-06");
    // 3 × 0.03333 = 0.09999 → a 0.10 line, by units 1:1:1: through April 0.03, through May 0.07, June 0.03.
    expect(r.months.map((m: any) => m.recognized.usage)).toEqual(["0.03", "0.04", "0.03"]);
    // The 5.00 minimum less 0.10 of usage: 4.90 of shortfall, all in June.
    expect(r.months.map((m: any) => m.recognized.commitment)).toEqual(["0.00", "0.00", "4.90"]);
    expect(r.months.map((m: any) => m.recognized.total)).toEqual(["0.03", "0.04", "4.93"]);
  });

  it("breakage at expiry: what periods before expiresAt did not use", async () => {
    const customer = uniqueId("breakage");
    const c = await t.createContract({
      customerId: customer, name: "Breakage", currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01", endDate: "2026-12-31",
      terms: {
        meters: [meter("api_calls", "1")],
        prepaidCredits: [{ id: "starter", amount: "1000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2026-03-15T00:00:00Z" }],
      },
    });
    await t.ingest(events(customer, "api_calls", "300", "2026-01-05T00:00:00Z"));
    await t.ingest(events(customer, "api_calls", "200", "2026-02-05T00:00:00Z"));
    await issue(t, c.id, "2026-01-01T00:00:00Z");
    await issue(t, c.id, "2026-02-01T00:00:00Z"); // March has nothing to bill: it stays unbilled
    const r = await revenue(t, c.id, "2026-01", "2026-04");
    const rows = r.months.map((m: any) => [m.month, m.credits[0] ?? null, m.recognized.breakage]);
    expect(rows).toEqual([
      ["2026-01", { grantId: "starter", opening: "0.00", additions: "1000.00", recognized: "300.00", expired: "0.00", closing: "700.00" }, "0.00"],
      ["2026-02", { grantId: "starter", opening: "700.00", additions: "0.00", recognized: "200.00", expired: "0.00", closing: "500.00" }, "0.00"],
      ["2026-03", { grantId: "starter", opening: "500.00", additions: "0.00", recognized: "0.00", expired: "500.00", closing: "0.00" }, "500.00"],
      ["2026-04", null, "0.00"],
    ]);
  });
});

describe("bad input", () => {
  it("refuses malformed months, from > to, over 120 months; unknown contract → 404; reader role", async () => {
    const c = await t.createContract({ customerId: uniqueId("bad"), name: "x", currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01", terms: { meters: [] } });
    for (const [from, to, path] of [["2026-1", "2026-02", "querystring.from"], ["2026-03", "2026-02", "querystring.to"], ["2016-01", "2026-02", "querystring.to"], ["2026-01", "2026-13", "querystring.to"]] as const) {
      const res = await t.get(`/v1/contracts/${c.id}/revenue?from=${from}&to=${to}`, "reader");
      expect(expectProblem(res, 400, "validation_failed").errors.map((e: any) => e.path)).toContain(path);
    }
    expectProblem(await t.get(`/v1/contracts/0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b/revenue?from=2026-01&to=2026-02`, "reader"), 404, "not_found");
    expect((await t.get(`/v1/contracts/${c.id}/revenue?from=2016-01&to=2026-01`, "reader")).statusCode).toBe(200);
  });
});

describe("the book", () => {
  const book = useTestApp();

  it("sums every contract per month and currency, and the CSVs say the same", async () => {
    const usd = await book.createContract({
      customerId: uniqueId("book-usd"), name: "USD", currency: "USD", billingPeriod: "quarterly", startDate: "2026-04-01", endDate: "2027-03-31",
      terms: { platformFee: { amount: "10000.00" }, meters: [] },
    });
    await book.createContract({
      customerId: uniqueId("book-usd2"), name: "USD 2", currency: "USD", billingPeriod: "monthly", startDate: "2026-04-01", endDate: "2027-03-31",
      terms: { platformFee: { amount: "100.00" }, meters: [] },
    });
    await book.createContract({
      customerId: uniqueId("book-eur"), name: "EUR", currency: "EUR", billingPeriod: "monthly", startDate: "2026-05-01", endDate: "2027-04-30",
      terms: { platformFee: { amount: "50.00" }, meters: [] },
    });
    const res = await book.get("/v1/revenue?from=2026-04&to=2026-06", "reader");
    expect(res.statusCode, res.body).toBe(200);
    const books = res.json().books;
    expect(books.map((b: any) => b.currency)).toEqual(["EUR", "USD"]);
    expect(books[1].months.map((m: any) => m.recognized.platformFee)).toEqual(["3396.70", "3506.60", "3396.70"]);
    expect(books[0].months.map((m: any) => [m.month, m.recognized.total])).toEqual([["2026-05", "50.00"], ["2026-06", "50.00"]]);
    expect((await book.get("/v1/revenue?from=2026-04&to=2026-06&currency=EUR", "reader")).json().books.map((b: any) => b.currency)).toEqual(["EUR"]);

    const csv = await book.get("/v1/revenue.csv?from=2026-04&to=2026-06", "reader");
    expect(csv.headers["content-type"]).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split("\r\n");
    expect(lines[0]).toBe("currency,month,recognized.platformFee,recognized.usage,recognized.commitment,recognized.breakage,recognized.total,billed,credits.opening,credits.additions,credits.recognized,credits.expired,credits.closing");
    expect(lines.slice(1)).toHaveLength(5);
    expect(lines).toContain("USD,2026-05,3506.60,0.00,0.00,0.00,3506.60,0.00,0.00,0.00,0.00,0.00,0.00");
    const one = await book.get(`/v1/contracts/${usd.id}/revenue.csv?from=2026-04&to=2026-06`, "reader");
    expect(one.body.trim().split("\r\n")[1]).toBe(`${usd.id},USD,2026-04,3296.70,0.00,0.00,0.00,3296.70,unbilled,0.00,0.00,0.00,0.00,0.00,0.00`);
  });
});

describe("closing the books", () => {
  const books = useTestApp();

  it("stores closed months as they stood; late usage billed after the close is catch-up in the first open month", async () => {
    const customer = uniqueId("close");
    const c = await books.createContract({
      customerId: customer, name: "Close", currency: "USD", billingPeriod: "monthly", startDate: "2026-09-01", endDate: "2027-08-31",
      terms: { platformFee: { amount: "100.00" }, meters: [meter("api_calls", "0.01")] },
    });
    await books.ingest(events(customer, "api_calls", "1000", "2026-09-10T00:00:00Z"));
    await issue(books, c.id, "2026-09-01T00:00:00Z");

    expectProblem(await books.post("/v1/revenue/closes", { month: "2026-11", note: "too early" }, "approver"), 409, "period_open");
    expectProblem(await books.post("/v1/revenue/closes", { month: "2026-09", note: "x" }, "writer"), 403, "forbidden");
    const closed = await books.post("/v1/revenue/closes", { month: "2026-09", note: "September close" }, "approver", { "idempotency-key": "close-sep" });
    expect(closed.statusCode, closed.body).toBe(201);
    expect(closed.json()).toMatchObject({ month: "2026-09", actor: "approver-key", note: "September close", unbilledPeriods: 0 });
    const replay = await books.post("/v1/revenue/closes", { month: "2026-09", note: "September close" }, "approver", { "idempotency-key": "close-sep" });
    expect(replay.headers["idempotent-replayed"]).toBe("true");
    expectProblem(await books.post("/v1/revenue/closes", { month: "2026-08", note: "again" }, "approver"), 409, "conflict");
    const before = await revenue(books, c.id, "2026-09", "2026-10");

    // 500 late September calls, billed by a delta invoice after the close.
    await books.ingest(events(customer, "api_calls", "500", "2026-09-20T00:00:00Z"));
    const delta = await issue(books, c.id, "2026-09-01T00:00:00Z");
    expect(delta.amount).toBe("5.00");
    const after = await revenue(books, c.id, "2026-09", "2026-10");
    expect(after.months[0]).toEqual(before.months[0]); // the closed month never changes
    expect(after.months[0].recognized.usage).toBe("10.00");
    expect(after.months[1].catchUp).toEqual([
      { month: "2026-09", component: "usage", reason: "delta_invoice", documentId: delta.id, amount: "5.00" },
      { month: "2026-09", component: "billed", reason: "delta_invoice", documentId: delta.id, amount: "5.00" },
    ]);
    expect(after.months[1].recognized).toEqual({ platformFee: "100.00", usage: "5.00", commitment: "0.00", breakage: "0.00", total: "105.00" });
    expect(after.months[1].billed).toBe("5.00");

    // The journal: balanced, its revenue accounts the month's recognized total, the catch-up on its own lines.
    const sep = (await books.get("/v1/revenue/journal?month=2026-09&currency=USD", "reader")).json();
    expect(sep.totals).toEqual([{ currency: "USD", debit: "220.00", credit: "220.00", revenue: "110.00" }]);
    expect(sep.lines.map((l: any) => [l.date, l.account, l.debit, l.credit])).toEqual([
      ["2026-09-30", "accounts_receivable", "110.00", "0.00"],
      ["2026-09-30", "deferred_revenue", "0.00", "110.00"],
      ["2026-09-30", "deferred_revenue", "100.00", "0.00"],
      ["2026-09-30", "revenue_platform", "0.00", "100.00"],
      ["2026-09-30", "deferred_revenue", "10.00", "0.00"],
      ["2026-09-30", "revenue_usage", "0.00", "10.00"],
    ]);
    const oct = (await books.get("/v1/revenue/journal?month=2026-10", "reader")).json();
    expect(oct.totals).toEqual([{ currency: "USD", debit: "110.00", credit: "110.00", revenue: "105.00" }]);
    // October is unbilled: its platform fee is accrued on the unbilled receivable.
    expect(oct.lines.filter((l: any) => l.account === "unbilled_receivable").map((l: any) => l.debit)).toEqual(["100.00"]);
    expect(oct.lines.filter((l: any) => l.documentId === delta.id).map((l: any) => [l.account, l.debit, l.credit])).toEqual([
      ["deferred_revenue", "5.00", "0.00"],
      ["revenue_usage", "0.00", "5.00"],
      ["accounts_receivable", "5.00", "0.00"],
      ["deferred_revenue", "0.00", "5.00"],
    ]);
    const csv = await books.get("/v1/revenue/journal.csv?month=2026-10", "reader");
    expect(csv.body.split("\r\n")[0]).toBe("date,account,debit,credit,currency,contractId,documentId,memo");

    const list = await books.get("/v1/revenue/closes", "reader");
    expect(list.json().data.map((x: any) => x.month)).toEqual(["2026-09"]);
    const audit = await books.get("/v1/audit?entityId=2026-09", "reader");
    expect(audit.json().data.map((e: any) => e.action)).toEqual(["revenue.closed"]);
  });
});
