// Alerts as contract terms (DESIGN.md §9): each kind with a hand-computed crossing, evaluated by the job a
// usage batch, void, amendment or issued document enqueues; at most once per contract, alert and period.
import { describe, expect, it } from "vitest";
import { expectProblem, useTestApp } from "../helpers/app.js";
import { contractBody, events, meter } from "../helpers/factories.js";
import { eventually, jobsDrained } from "../helpers/jobs.js";
import { enqueueAlertEvaluation } from "../../src/db/queries/jobs.js";
import { transaction } from "../../src/db/tx.js";

const t = useTestApp();

const alertsOf = async (contractId: string) => {
  const res = await t.get(`/v1/alerts?contractId=${contractId}`, "reader");
  expect(res.statusCode, res.body).toBe(200);
  return res.json().data as any[];
};
const fired = (contractId: string, n = 1) => eventually(() => alertsOf(contractId), (a) => a.length >= n);
/** After the queue ran: what fired (a test that expects nothing to fire must wait for the job first). */
const settled = async (contractId: string) => {
  await jobsDrained(t.db);
  return alertsOf(contractId);
};

const NOVEMBER = { start: "2026-11-01T00:00:00.000Z", end: "2026-12-01T00:00:00.000Z" };

describe("each kind fires when its threshold is reached, with the figure measured", () => {
  it("included_share: 800 of 1,000 included calls reaches 0.8 (700 does not)", async () => {
    const c = await t.createContract(
      contractBody({ terms: { meters: [meter("api_calls", "0.01", "1000")], alerts: [{ id: "calls-80", kind: "included_share", metric: "api_calls", threshold: "0.8" }] } }),
    );
    await t.ingest(events(c.customerId, "api_calls", "700", "2026-11-03T10:00:00Z", 7));
    expect(await settled(c.id)).toEqual([]);
    await t.ingest(events(c.customerId, "api_calls", "100", "2026-11-04T10:00:00Z"));
    const [a] = await fired(c.id);
    expect(a).toMatchObject({
      contractId: c.id,
      alertId: "calls-80",
      kind: "included_share",
      metric: "api_calls",
      grantId: null,
      threshold: "0.8",
      value: "800",
      share: "0.8",
      period: NOVEMBER,
      version: 1,
    });
  });

  it("quantity on a max meter: a peak of 600 seats reaches 500 (300 does not)", async () => {
    const c = await t.createContract(
      contractBody({
        terms: {
          meters: [{ metric: "seats", aggregation: "max", included: "1000", pricing: { model: "per_unit", unitPrice: "10" } }],
          alerts: [{ id: "seats-500", kind: "quantity", metric: "seats", threshold: "500" }],
        },
      }),
    );
    await t.ingest(events(c.customerId, "seats", "300", "2026-11-02T00:00:00Z"));
    expect(await settled(c.id)).toEqual([]);
    await t.ingest([...events(c.customerId, "seats", "600", "2026-11-05T00:00:00Z"), ...events(c.customerId, "seats", "200", "2026-11-06T00:00:00Z")]);
    const [a] = await fired(c.id);
    expect(a).toMatchObject({ kind: "quantity", metric: "seats", threshold: "500", value: "600", share: null });
  });

  it("commitment_share: usage charges of 520.00 against a 1,000.00 period minimum reach 0.5 (400.00 does not)", async () => {
    const c = await t.createContract(
      contractBody({
        terms: {
          meters: [meter("api_calls", "2")],
          platformFee: { amount: "5000.00" }, // not usage: never counts toward the share
          commitment: { amount: "1000.00", scope: "period" },
          alerts: [{ id: "half", kind: "commitment_share", threshold: "0.5" }],
        },
      }),
    );
    await t.ingest(events(c.customerId, "api_calls", "200", "2026-11-02T00:00:00Z"));
    expect(await settled(c.id)).toEqual([]);
    await t.ingest(events(c.customerId, "api_calls", "60", "2026-11-03T00:00:00Z"));
    const [a] = await fired(c.id);
    expect(a).toMatchObject({ kind: "commitment_share", metric: null, threshold: "0.5", value: "520", share: "0.52" });
  });

  it("credit_balance: 1,000.00 less October's 300.00 (issued) less November's 500.00 so far falls to 200.00", async () => {
    const c = await t.createContract(
      contractBody({
        terms: {
          meters: [meter("api_calls", "1")],
          prepaidCredits: [{ id: "prepaid-2026", amount: "1000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
          alerts: [
            { id: "low", kind: "credit_balance", grantId: "prepaid-2026", threshold: "200" },
            { id: "all-low", kind: "credit_balance", threshold: "100" },
          ],
        },
      }),
    );
    await t.ingest(events(c.customerId, "api_calls", "300", "2026-10-10T00:00:00Z"));
    const october = await t.preview(c.id, "2026-10-01T00:00:00.000Z");
    expect(october.creditsApplied).toEqual([expect.objectContaining({ grantId: "prepaid-2026", amount: "300.00" })]);
    const issued = await t.issue(c.id, october.id);
    expect(issued.statusCode, issued.body).toBe(201);
    await t.ingest(events(c.customerId, "api_calls", "450", "2026-11-02T00:00:00Z"));
    expect(await settled(c.id)).toEqual([]); // 1,000 − 300 − 450 = 250 > 200
    await t.ingest(events(c.customerId, "api_calls", "50", "2026-11-03T00:00:00Z"));
    const [a] = await fired(c.id);
    expect(a).toMatchObject({ alertId: "low", kind: "credit_balance", grantId: "prepaid-2026", threshold: "200", value: "200", share: null });
    // All grants together: 200 > 100, not yet.
    expect(await settled(c.id)).toHaveLength(1);
  });
});

describe("at most once per contract, alert and period", () => {
  it("10 concurrent batches that each cross the threshold fire it once", async () => {
    const c = await t.createContract(contractBody({ terms: { meters: [meter("api_calls", "1")], alerts: [{ id: "q", kind: "quantity", metric: "api_calls", threshold: "10" }] } }));
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => t.sendUsage(events(c.customerId, "api_calls", "15", `2026-11-0${(i % 9) + 1}T00:00:00Z`))));
    for (const r of answers) expect(r.statusCode, r.body).toBe(200);
    await fired(c.id);
    expect(await settled(c.id)).toHaveLength(1);
  });

  it("a void that takes usage back below does not make a later rise fire again", async () => {
    const c = await t.createContract(contractBody({ terms: { meters: [meter("api_calls", "1")], alerts: [{ id: "q", kind: "quantity", metric: "api_calls", threshold: "100" }] } }));
    const first = events(c.customerId, "api_calls", "120", "2026-11-02T00:00:00Z");
    await t.ingest(first);
    const [a] = await fired(c.id);
    expect(a.value).toBe("120");
    const voided = await t.post("/v1/usage/void", { customerId: c.customerId, eventIds: first.map((e) => e.eventId), reason: "double counted" }, "writer");
    expect(voided.statusCode, voided.body).toBe(200);
    await t.ingest(events(c.customerId, "api_calls", "150", "2026-11-03T00:00:00Z"));
    expect(await settled(c.id)).toEqual([a]);
  });

  it("an amendment re-baselines: 700 calls do not reach 0.8 of 1,000, but do of the amended 800", async () => {
    const alerts = [{ id: "calls-80", kind: "included_share", metric: "api_calls", threshold: "0.8" }];
    const c = await t.createContract(contractBody({ terms: { meters: [meter("api_calls", "1", "1000")], alerts } }));
    await t.ingest(events(c.customerId, "api_calls", "700", "2026-11-02T00:00:00Z"));
    expect(await settled(c.id)).toEqual([]);
    const amended = await t.post(
      `/v1/contracts/${c.id}/amendments`,
      { effectiveFrom: "2026-11-10T00:00:00Z", reason: "fewer included calls", terms: { meters: [meter("api_calls", "1", "800")], alerts } },
      "writer",
    );
    expect(amended.statusCode, amended.body).toBe(201);
    const [a] = await fired(c.id);
    expect(a).toMatchObject({ alertId: "calls-80", value: "700", share: "0.875", version: 2 });
  });

  it("only contracts with alerts get an evaluation job, one per contract however often it is enqueued", async () => {
    const plain = await t.createContract(contractBody());
    const watched = await t.createContract(contractBody({ terms: { meters: [meter("api_calls", "1")], alerts: [{ id: "q", kind: "quantity", metric: "api_calls", threshold: "1000" }] } }));
    // Inside one transaction, before the worker can see (and run) anything, then rolled back.
    const keys = await transaction(t.db, async (sql) => {
      await enqueueAlertEvaluation(sql, [plain.id, watched.id]);
      await enqueueAlertEvaluation(sql, [watched.id]);
      const rows = await sql.query<{ key: string }>(`SELECT key FROM graphile_worker._private_jobs WHERE key = ANY($1::text[])`, [[`alerts:${plain.id}`, `alerts:${watched.id}`]]);
      throw Object.assign(new Error("roll back"), { keys: rows.map((r) => r.key) });
    }).catch((e: { keys: string[] }) => e.keys);
    expect(keys).toEqual([`alerts:${watched.id}`]);
  });
});

