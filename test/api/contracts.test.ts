// The contracts API end to end: through the real HTTP stack (inject) on a real, freshly migrated database.
import { describe, expect, it } from "vitest";
import { useTestApp, expectProblem } from "../helpers/app.js";
import { contractBody, meter, uniqueId } from "../helpers/factories.js";

const t = useTestApp();

const baseTerms = () => ({ meters: [meter("api_calls", "0.08", "1000000", "call")] });

/** An annual 2026 contract for a customer of its own. */
const annualBody = (over: Record<string, unknown> = {}) =>
  contractBody({ customerId: uniqueId("cust"), name: "Acme 2026", billingPeriod: "annual", terms: baseTerms(), ...over });

const { post } = t.as("writer");
const { get } = t.as("reader");

async function create(over: Record<string, unknown> = {}) {
  const res = await post("/v1/contracts", annualBody(over));
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}


/** The set of paths a validation problem names. */
function errorPaths(res: { json(): any }): string[] {
  const body = res.json();
  expect(Array.isArray(body.errors)).toBe(true);
  return body.errors.map((e: { path: string }) => e.path);
}

async function auditFor(entityId: string) {
  const r = await t.db.pool.query<{ action: string; actor: string; entity_type: string; payload: any }>(
    "SELECT action, actor, entity_type, payload FROM audit_log WHERE entity_id = $1 ORDER BY audit_log.seq",
    [entityId],
  );
  return r.rows;
}

