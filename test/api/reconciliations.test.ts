// Three-way reconciliation through HTTP on a real PostgreSQL (DESIGN.md §7.1): each class on its own with
// hand-computed money, a graduated meter, unit conversions, aliases, `invoiced` omitted (this service's own
// documents) and the watch-list clearing, dispositions and sign-off, the CSV, bad input and roles.
import { describe, expect, it } from "vitest";
import { expectProblem, useTestApp, type TestApp } from "../helpers/app.js";
import { events, meter, uniqueId } from "../helpers/factories.js";

const Q3 = { periodStart: "2026-07-01T00:00:00Z", periodEnd: "2026-10-01T00:00:00Z" };

/** The database's clock: events received after it are late for an invoice stamped with it. */
async function dbNow(t: TestApp): Promise<string> {
  const { rows } = await t.db.pool.query<{ now: Date }>("SELECT clock_timestamp() AS now");
  return rows[0]!.now.toISOString();
}

const contract = (customerId: string, over: Record<string, unknown> = {}) => ({
  customerId,
  name: `Recon ${customerId}`,
  currency: "USD",
  billingPeriod: "monthly",
  startDate: "2026-01-01",
  endDate: "2026-12-31",
  terms: { meters: [meter("api_calls", "0.05")] },
  ...over,
});

