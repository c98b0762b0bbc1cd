// Inputs that pass schema validation but are extreme or unusual: money at the numeric(20,6) limit, years
// outside any billing horizon, text PostgreSQL cannot store, and a few odd-but-valid requests whose answers
// are pinned down. Every one goes through the real HTTP stack on a real PostgreSQL; a 5xx is a bug.
import { describe, expect, it } from "vitest";
import { isUnstorableValue } from "../../src/db/errors.js";
import { TEST_NOW, auth, useTestApp } from "../helpers/app.js";
import { contractBody, meter, uniqueId } from "../helpers/factories.js";

const t = useTestApp();

function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json: () => any; body: string }, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
  expect(res.json().code).toBe(code);
  return res.json();
}

/** The instant a day before the test clock: inside the usage window and inside a 2026 contract. */
const recent = () => new Date(Date.parse(TEST_NOW) - 86_400_000).toISOString();
const monthStartOf = (iso: string) => `${iso.slice(0, 7)}-01T00:00:00Z`;

async function calculationsOf(contractId: string): Promise<number> {
  const r = await t.db.pool.query("SELECT count(*)::int AS n FROM calculations WHERE contract_id = $1::uuid", [contractId]);
  return r.rows[0].n;
}

describe("money past numeric(20,6): a 409 naming the amounts, nothing stored", () => {
  it("a quantity near 10^29 at a 14-digit unit price: the preview is refused, no calculation or exception is stored", async () => {
    const cust = uniqueId("edge");
    const c = await t.createContract(contractBody({ customerId: cust, endDate: null, terms: { meters: [meter("api_calls", "99999999999999.999999999999")] } }));
    const at = recent();
    await t.ingest([{ eventId: "huge", customerId: cust, metric: "api_calls", quantity: "99999999999999999999999999999.999999999", timestamp: at }]);
    const res = await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: monthStartOf(at) }, "writer");
    const problem = expectProblem(res, 409, "conflict");
    expect(problem.detail).toMatch(/largest amount/);
    expect(problem.limit).toBe("99999999999999.99");
    expect(problem.amounts.map((a: { what: string }) => a.what)).toEqual(expect.arrayContaining(["lines.0 (usage api_calls)", "total", "delta"]));
    expect(await calculationsOf(c.id)).toBe(0);
    const audit = await t.get(`/v1/audit?entityId=${c.id}`, "reader");
    expect(audit.json().data.map((e: { action: string }) => e.action)).toEqual(["contract.created"]);
  });

  it("the same usage under a meter cap rates fine (the cap keeps the line storable)", async () => {
    const cust = uniqueId("edge");
    const c = await t.createContract(contractBody({
      customerId: cust,
      endDate: null,
      terms: { meters: [{ ...meter("api_calls", "99999999999999.999999999999"), cap: { amount: "1000.00" } }] },
    }));
    const at = recent();
    await t.ingest([{ eventId: "huge", customerId: cust, metric: "api_calls", quantity: "99999999999999999999999999999.999999999", timestamp: at }]);
    const res = await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: monthStartOf(at) }, "writer");
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().total).toBe("1000.00");
  });

  it("a capped line keeps the prorated cap's every digit however large the uncapped charge (no precision spent on it)", async () => {
    const cust = uniqueId("edge");
    const at = recent();
    const month = monthStartOf(at);
    const c = await t.createContract(contractBody({
      customerId: cust,
      startDate: "2026-01-01",
      endDate: null,
      terms: { meters: [{ ...meter("api_calls", "99999999999999.999999999999"), cap: { amount: "1000.01" } }] },
    }));
    // A ramp a third of the way into the month: the first segment's cap is 1000.01 × its fraction.
    const monthMs = Date.parse(month);
    const nextMonth = new Date(Date.UTC(new Date(monthMs).getUTCFullYear(), new Date(monthMs).getUTCMonth() + 1, 1)).getTime();
    const cut = new Date(monthMs + Math.floor((nextMonth - monthMs) / 3 / 86_400_000) * 86_400_000).toISOString();
    const amend = await t.post(`/v1/contracts/${c.id}/amendments`, { effectiveFrom: cut, kind: "ramp", reason: "ramp", terms: { meters: [meter("api_calls", "0")] } }, "writer");
    expect(amend.statusCode, amend.body).toBe(201);
    await t.ingest([{ eventId: "huge", customerId: cust, metric: "api_calls", quantity: "99999999999999999999999999999.999999999", timestamp: month }]);
    const res = await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: month }, "writer");
    expect(res.statusCode, res.body).toBe(201);
    const line = res.json().lines[0];
    expect(line.capped).not.toBe("0");
    expect(line.unroundedAmount).toBe(line.cap);
  });

  it("a platform fee plus a commitment, each at the limit, total more than a document can hold → 409", async () => {
    const c = await t.createContract(contractBody({
      terms: { meters: [meter("api_calls", "1")], platformFee: { amount: "99999999999999.99" }, commitment: { amount: "99999999999999.99" } },
    }));
    const res = await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: "2026-01-01T00:00:00Z" }, "writer");
    const problem = expectProblem(res, 409, "conflict");
    expect(problem.amounts).toEqual(expect.arrayContaining([{ what: "total", amount: "199999999999999.98" }]));
    expect(await calculationsOf(c.id)).toBe(0);
  });

  it("JPY: the limit is in whole yen", async () => {
    const c = await t.createContract(contractBody({
      currency: "JPY",
      terms: { meters: [meter("api_calls", "1")], platformFee: { amount: "99999999999999" }, commitment: { amount: "1" } },
    }));
    const problem = expectProblem(await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: "2026-01-01T00:00:00Z" }, "writer"), 409, "conflict");
    expect(problem.limit).toBe("99999999999999");
  });

  it("external billings that would add up past the limit: the one crossing it is refused with 409, the period still previews", async () => {
    const c = await t.createContract(contractBody());
    const billing = (reference: string, amount: string) =>
      t.post(`/v1/contracts/${c.id}/external-billings`, { periodStart: "2026-02-01T00:00:00Z", periodEnd: "2026-03-01T00:00:00Z", amount, reference }, "writer");
    expect((await billing("a", "99999999999999.99")).statusCode).toBe(201);
    const problem = expectProblem(await billing("b", "0.01"), 409, "conflict");
    expect(problem.alreadyBilled).toBe("99999999999999.99");
    // The refused billing stored nothing: the first one alone is what the period has.
    const calc = await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: "2026-02-01T00:00:00Z" }, "writer");
    expect(calc.statusCode, calc.body).toBe(201);
    expect(calc.json().alreadyBilled).toBe("99999999999999.99");
    // An amount of zero is a valid record (e.g. a waived fee).
    expect((await billing("zero", "0")).statusCode).toBe(201);
  });

  it("numeric overflow, date/time out of range and unstorable text from PostgreSQL are recognised as the caller's input (→ 400)", () => {
    const pgError = (code: string) => Object.assign(new Error("numeric field overflow"), { code });
    const prismaError = (code: string) => ({ code: "P2010", meta: { driverAdapterError: { cause: { originalCode: code } } } });
    for (const code of ["22003", "22008", "22007", "22021", "22P05"]) {
      expect(isUnstorableValue(pgError(code))).toBe(true);
      expect(isUnstorableValue(prismaError(code))).toBe(true);
    }
    expect(isUnstorableValue(pgError("23505"))).toBe(false);
  });
});