describe("validation (400, naming the field)", () => {
  const base = { meters: [meter("api_calls", "1", "100")], prepaidCredits: [{ id: "g1", amount: "10.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }] };
  const cases: [string, unknown[], string, RegExp][] = [
    ["an unknown kind", [{ id: "a", kind: "spend", threshold: "1" }], "body.terms.alerts.0.kind", /Invalid option/],
    ["included_share without a metric", [{ id: "a", kind: "included_share", threshold: "0.8" }], "body.terms.alerts.0.metric", /required/],
    ["a metric naming no meter", [{ id: "a", kind: "quantity", metric: "storage", threshold: "1" }], "body.terms.alerts.0.metric", /names no meter/],
    ["a grantId naming no grant", [{ id: "a", kind: "credit_balance", grantId: "g2", threshold: "1" }], "body.terms.alerts.0.grantId", /names no grant/],
    ["a repeated id", [{ id: "a", kind: "quantity", metric: "api_calls", threshold: "1" }, { id: "a", kind: "quantity", metric: "api_calls", threshold: "2" }], "body.terms.alerts.1.id", /appears twice/],
    ["a share above 10", [{ id: "a", kind: "included_share", metric: "api_calls", threshold: "10.5" }], "body.terms.alerts.0.threshold", /at most 10/],
    ["a zero threshold", [{ id: "a", kind: "quantity", metric: "api_calls", threshold: "0" }], "body.terms.alerts.0.threshold", /greater than zero/],
    ["commitment_share without a period commitment", [{ id: "a", kind: "commitment_share", threshold: "0.5" }], "body.terms.alerts.0.kind", /scope period/],
    ["a metric on credit_balance", [{ id: "a", kind: "credit_balance", metric: "api_calls", threshold: "1" }], "body.terms.alerts.0.metric", /only allowed/],
  ];
  it.each(cases)("%s", async (_what, alerts, path, message) => {
    const res = await t.post("/v1/contracts", contractBody({ terms: { ...base, alerts } }), "writer");
    const body = expectProblem(res, 400, "validation_failed");
    expect(body.errors).toContainEqual({ path, message: expect.stringMatching(message) });
  });

  it("GET /v1/alerts: a bad filter or cursor is a 400; pages follow firing order", async () => {
    expectProblem(await t.get("/v1/alerts?kind=spend", "reader"), 400, "validation_failed");
    expectProblem(await t.get("/v1/alerts?cursor=bm9wZQ", "reader"), 400, "validation_failed");
    const all = (await t.get("/v1/alerts?limit=500", "reader")).json().data;
    expect(all.length).toBeGreaterThan(2);
    const first = (await t.get("/v1/alerts?limit=2", "reader")).json();
    const next = (await t.get(`/v1/alerts?limit=2&cursor=${first.nextCursor}`, "reader")).json();
    expect([...first.data, ...next.data].map((a: any) => a.id)).toEqual(all.slice(0, 4).map((a: any) => a.id));
  });
});