async function reconcile(t: TestApp, body: Record<string, unknown>, key?: string) {
  const res = await t.post("/v1/reconciliations", body, "writer", key ? { "idempotency-key": key } : {});
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

async function breaksOf(t: TestApp, runId: string, query = ""): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const res = await t.get(`/v1/reconciliations/${runId}/breaks?limit=500${query}${cursor ? `&cursor=${cursor}` : ""}`, "reader");
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json();
    out.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

const inv = (customerId: string, quantity: string, invoicedAt: string, extra: Record<string, unknown> = {}) => ({
  customerId,
  metric: "api_calls",
  quantity,
  invoicedAt,
  ...extra,
});
const met = (customerId: string, quantity: string, metric = "api_calls") => ({ customerId, metric, quantity });

describe("each class on its own, with hand-computed money", () => {
  const t = useTestApp();

  it("classifies, prices, sources and routes every key, and the statement adds them up", async () => {
    const id = (s: string) => `${s}-${uniqueId("k")}`;
    const c = {
      match: id("match"), under: id("under"), over: id("over"), metering: id("metering"), credit: id("credit"),
      timing: id("timing"), proration: id("proration"), graduated: id("graduated"), unmapped: id("nobody"),
    };
    for (const k of ["match", "under", "over", "metering", "credit", "timing"] as const) await t.createContract(contract(c[k]));
    const proration = await t.createContract(contract(c.proration));
    const amended = await t.post(
      `/v1/contracts/${proration.id}/amendments`,
      { effectiveFrom: "2026-08-16T00:00:00Z", reason: "new rate", terms: { meters: [meter("api_calls", "0.10")] } },
      "writer",
    );
    expect(amended.statusCode, amended.body).toBe(201);
    await t.createContract(
      contract(c.graduated, {
        terms: {
          meters: [{ metric: "api_calls", pricing: { model: "graduated", tiers: [{ upTo: "1000", unitPrice: "0.10" }, { upTo: null, unitPrice: "0.05" }] } }],
        },
      }),
    );
    for (const k of ["match", "under", "over", "metering", "credit", "timing"] as const) await t.ingest(events(c[k], "api_calls", "1000", "2026-07-10T12:00:00Z", 2));
    await t.ingest(events(c.proration, "api_calls", "1000", "2026-08-01T12:00:00Z"));
    await t.ingest(events(c.graduated, "api_calls", "3000", "2026-07-20T12:00:00Z", 3));
    // The timing key: 900 arrived before the invoice, 100 after.
    await t.ingest(events(c.timing, "api_calls", "0", "2026-07-11T00:00:00Z"));
    const invoicedAt = await dbNow(t);
    const lateTiming = events(c.timing, "api_calls", "100", "2026-09-30T23:00:00Z");
    await t.ingest(lateTiming);
    // The timing contract's raw is 1100: metered says 1100, invoiced 1000 before the late 100.

    const run = await reconcile(t, {
      ...Q3,
      metered: [
        met(c.match, "1000"), met(c.under, "1000"), met(c.over, "1000"), met(c.metering, "900"), met(c.credit, "1000"),
        met(c.timing, "1100"), met(c.proration, "1000"), met(c.graduated, "3000"), met(c.unmapped, "50"),
      ],
      invoiced: [
        inv(c.match, "1000", invoicedAt),
        inv(c.under, "800", invoicedAt),
        inv(c.over, "1200", invoicedAt),
        inv(c.metering, "1000", invoicedAt),
        inv(c.credit, "1000", invoicedAt),
        inv(c.credit, "100", invoicedAt, { kind: "credit_memo", invoiceRef: "cm_1" }),
        inv(c.timing, "1000", invoicedAt),
        inv(c.proration, "900", invoicedAt),
        inv(c.graduated, "1000", invoicedAt),
      ],
    });
    const breaks = await breaksOf(t, run.id);
    const byCustomer = Object.fromEntries(breaks.map((b) => [b.customerId, b]));
    const pick = (b: any) => ({ class: b.class, source: b.source, owner: b.owner, raw: b.raw, metered: b.metered, invoiced: b.invoiced, late: b.late, units: b.units, amount: b.amount });

    expect(byCustomer[c.match]).toBeUndefined();
    expect(pick(byCustomer[c.under])).toEqual({ class: "under_bill", source: "billing", owner: "revops", raw: "1000", metered: "1000", invoiced: "800", late: "0", units: "200", amount: "10.00" });
    expect(pick(byCustomer[c.over])).toEqual({ class: "over_bill", source: "billing", owner: "csm", raw: "1000", metered: "1000", invoiced: "1200", late: "0", units: "-200", amount: "-10.00" });
    expect(pick(byCustomer[c.metering])).toEqual({ class: "metering", source: "metering", owner: "data", raw: "1000", metered: "900", invoiced: "1000", late: "0", units: "0", amount: "0.00" });
    expect(pick(byCustomer[c.credit])).toEqual({ class: "credit", source: "billing", owner: "none", raw: "1000", metered: "1000", invoiced: "900", late: "0", units: "100", amount: "5.00" });
    expect(pick(byCustomer[c.timing])).toEqual({ class: "timing", source: "billing", owner: "watchlist", raw: "1100", metered: "1100", invoiced: "1000", late: "100", units: "100", amount: "5.00" });
    // The amendment on Aug 16 doubles the rate: the 1,000 raw units (Aug 1) are at 0.05 and I = 900 spread the same way.
    expect(pick(byCustomer[c.proration])).toEqual({ class: "proration", source: "billing", owner: "revops", raw: "1000", metered: "1000", invoiced: "900", late: "0", units: "100", amount: "5.00" });
    // Graduated: 3,000 → 1,000 × 0.10 + 2,000 × 0.05 = 200.00; 1,000 → 100.00; money 100.00, not 2,000 × one price.
    expect(pick(byCustomer[c.graduated])).toEqual({ class: "under_bill", source: "billing", owner: "revops", raw: "3000", metered: "3000", invoiced: "1000", late: "0", units: "2000", amount: "100.00" });
    expect(pick(byCustomer[c.unmapped])).toEqual({ class: "unmapped", source: "metering", owner: "revops", raw: "0", metered: "50", invoiced: "0", late: "0", units: "0", amount: null });
    expect(byCustomer[c.under].currency).toBe("USD");
    expect(byCustomer[c.unmapped].contractId).toBeNull();

    expect(run.status).toBe("open");
    expect(run.counts.match).toEqual({ keys: 1, units: "0", amount: "0.00" });
    expect(run.counts.under_bill).toEqual({ keys: 2, units: "2200", amount: "110.00" });
    expect(run.counts.over_bill).toEqual({ keys: 1, units: "-200", amount: "-10.00" });
    expect(run.counts.unmapped).toEqual({ keys: 1, units: "0", amount: "0.00" });
    expect(run.totals).toEqual({ keys: 9, breaks: 8, underBilled: "110.00", overBilled: "10.00" });
    expect(run.currency).toBe("USD");
    expect(run.previousRunId).toBeNull();
    expect(run.watchlist).toEqual({ cleared: 0, persisting: 0 });
    expect(run.invoicedSource).toBe("caller");
    expect(await t.get(`/v1/reconciliations/${run.id}`, "reader").then((r) => r.json())).toEqual(run);

    // Filters.
    expect((await breaksOf(t, run.id, "&owner=revops")).map((b) => b.class).sort()).toEqual(["proration", "under_bill", "under_bill", "unmapped"]);
    expect((await breaksOf(t, run.id, "&class=timing")).map((b) => b.customerId)).toEqual([c.timing]);

    // The CSV has the same breaks and columns.
    const csv = await t.get(`/v1/reconciliations/${run.id}/breaks.csv`, "reader");
    expect(csv.statusCode).toBe(200);
    expect(csv.headers["content-type"]).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split("\r\n");
    expect(lines[0]).toBe(
      '"id","contractId","customerId","metric","class","source","owner","raw","metered","invoiced","late","units","amount","currency","previousClass","disposition.decision","disposition.note","disposition.actor","disposition.at"',
    );
    expect(lines).toHaveLength(1 + breaks.length);
    expect(lines.find((l) => l.includes(c.over))).toContain('"over_bill","billing","csm","1000","1000","1200","0","-200","-10.00","USD"');

    // Dispositions and sign-off.
    const signEarly = await t.post(`/v1/reconciliations/${run.id}/sign-off`, { note: "close" }, "approver");
    const problem = expectProblem(signEarly, 409, "conflict");
    const needing = breaks.filter((b) => !["timing", "credit"].includes(b.class)).map((b) => b.id).sort();
    expect([...problem.breakIds].sort()).toEqual(needing);

    const wrongWay = await t.post(`/v1/reconciliations/${run.id}/breaks/${byCustomer[c.over].id}/resolve`, { decision: "catch_up_charge", note: "no" }, "approver");
    expectProblem(wrongWay, 409, "conflict");
    expectProblem(await t.post(`/v1/reconciliations/${run.id}/breaks/${byCustomer[c.over].id}/resolve`, { decision: "credit", note: "x" }, "writer"), 403, "forbidden");
    const decisions: Record<string, string> = { under_bill: "catch_up_charge", over_bill: "credit", metering: "no_action", proration: "absorb", unmapped: "no_action" };
    for (const b of breaks.filter((x) => needing.includes(x.id))) {
      const res = await t.post(`/v1/reconciliations/${run.id}/breaks/${b.id}/resolve`, { decision: decisions[b.class], note: `checked ${b.class}` }, "approver");
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().disposition).toMatchObject({ decision: decisions[b.class], note: `checked ${b.class}`, actor: "approver-key" });
    }
    const signed = await t.post(`/v1/reconciliations/${run.id}/sign-off`, { note: "Q3 close" }, "approver");
    expect(signed.statusCode, signed.body).toBe(200);
    expect(signed.json()).toMatchObject({ status: "signed_off", signedOff: { actor: "approver-key", note: "Q3 close" }, counts: run.counts });
    expectProblem(await t.post(`/v1/reconciliations/${run.id}/sign-off`, { note: "again" }, "approver"), 409, "conflict");
    expectProblem(await t.post(`/v1/reconciliations/${run.id}/breaks/${byCustomer[c.under].id}/resolve`, { decision: "absorb", note: "late" }, "approver"), 409, "conflict");

    const audit = await t.get(`/v1/audit?entityId=${run.id}`, "reader");
    expect(audit.json().data.map((e: any) => e.action)).toEqual([
      "reconciliation.created",
      ...needing.map(() => "reconciliation.break_resolved"),
      "reconciliation.signed_off",
    ]);
  });
});