describe("years outside 1970..2199 → 400 validation_failed (PostgreSQL has no year 0, JavaScript reads 0050 as 1950)", () => {
  it.each([
    ["startDate 0000-01-01", { startDate: "0000-01-01", endDate: "0001-01-01" }, "body.startDate"],
    ["startDate 0050-03-01 (was silently 1950)", { startDate: "0050-03-01", endDate: null }, "body.startDate"],
    ["endDate 9999-12-31 (use null for no end)", { endDate: "9999-12-31" }, "body.endDate"],
    ["signedAt 0000", { signedAt: "0000-01-01T00:00:00Z" }, "body.signedAt"],
  ])("%s", async (_label, over, path) => {
    const problem = expectProblem(await t.post("/v1/contracts", contractBody(over), "writer"), 400, "validation_failed");
    expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  it("an evergreen contract: usage-summary at 9999-12-31 and a preview of period 9999-12 are 400s, not 500s", async () => {
    const c = await t.createContract(contractBody({ endDate: null }));
    const summary = expectProblem(await t.get(`/v1/contracts/${c.id}/usage-summary?at=9999-12-31T23:59:59Z`, "reader"), 400, "validation_failed");
    expect(summary.errors[0].path).toBe("querystring.at");
    const preview = expectProblem(await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: "9999-12-01T00:00:00Z" }, "writer"), 400, "validation_failed");
    expect(preview.errors[0].path).toBe("body.periodStart");
    // Prepaid credits may still say "never expires" with 9999-12-31: grant instants are never stored as timestamps.
    const grant = await t.post("/v1/contracts", contractBody({
      terms: { meters: [meter("api_calls", "1")], prepaidCredits: [{ id: "forever", amount: "10.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "9999-12-31T23:59:59Z" }] },
    }), "writer");
    expect(grant.statusCode, grant.body).toBe(201);
  });
});

describe("text PostgreSQL cannot store (NUL, unpaired surrogates) → 400 naming each field", () => {
  it("contract fields, terms and query strings", async () => {
    const create = expectProblem(await t.post("/v1/contracts", contractBody({ customerId: "a\u0000b", name: "x\u0000" }), "writer"), 400, "validation_failed");
    expect(create.errors.map((e: { path: string }) => e.path).sort()).toEqual(["body.customerId", "body.name"]);
    const terms = expectProblem(await t.post("/v1/contracts", contractBody({
      terms: { meters: [{ ...meter("api_calls", "1"), unit: "\u0000" }], approvalOwner: "ops\u0000", prepaidCredits: [{ id: "\u0000", amount: "1.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }] },
    }), "writer"), 400, "validation_failed");
    expect(terms.errors.map((e: { path: string }) => e.path).sort()).toEqual(["body.terms.approvalOwner", "body.terms.meters.0.unit", "body.terms.prepaidCredits.0.id"]);
    // An unpaired surrogate would be stored as U+FFFD: "x\ud800" and "x\udc00" would become one customer.
    expectProblem(await t.post("/v1/contracts", contractBody({ customerId: "x\ud800" }), "writer"), 400, "validation_failed");
    expectProblem(await t.get("/v1/contracts?customerId=%00", "reader"), 400, "validation_failed");
    expectProblem(await t.get("/v1/audit?entityId=a%00", "reader"), 400, "validation_failed");
  });

  it("amendment reason, external billing reference, decision note, Idempotency-Key", async () => {
    const c = await t.createContract(contractBody({ terms: { meters: [meter("api_calls", "1")], platformFee: { amount: "10.00" }, materialityThreshold: "1.00" } }));
    expectProblem(await t.post(`/v1/contracts/${c.id}/amendments`, { effectiveFrom: "2026-06-01T00:00:00Z", reason: "r\u0000", terms: { meters: [] } }, "writer"), 400, "validation_failed");
    expectProblem(await t.post(`/v1/contracts/${c.id}/external-billings`, { periodStart: "2026-01-01T00:00:00Z", periodEnd: "2026-02-01T00:00:00Z", amount: "1.00", reference: "r\u0000" }, "writer"), 400, "validation_failed");
    const calc = (await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: "2026-01-01T00:00:00Z" }, "writer")).json();
    const materiality = calc.exceptions.find((e: { kind: string }) => e.kind === "materiality");
    expectProblem(await t.post(`/v1/exceptions/${materiality.id}/resolve`, { decision: "approve", note: "ok\u0000" }, "approver"), 400, "validation_failed");
    const key = expectProblem(
      await t.issue(c.id, calc.id, "k\u0000"),
      400,
      "validation_failed",
    );
    expect(key.errors[0].path).toBe("headers.idempotency-key");
    // Nothing was decided or issued by the refused requests.
    expect((await t.get(`/v1/exceptions/${materiality.id}`, "reader")).json().status).toBe("open");
    expect((await t.get(`/v1/documents?contractId=${c.id}`, "reader")).json().data).toEqual([]);
  });

  it("usage: unpaired surrogates in ids or properties reject the batch (all or nothing)", async () => {
    const cust = uniqueId("edge");
    const ts = recent();
    const res = await t.post("/v1/usage", {
      events: [
        { eventId: "ok", customerId: cust, metric: "api_calls", quantity: "1", timestamp: ts },
        { eventId: "a\ud800", customerId: cust, metric: "api_calls", quantity: "1", timestamp: ts },
        { eventId: "b", customerId: "x\udc00", metric: "api_calls", quantity: "1", timestamp: ts },
        { eventId: "c", customerId: cust, metric: "api_calls", quantity: "1", timestamp: ts, properties: { note: "\udfff" } },
      ],
    }, "writer");
    const problem = expectProblem(res, 400, "validation_failed");
    expect(problem.errors.map((e: { path: string }) => e.path)).toEqual(["body.events.1.eventId", "body.events.2.customerId", "body.events.3.properties"]);
    const stored = await t.db.pool.query("SELECT count(*)::int AS n FROM usage_events WHERE customer_id = $1", [cust]);
    expect(stored.rows[0].n).toBe(0);
    // Paired surrogates (emoji) are ordinary text.
    await t.ingest([{ eventId: "😀-1", customerId: `${cust}-😀`, metric: "api_calls", quantity: "1", timestamp: ts, properties: { note: "🚀" } }]);
  });
});

describe("odd but valid requests keep their answers", () => {
  it("a one-day term (endDate = startDate) rates its single clipped period", async () => {
    const c = await t.createContract(contractBody({ startDate: "2026-01-01", endDate: "2026-01-01", terms: { meters: [meter("api_calls", "1")], platformFee: { amount: "3100.00" } } }));
    expect(c.termEnd).toBe("2026-01-02T00:00:00.000Z");
    const calc = await t.post(`/v1/contracts/${c.id}/true-ups/preview`, {}, "writer");
    expect(calc.statusCode, calc.body).toBe(201);
    expect(calc.json().period).toEqual({ start: "2026-01-01T00:00:00.000Z", end: "2026-01-02T00:00:00.000Z" });
    expect(calc.json().total).toBe("100.00"); // 3,100.00 × 1/31
  });

  it("JPY with a 12-decimal unit price rounds each line to whole yen", async () => {
    const cust = uniqueId("edge");
    const c = await t.createContract(contractBody({ customerId: cust, currency: "JPY", endDate: null, terms: { meters: [meter("api_calls", "0.000000000001")] } }));
    const at = recent();
    await t.ingest([{ eventId: "jpy", customerId: cust, metric: "api_calls", quantity: "1500000000000", timestamp: at }]);
    const calc = await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: monthStartOf(at) }, "writer");
    expect(calc.statusCode, calc.body).toBe(201);
    expect(calc.json().lines[0].amount).toBe("2"); // 1.5 half_up
  });

  it("valid UUIDs that do not exist are 404 everywhere", async () => {
    const id = "00000000-0000-4000-8000-000000000000";
    for (const url of [`/v1/contracts/${id}`, `/v1/calculations/${id}`, `/v1/documents/${id}`, `/v1/documents/${id}/backup.csv`, `/v1/exceptions/${id}`, `/v1/contracts/${id}/usage-summary`])
      expectProblem(await t.get(url, "reader"), 404, "not_found");
    expectProblem(await t.post(`/v1/contracts/${id}/true-ups/preview`, {}, "writer"), 404, "not_found");
    expectProblem(await t.post(`/v1/exceptions/${id}/resolve`, { decision: "approve", note: "n" }, "approver"), 404, "not_found");
  });

  it("lists: limit=500, repeated parameters, cursors that decode to garbage", async () => {
    expect((await t.get("/v1/contracts?limit=500", "reader")).statusCode).toBe(200);
    expectProblem(await t.get("/v1/contracts?limit=1&limit=2", "reader"), 400, "validation_failed");
    expectProblem(await t.get("/v1/exceptions?status=open&status=approved", "reader"), 400, "validation_failed");
    for (const list of ["contracts", "exceptions", "documents", "audit"])
      expectProblem(await t.get(`/v1/${list}?cursor=${Buffer.from("garbage\u0001").toString("base64url")}`, "reader"), 400, "validation_failed");
  });

  it("HEAD is answered like GET, OPTIONS is a 405 problem, a JSON body labelled latin1 is still read as JSON", async () => {
    expect((await t.app.inject({ method: "HEAD", url: "/v1/contracts", headers: auth("reader") })).statusCode).toBe(200);
    const options = expectProblem(await t.app.inject({ method: "OPTIONS", url: "/v1/contracts", headers: auth("reader") }), 405, "method_not_allowed");
    expect(options.detail).toMatch(/GET, HEAD, POST/);
    const res = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: JSON.stringify(contractBody()),
      headers: { ...auth("writer"), "content-type": "application/json; charset=latin1" },
    });
    expect(res.statusCode, res.body).toBe(201);
  });

  it("two approvers deciding one exception at once: one 200, the others 409, one audit entry", async () => {
    const c = await t.createContract(contractBody({ terms: { meters: [meter("api_calls", "1")], platformFee: { amount: "10.00" }, materialityThreshold: "1.00" } }));
    const calc = (await t.post(`/v1/contracts/${c.id}/true-ups/preview`, { periodStart: "2026-01-01T00:00:00Z" }, "writer")).json();
    const ex = calc.exceptions.find((e: { kind: string }) => e.kind === "materiality");
    const results = await Promise.all(Array.from({ length: 6 }, () => t.post(`/v1/exceptions/${ex.id}/resolve`, { decision: "approve", note: "ok" }, "approver")));
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    const audit = (await t.get(`/v1/audit?entityId=${ex.id}`, "reader")).json();
    expect(audit.data.filter((e: { action: string }) => e.action === "exception.approved")).toHaveLength(1);
  });
});

describe("list limits", () => {
  it("accepts only plain whole numbers from 1 to 500", async () => {
    for (const ok of ["1", "50", "500"]) expect((await t.get(`/v1/contracts?limit=${ok}`)).statusCode, ok).toBe(200);
    for (const bad of ["0", "501", "0x10", "1e2", "-1", "2.5", "", "ten"]) {
      const res = await t.get(`/v1/documents?limit=${bad}`);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().code).toBe("validation_failed");
    }
  });
});