describe("POST /v1/contracts", () => {
  it("creates a contract with version 1 at local midnight of startDate in its timezone, with defaults", async () => {
    const body = annualBody({ timezone: "America/New_York", accountIds: ["sub-a", "sub-b"] });
    const res = await post("/v1/contracts", body);
    expect(res.statusCode, res.body).toBe(201);
    const c = res.json();
    expect(c).toMatchObject({
      customerId: body.customerId,
      accountIds: ["sub-a", "sub-b"],
      currency: "USD",
      timezone: "America/New_York",
      billingPeriod: "annual",
      startDate: "2026-01-01",
      endDate: "2026-12-31",
      // New York is UTC−5 in January: local midnight is 05:00Z; the term ends at local midnight of 2027-01-01.
      termStart: "2026-01-01T05:00:00.000Z",
      termEnd: "2027-01-01T05:00:00.000Z",
      roundingMode: "half_up",
      allowTrueDown: false,
    });
    expect(c.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(c.versions).toHaveLength(1);
    const v1 = c.versions[0];
    expect(v1).toMatchObject({ version: 1, kind: "original", effectiveFrom: "2026-01-01T05:00:00.000Z" });
    // Defaults of the terms are filled in and stored.
    expect(v1.terms).toMatchObject({
      discountPercent: "0",
      cap: null,
      prepaidCredits: [],
      meters: [{ metric: "api_calls", included: "1000000", discountPercent: "0", cap: null, pricing: { model: "per_unit", unitPrice: "0.08" } }],
    });

    const audit = await auditFor(c.id);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: "contract.created", actor: "writer-key", entity_type: "contract" });
    expect(audit[0]!.payload.contract.id).toBe(c.id);
  });

  it("defaults timezone to UTC and accepts an evergreen contract (endDate null)", async () => {
    const c = await create({ endDate: null, billingPeriod: "monthly", startDate: "2026-03-15" });
    expect(c).toMatchObject({ timezone: "UTC", endDate: null, termStart: "2026-03-15T00:00:00.000Z", termEnd: null });
    expect(c.versions[0].effectiveFrom).toBe("2026-03-15T00:00:00.000Z");
  });

  it("keeps decimal strings as given and honours explicit options", async () => {
    const c = await create({
      roundingMode: "half_even",
      allowTrueDown: true,
      signedAt: "2025-12-20T10:00:00Z",
      terms: {
        platformFee: { amount: "10000.00" },
        commitment: { amount: "20000.00", scope: "term" },
        meters: [
          {
            metric: "storage_gb",
            pricing: { model: "graduated", tiers: [{ upTo: "100", unitPrice: "0.5" }, { upTo: null, unitPrice: "0.000125", flatFee: "1.00" }] },
            cap: { amount: "5000.00" },
          },
        ],
        prepaidCredits: [{ id: "g1", amount: "120000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
        materialityThreshold: "25000.00",
        spikeFactor: "3",
        approvalOwner: "revops-lead",
      },
    });
    expect(c).toMatchObject({ roundingMode: "half_even", allowTrueDown: true });
    expect(c.versions[0].signedAt).toBe("2025-12-20T10:00:00.000Z");
    expect(c.versions[0].terms.meters[0].pricing.tiers[1].unitPrice).toBe("0.000125");
    expect(c.versions[0].terms.commitment).toEqual({ amount: "20000.00", scope: "term" });
  });
});

describe("GET /v1/contracts", () => {
  it("returns one contract with its versions, 404 for an unknown id and 400 for a malformed one", async () => {
    const c = await create();
    const res = await get(`/v1/contracts/${c.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(c);
    expectProblem(await get("/v1/contracts/0190a4b2-0000-7000-8000-000000000000"), 404, "not_found");
    const bad = expectProblem(await get("/v1/contracts/not-a-uuid"), 400, "validation_failed");
    expect(bad.errors.map((e: { path: string }) => e.path)).toContain("params.id");
  });

  it("pages with limit and nextCursor, oldest first, and filters by customer or account id", async () => {
    const customer = uniqueId("paged");
    const made = [];
    // Non-overlapping annual terms for the same customer (2026, 2027, 2028), one claiming an account id.
    for (const [i, year] of [2026, 2027, 2028].entries()) {
      made.push(
        await create({
          customerId: customer,
          accountIds: i === 1 ? [`${customer}-eu`] : [],
          startDate: `${year}-01-01`,
          endDate: `${year}-12-31`,
        }),
      );
    }
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(`/v1/contracts?customerId=${customer}&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json();
      expect(page.data.length).toBeLessThanOrEqual(2);
      for (const item of page.data) expect(item).not.toHaveProperty("versions");
      ids.push(...page.data.map((d: { id: string }) => d.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(2);
    expect(ids).toEqual(made.map((m) => m.id));

    const byAccount = (await get(`/v1/contracts?customerId=${customer}-eu`)).json();
    expect(byAccount.data.map((d: { id: string }) => d.id)).toEqual([made[1].id]);
    expect(byAccount.nextCursor).toBeNull();

    // Without a filter: every contract, paged.
    const all = (await get("/v1/contracts?limit=500")).json();
    expect(all.data.length).toBeGreaterThanOrEqual(3);

    // Bad limits and cursors are 400s.
    expectProblem(await get("/v1/contracts?limit=0"), 400, "validation_failed");
    expectProblem(await get("/v1/contracts?limit=501"), 400, "validation_failed");
    expectProblem(await get("/v1/contracts?cursor=garbage"), 400, "validation_failed");
    expectProblem(await get("/v1/contracts?unknown=1"), 400, "validation_failed");
  });
});

describe("POST /v1/contracts/:id/amendments", () => {
  it("adds version 2 (201) and audits it; effectiveFrom outside the term → 400", async () => {
    const c = await create();
    const res = await post(`/v1/contracts/${c.id}/amendments`, {
      effectiveFrom: "2026-07-01T00:00:00Z",
      reason: "price increase",
      terms: { meters: [{ metric: "api_calls", pricing: { model: "per_unit", unitPrice: "0.09" } }] },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ version: 2, kind: "amendment", effectiveFrom: "2026-07-01T00:00:00.000Z", reason: "price increase" });

    const ramp = await post(`/v1/contracts/${c.id}/amendments`, {
      effectiveFrom: "2026-10-01T00:00:00Z",
      kind: "ramp",
      reason: "ramp step",
      terms: baseTerms(),
    });
    expect(ramp.statusCode).toBe(201);
    expect(ramp.json()).toMatchObject({ version: 3, kind: "ramp" });

    const full = (await get(`/v1/contracts/${c.id}`)).json();
    expect(full.versions.map((v: { version: number }) => v.version)).toEqual([1, 2, 3]);

    for (const effectiveFrom of ["2025-12-31T23:59:59Z", "2027-01-01T00:00:00Z"]) {
      const out = await post(`/v1/contracts/${c.id}/amendments`, { effectiveFrom, reason: "x", terms: baseTerms() });
      expectProblem(out, 400, "validation_failed");
      expect(errorPaths(out)).toContain("body.effectiveFrom");
    }
    expect((await get(`/v1/contracts/${c.id}`)).json().versions).toHaveLength(3);

    const audit = await auditFor(c.id);
    expect(audit.map((a) => a.action)).toEqual(["contract.created", "contract.amended", "contract.amended"]);
  });

  it("404 for an unknown contract; too many decimals for the currency → 400", async () => {
    expectProblem(
      await post("/v1/contracts/0190a4b2-0000-7000-8000-000000000000/amendments", {
        effectiveFrom: "2026-07-01T00:00:00Z",
        reason: "x",
        terms: baseTerms(),
      }),
      404,
      "not_found",
    );
    const c = await create({ currency: "JPY" });
    const out = await post(`/v1/contracts/${c.id}/amendments`, {
      effectiveFrom: "2026-07-01T00:00:00Z",
      reason: "x",
      terms: { ...baseTerms(), platformFee: { amount: "100.5" } },
    });
    expectProblem(out, 400, "validation_failed");
    expect(errorPaths(out)).toEqual(["body.terms.platformFee.amount"]);
  });
});

describe("POST /v1/contracts/:id/external-billings", () => {
  it("records (201), replays the same reference and body (200, same record), conflicts on another body (409)", async () => {
    const c = await create();
    const billing = { periodStart: "2026-01-01T00:00:00Z", periodEnd: "2027-01-01T00:00:00Z", amount: "120000.00", reference: "INV-EXT-1" };
    const first = await post(`/v1/contracts/${c.id}/external-billings`, billing);
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({
      contractId: c.id,
      amount: "120000.00",
      reference: "INV-EXT-1",
      periodStart: "2026-01-01T00:00:00.000Z",
      periodEnd: "2027-01-01T00:00:00.000Z",
    });
    const again = await post(`/v1/contracts/${c.id}/external-billings`, { ...billing, amount: "120000" });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());

    const other = await post(`/v1/contracts/${c.id}/external-billings`, { ...billing, amount: "120000.01" });
    expectProblem(other, 409, "conflict");

    const rows = await t.db.pool.query("SELECT amount::text AS amount FROM external_billings WHERE contract_id = $1", [c.id]);
    expect(rows.rows).toEqual([{ amount: "120000.000000" }]);
    const audit = await auditFor(c.id);
    expect(audit.map((a) => a.action)).toEqual(["contract.created", "external_billing.recorded"]);
  });

  it("rejects a span crossing the end of its billing period, outside the term, or reversed (400)", async () => {
    const c = await create({ billingPeriod: "quarterly" });
    const url = `/v1/contracts/${c.id}/external-billings`;
    const crossing = await post(url, { periodStart: "2026-03-01T00:00:00Z", periodEnd: "2026-04-02T00:00:00Z", amount: "1.00", reference: "r1" });
    expectProblem(crossing, 400, "validation_failed");
    expect(errorPaths(crossing)).toEqual(["body.periodEnd"]);

    const outside = await post(url, { periodStart: "2025-06-01T00:00:00Z", periodEnd: "2025-07-01T00:00:00Z", amount: "1.00", reference: "r2" });
    expectProblem(outside, 400, "validation_failed");
    expect(errorPaths(outside)).toContain("body.periodStart");

    const reversed = await post(url, { periodStart: "2026-02-01T00:00:00Z", periodEnd: "2026-01-15T00:00:00Z", amount: "1.00", reference: "r3" });
    expect(errorPaths(reversed)).toContain("body.periodEnd");

    const cents = await post(url, { periodStart: "2026-01-01T00:00:00Z", periodEnd: "2026-04-01T00:00:00Z", amount: "1.001", reference: "r4" });
    expect(errorPaths(cents)).toEqual(["body.amount"]);

    const asNumber = await post(url, { periodStart: "2026-01-01T00:00:00Z", periodEnd: "2026-04-01T00:00:00Z", amount: 1, reference: "r5" });
    expect(errorPaths(asNumber)).toEqual(["body.amount"]);

    const ok = await post(url, { periodStart: "2026-01-01T00:00:00Z", periodEnd: "2026-04-01T00:00:00Z", amount: "5000.00", reference: "r6" });
    expect(ok.statusCode, ok.body).toBe(201);
    const rows = await t.db.pool.query("SELECT reference FROM external_billings WHERE contract_id = $1", [c.id]);
    expect(rows.rows).toEqual([{ reference: "r6" }]);
  });
});

describe("one active contract per customer or account id", () => {
  it("409 when the customer id or an account id is already mapped in an overlapping term; allowed otherwise", async () => {
    const customer = uniqueId("owner");
    const account = `${customer}-acct`;
    await create({ customerId: customer, accountIds: [account], startDate: "2026-01-01", endDate: "2026-12-31" });

    const sameCustomer = await post("/v1/contracts", annualBody({ customerId: customer, startDate: "2026-06-01", endDate: "2027-05-31" }));
    const p1 = expectProblem(sameCustomer, 409, "conflict");
    expect(p1.detail).toContain(customer);

    // The account id claimed as another contract's customer id, and as another's account id.
    expectProblem(await post("/v1/contracts", annualBody({ customerId: account })), 409, "conflict");
    expectProblem(await post("/v1/contracts", annualBody({ accountIds: [account] })), 409, "conflict");
    // An evergreen contract starting before the end overlaps too.
    expectProblem(await post("/v1/contracts", annualBody({ customerId: customer, startDate: "2026-12-31", endDate: null })), 409, "conflict");

    // Adjacent terms (the next year, and an evergreen one after it) are fine: terms are half-open.
    await create({ customerId: customer, accountIds: [account], startDate: "2027-01-01", endDate: "2027-12-31" });
    await create({ customerId: customer, startDate: "2028-01-01", endDate: null });

    // Nothing was written by the rejected attempts.
    const n = await t.db.pool.query("SELECT count(*)::int AS n FROM contracts WHERE customer_id = $1 OR $1 = ANY(account_ids) OR customer_id = $2", [customer, account]);
    expect(n.rows[0].n).toBe(3);
  });
});

describe("terms validation", () => {
  const cases: { name: string; over: Record<string, unknown>; paths: string[] }[] = [
    {
      name: "tiers not ascending",
      over: {
        terms: {
          meters: [
            { metric: "m", pricing: { model: "graduated", tiers: [{ upTo: "100", unitPrice: "1" }, { upTo: "50", unitPrice: "1" }, { upTo: null, unitPrice: "1" }] } },
          ],
        },
      },
      paths: ["body.terms.meters.0.pricing.tiers.1.upTo"],
    },
    {
      name: "last tier not open-ended",
      over: { terms: { meters: [{ metric: "m", pricing: { model: "volume", tiers: [{ upTo: "100", unitPrice: "1" }] } }] } },
      paths: ["body.terms.meters.0.pricing.tiers.0.upTo"],
    },
    { name: "unknown ISO 4217 currency", over: { currency: "ABC" }, paths: ["body.currency"] },
    { name: "lower-case currency", over: { currency: "usd" }, paths: ["body.currency"] },
    { name: "bad IANA timezone", over: { timezone: "Mars/Olympus" }, paths: ["body.timezone"] },
    {
      name: "decimals as JSON numbers",
      over: { terms: { platformFee: { amount: 100 }, meters: [{ metric: "m", included: 5, pricing: { model: "per_unit", unitPrice: 0.08 } }] } },
      paths: ["body.terms.platformFee.amount", "body.terms.meters.0.included", "body.terms.meters.0.pricing.unitPrice"],
    },
    {
      name: "negative prices",
      over: { terms: { meters: [{ metric: "m", pricing: { model: "per_unit", unitPrice: "-0.08" } }], cap: { amount: "-1" } } },
      paths: ["body.terms.meters.0.pricing.unitPrice", "body.terms.cap.amount"],
    },
    {
      name: "unknown fields (top level, in terms, in a meter)",
      over: { colour: "red", terms: { meters: [{ metric: "m", pricing: { model: "per_unit", unitPrice: "1" }, extra: 1 }], bonus: true } },
      paths: ["body", "body.terms", "body.terms.meters.0"],
    },
    {
      name: "too many decimals for the currency",
      over: {
        currency: "USD",
        terms: {
          platformFee: { amount: "10.001" },
          commitment: { amount: "1.5" },
          meters: [{ metric: "m", pricing: { model: "per_unit", unitPrice: "0.000125" }, cap: { amount: "3.333" } }],
        },
      },
      paths: ["body.terms.platformFee.amount", "body.terms.meters.0.cap.amount"],
    },
    { name: "JPY amounts with decimals", over: { currency: "JPY", terms: { platformFee: { amount: "100.5" }, meters: [] } }, paths: ["body.terms.platformFee.amount"] },
    { name: "missing required fields", over: { customerId: undefined, terms: {} }, paths: ["body.customerId", "body.terms.meters"] },
    { name: "endDate before startDate", over: { startDate: "2026-05-01", endDate: "2026-04-30" }, paths: ["body.endDate"] },
    { name: "impossible calendar date", over: { startDate: "2026-02-30" }, paths: ["body.startDate"] },
    { name: "wrong enum values", over: { billingPeriod: "weekly", roundingMode: "up" }, paths: ["body.billingPeriod", "body.roundingMode"] },
    {
      name: "duplicate metric and an identifier listed twice",
      over: {
        customerId: "dup-x",
        accountIds: ["dup-x"],
        terms: { meters: [{ metric: "m", pricing: { model: "per_unit", unitPrice: "1" } }, { metric: "m", pricing: { model: "per_unit", unitPrice: "1" } }] },
      },
      paths: ["body.terms.meters.1.metric"],
    },
    {
      name: "credit grant expiring before it is granted",
      over: {
        terms: { meters: [], prepaidCredits: [{ id: "g", amount: "1.00", grantedAt: "2026-02-01T00:00:00Z", expiresAt: "2026-01-01T00:00:00Z" }] },
      },
      paths: ["body.terms.prepaidCredits.0.expiresAt"],
    },
  ];

  for (const c of cases) {
    it(`rejects ${c.name}, listing every bad path`, async () => {
      const body = annualBody(c.over);
      const res = await post("/v1/contracts", JSON.parse(JSON.stringify(body)));
      const problem = expectProblem(res, 400, "validation_failed");
      const paths = errorPaths(res);
      for (const p of c.paths) expect(paths, JSON.stringify(problem.errors)).toContain(p);
      for (const e of problem.errors) expect(typeof e.message).toBe("string");
    });
  }

  it("stores nothing and audits nothing for rejected requests", async () => {
    const before = await t.db.pool.query("SELECT (SELECT count(*) FROM contracts)::int AS c, (SELECT count(*) FROM audit_log)::int AS a");
    for (const c of cases) await post("/v1/contracts", JSON.parse(JSON.stringify(annualBody(c.over))));
    const after = await t.db.pool.query("SELECT (SELECT count(*) FROM contracts)::int AS c, (SELECT count(*) FROM audit_log)::int AS a");
    expect(after.rows[0]).toEqual(before.rows[0]);
  });

  it("the audit chain stays linked across all the writes above", async () => {
    const rows = await t.db.pool.query<{ seq: string; prev_hash: string; hash: string }>(
      "SELECT seq::text AS seq, prev_hash, hash FROM audit_log ORDER BY audit_log.seq",
    );
    expect(rows.rows.length).toBeGreaterThan(0);
    rows.rows.forEach((r, i) => {
      expect(r.seq).toBe(String(i + 1));
      expect(r.prev_hash).toBe(i === 0 ? "0".repeat(64) : rows.rows[i - 1]!.hash);
    });
  });
});