describe("normalization: aliases, unit conversions, a rated spread", () => {
  const t = useTestApp();

  it("keys an account alias under its contract's customer and converts raw units to the metered unit", async () => {
    const customer = uniqueId("parent");
    const alias = uniqueId("alias");
    // Per call 0.00005 in the contract's unit; the metering layer and the invoice count thousands of calls.
    await t.createContract(contract(customer, { accountIds: [alias], terms: { meters: [{ metric: "api_calls", included: "1000", pricing: { model: "per_unit", unitPrice: "0.01" } }] } }));
    await t.ingest(events(customer, "api_calls", "3000", "2026-07-05T00:00:00Z"));
    await t.ingest(events(alias, "api_calls", "2000", "2026-08-05T00:00:00Z"));
    const at = await dbNow(t);
    const run = await reconcile(t, {
      ...Q3,
      unitConversions: { api_calls: "0.001" },
      metered: [met(alias, "5")],
      invoiced: [inv(alias, "2", at)],
    });
    const [b, ...rest] = await breaksOf(t, run.id);
    expect(rest).toEqual([]);
    // R = 5 thousand calls, I = 2 thousand. In the contract's unit: 3,000 in July and 2,000 in August, 1,000
    // included each month → 2,000 + 1,000 billable = 30.00. I = 2,000 spread as R: 1,200 July, 800 August →
    // 200 billable + 0 = 2.00. Money 28.00.
    expect(b).toMatchObject({ customerId: customer, metric: "api_calls", class: "under_bill", raw: "5", metered: "5", invoiced: "2", units: "3", amount: "28.00" });
  });
});

describe("invoiced omitted: this service's own documents, and the watch-list", () => {
  const t = useTestApp();

  it("takes the latest document of each period, finds late events as timing, and clears them once billed", async () => {
    const customer = uniqueId("own");
    const c = await t.createContract(contract(customer));
    await t.ingest(events(customer, "api_calls", "1000", "2026-07-15T00:00:00Z"));
    const july = await t.preview(c.id, "2026-07-01T00:00:00Z");
    await t.approveAll(july);
    expect((await t.issue(c.id, july.id)).statusCode).toBe(201);
    // 200 more July calls arrive after July's invoice.
    await t.ingest(events(customer, "api_calls", "200", "2026-07-31T00:00:00Z"));
    const window = { periodStart: "2026-07-01T00:00:00Z", periodEnd: "2026-08-01T00:00:00Z" };
    const first = await reconcile(t, { ...window, metered: [met(customer, "1200")] });
    expect(first.invoicedSource).toBe("documents");
    const [b] = await breaksOf(t, first.id);
    expect(b).toMatchObject({ class: "timing", source: "billing", owner: "watchlist", raw: "1200", metered: "1200", invoiced: "1000", late: "200", units: "200", amount: "10.00", previousClass: null });

    // A second run before the late events are billed: they persist.
    const second = await reconcile(t, { ...window, metered: [met(customer, "1200")] });
    expect(second.previousRunId).toBe(first.id);
    expect(second.watchlist).toEqual({ cleared: 0, persisting: 1 });
    expect((await breaksOf(t, second.id))[0]).toMatchObject({ class: "timing", previousClass: "timing" });

    // July billed again: the latest document supersedes (nothing is subtracted), the key matches, the watch-list clears.
    const rerate = await t.preview(c.id, "2026-07-01T00:00:00Z");
    await t.approveAll(rerate);
    expect((await t.issue(c.id, rerate.id)).statusCode).toBe(201);
    const third = await reconcile(t, { ...window, metered: [met(customer, "1200")] });
    expect(third.previousRunId).toBe(second.id);
    expect(third.watchlist).toEqual({ cleared: 1, persisting: 0 });
    expect(third.counts.match.keys).toBe(1);
    expect(await breaksOf(t, third.id)).toEqual([]);

    // The documents' usage is converted like the raw units: in thousands of calls, 1.2 = 1.2 = 1.2.
    const converted = await reconcile(t, { ...window, unitConversions: { api_calls: "0.001" }, metered: [met(customer, "1.2")] });
    expect(converted.counts.match).toEqual({ keys: 1, units: "0", amount: "0.00" });
    const skewed = await reconcile(t, { ...window, unitConversions: { api_calls: "0.001" }, metered: [met(customer, "1.2")], invoiced: [inv(customer, "1", await dbNow(t))] });
    expect((await breaksOf(t, skewed.id))[0]).toMatchObject({ class: "under_bill", raw: "1.2", invoiced: "1", units: "0.2", amount: "10.00" });

    const list = await t.get(`/v1/reconciliations?periodStart=${window.periodStart}&limit=2`, "reader");
    expect(list.statusCode).toBe(200);
    expect(list.json().data.map((r: any) => r.id)).toEqual([first.id, second.id]);
    expect(list.json().nextCursor).not.toBeNull();
  });
});

describe("idempotency, bad input and roles", () => {
  const t = useTestApp();

  it("replays the first answer for the same key and body, refuses another body", async () => {
    const body = { ...Q3, metered: [met(uniqueId("idem"), "1")] };
    const first = await reconcile(t, body, "recon-1");
    const again = await t.post("/v1/reconciliations", body, "writer", { "idempotency-key": "recon-1" });
    expect(again.statusCode).toBe(201);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.json()).toEqual(first);
    expectProblem(await t.post("/v1/reconciliations", { ...body, metered: [] }, "writer", { "idempotency-key": "recon-1" }), 409, "idempotency_conflict");
  });

  it("names every bad path and stores nothing", async () => {
    const before = (await t.get("/v1/reconciliations?limit=500", "reader")).json().data.length;
    const res = await t.post("/v1/reconciliations", {
      periodStart: "2026-10-01T00:00:00Z",
      periodEnd: "2026-07-01T00:00:00Z",
      unitConversions: { api_calls: "0", "bad metric": "1" },
      metered: [met("a", "1"), { customerId: "b", metric: "api_calls", quantity: 5 }, { customerId: "", metric: "x", quantity: "1", extra: 1 }],
      invoiced: [{ customerId: "a", metric: "api_calls", quantity: "1" }, inv("a", "1", "2026-10-02T00:00:00Z", { kind: "refund", amount: "1.0000001" })],
      extra: true,
    }, "writer");
    const p = expectProblem(res, 400, "validation_failed");
    expect(p.errors.map((e: any) => e.path).sort()).toEqual(
      [
        "body.extra",
        "body.periodEnd",
        "body.unitConversions.api_calls",
        "body.unitConversions.bad metric",
        "body.metered.1.quantity",
        "body.metered.2.customerId",
        "body.metered.2.extra",
        "body.invoiced.0.invoicedAt",
        "body.invoiced.1.amount",
        "body.invoiced.1.kind",
      ].sort(),
    );
    expectProblem(await t.post("/v1/reconciliations", { ...Q3 }, "writer"), 400, "validation_failed");
    expect((await t.get("/v1/reconciliations?limit=500", "reader")).json().data).toHaveLength(before);
  });

  it("refuses a window over 400 days, and quantities a conversion makes too large to store", async () => {
    const long = await t.post("/v1/reconciliations", { periodStart: "2025-01-01T00:00:00Z", periodEnd: "2026-03-01T00:00:00Z", metered: [] }, "writer");
    expect(expectProblem(long, 400, "validation_failed").errors.map((e: any) => e.path)).toEqual(["body.periodEnd"]);
    const customer = uniqueId("huge");
    await t.createContract(contract(customer));
    // In June: the other tests of this block reconcile Q3.
    await t.ingest(events(customer, "api_calls", "1000000000000000000000", "2026-06-10T00:00:00Z"));
    const before = (await t.get("/v1/reconciliations?limit=500", "reader")).json().data.length;
    const june = { periodStart: "2026-06-01T00:00:00Z", periodEnd: "2026-07-01T00:00:00Z" };
    const res = await t.post("/v1/reconciliations", { ...june, unitConversions: { api_calls: "10000000000000000000" }, metered: [] }, "writer");
    expect(expectProblem(res, 409, "conflict").keys).toEqual([expect.objectContaining({ customerId: customer, metric: "api_calls" })]);
    expect((await t.get("/v1/reconciliations?limit=500", "reader")).json().data).toHaveLength(before);
  });

  it("needs writer to run, reader to read, approver to decide", async () => {
    expectProblem(await t.post("/v1/reconciliations", { ...Q3, metered: [] }, "reader"), 403, "forbidden");
    expectProblem(await t.post("/v1/reconciliations", { ...Q3, metered: [] }, "approver"), 403, "forbidden");
    const run = await reconcile(t, { ...Q3, metered: [] });
    expectProblem(await t.post(`/v1/reconciliations/${run.id}/sign-off`, { note: "x" }, "writer"), 403, "forbidden");
    expectProblem(await t.get(`/v1/reconciliations/0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b`, "reader"), 404, "not_found");
    expectProblem(await t.get(`/v1/reconciliations/0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b/breaks`, "reader"), 404, "not_found");
    expectProblem(await t.get(`/v1/reconciliations/${run.id}/breaks?class=match`, "reader"), 400, "validation_failed");
    const signed = await t.post(`/v1/reconciliations/${run.id}/sign-off`, { note: "nothing to decide" }, "approver");
    expect(signed.statusCode, signed.body).toBe(200);
  });
});
