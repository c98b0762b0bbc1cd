// What-if: POST /v1/contracts/{id}/simulations, through HTTP on a real PostgreSQL, against figures worked by
// hand. The test clock is 2026-11-15T12:00:00Z, so the default period is October 2026.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { expectProblem, useTestApp } from "../helpers/app.js";
import { contractBody, events, uniqueId } from "../helpers/factories.js";

const t = useTestApp();
const { post } = t.as("writer");

const OCTOBER = { start: "2026-10-01T00:00:00.000Z", end: "2026-11-01T00:00:00.000Z" };
const proposedMeter = { metric: "api_calls", included: "50000", pricing: { model: "per_unit", unitPrice: "0.05" } };

/** A monthly 2026 contract: api_calls, 100,000 included at 0.08; October's usage 150,000 calls. */
async function octoberContract(over: Record<string, unknown> = {}) {
  const customerId = uniqueId("sim");
  const contract = await t.createContract(
    contractBody({ customerId, terms: { meters: [{ metric: "api_calls", included: "100000", pricing: { model: "per_unit", unitPrice: "0.08" } }] }, ...over }),
  );
  await t.ingest(events(customerId, "api_calls", "150000", "2026-10-12T09:00:00Z", 3));
  return contract;
}

const counts = async () => {
  const n = async (table: string) => Number((await t.db.pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  return { calculations: await n("calculations"), exceptions: await n("exceptions"), audit: await n("audit_log"), documents: await n("documents") };
};

const paths = (res: { json(): any }) => (res.json().errors as { path: string }[]).map((e) => e.path);

describe("POST /v1/contracts/{id}/simulations", () => {
  it("rates the last closed period with the current and the proposed terms, and stores nothing", async () => {
    const contract = await octoberContract();
    const before = await counts();
    const res = await post(`/v1/contracts/${contract.id}/simulations`, { terms: { meters: [proposedMeter] } });
    expect(res.statusCode, res.body).toBe(200);
    const s = res.json();
    expect(s.period).toEqual(OCTOBER);
    // Current: (150,000 − 100,000) × 0.08 = 4,000.00. Proposed: (150,000 − 50,000) × 0.05 = 5,000.00.
    expect(s.current).toMatchObject({ total: "4000.00", alreadyBilled: "0.00", delta: "4000.00", action: "invoice", periodClosed: true, currency: "USD" });
    expect(s.proposed).toMatchObject({ total: "5000.00", delta: "5000.00", action: "invoice", periodClosed: true });
    expect(s.current.lines).toEqual([expect.objectContaining({ kind: "usage", meterId: "api_calls", usage: "150000", billable: "50000", amount: "4000.00" })]);
    expect(s.proposed.lines).toEqual([expect.objectContaining({ kind: "usage", meterId: "api_calls", usage: "150000", billable: "100000", amount: "5000.00" })]);
    // The proposal is one version over the whole period, numbered after the contract's.
    expect(s.proposed.segments).toEqual([{ from: OCTOBER.start, to: OCTOBER.end, version: 2, fraction: "1" }]);
    expect(s.difference).toEqual({ total: "1000.00", perMeter: [{ meterId: "api_calls", current: "4000.00", proposed: "5000.00", difference: "1000.00" }] });
    expect(s).not.toHaveProperty("id");
    expect(s.current).not.toHaveProperty("inputsHash");
    expect(await counts()).toEqual(before);
  });

  it("a commitment and a prepaid credit in the proposed terms, and exceptions reported but not raised", async () => {
    const contract = await octoberContract();
    const before = await counts();
    const res = await post(`/v1/contracts/${contract.id}/simulations`, {
      periodStart: "2026-10-01T00:00:00Z",
      terms: {
        meters: [proposedMeter],
        commitment: { amount: "8000.00" },
        prepaidCredits: [{ id: "g-2026", amount: "1500.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
        materialityThreshold: "1000.00",
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const s = res.json();
    // Usage 5,000.00 below the 8,000.00 commitment: a 3,000.00 shortfall; the grant pays 1,500.00 of the 8,000.00.
    expect(s.proposed.lines.map((l: any) => [l.kind, l.amount])).toEqual([
      ["usage", "5000.00"],
      ["commitment_shortfall", "3000.00"],
      ["credit_applied", "-1500.00"],
    ]);
    expect(s.proposed).toMatchObject({ total: "6500.00", delta: "6500.00", creditsApplied: [{ grantId: "g-2026", amount: "1500.00", balanceAfter: "0.00" }] });
    expect(s.current.total).toBe("4000.00");
    expect(s.difference).toEqual({ total: "2500.00", perMeter: [{ meterId: "api_calls", current: "4000.00", proposed: "5000.00", difference: "1000.00" }] });
    // A delta at or above the proposed materiality threshold: found, shown, and neither stored nor routed.
    expect(s.proposed.exceptions).toEqual([expect.objectContaining({ kind: "materiality", blocking: true })]);
    expect(s.current.exceptions).toEqual([]);
    expect(await counts()).toEqual(before);
    const audit = await t.get("/v1/audit?limit=500", "admin");
    expect(audit.statusCode, audit.body).toBe(200);
    expect(JSON.stringify(audit.json())).not.toContain("simulat");
  });

  it("a named period with a mid-period amendment: current has two segments, proposed one; meters of either side", async () => {
    const contract = await octoberContract();
    const amend = await post(`/v1/contracts/${contract.id}/amendments`, {
      effectiveFrom: "2026-06-16T00:00:00Z",
      reason: "half the month at a lower price",
      terms: { meters: [{ metric: "api_calls", included: "100000", pricing: { model: "per_unit", unitPrice: "0.04" } }] },
    });
    expect(amend.statusCode, amend.body).toBe(201);
    await t.ingest([
      ...events(contract.customerId, "api_calls", "90000", "2026-06-05T00:00:00Z"),
      ...events(contract.customerId, "api_calls", "60000", "2026-06-20T00:00:00Z"),
    ]);
    const res = await post(`/v1/contracts/${contract.id}/simulations`, {
      periodStart: "2026-06-01T00:00:00Z",
      terms: { meters: [{ id: "calls", ...proposedMeter }] },
    });
    expect(res.statusCode, res.body).toBe(200);
    const s = res.json();
    // Current: 1–16 June (15 of 30 days) 90,000 − 50,000 = 40,000 × 0.08 = 3,200.00; 16–30 June 60,000 − 50,000
    // = 10,000 × 0.04 = 400.00. Proposed, one version: 150,000 − 50,000 = 100,000 × 0.05 = 5,000.00.
    expect(s.current.segments.map((g: any) => g.version)).toEqual([1, 2]);
    expect(s.current.total).toBe("3600.00");
    expect(s.proposed.segments).toEqual([{ from: "2026-06-01T00:00:00.000Z", to: "2026-07-01T00:00:00.000Z", version: 3, fraction: "1" }]);
    expect(s.proposed.total).toBe("5000.00");
    expect(s.difference).toEqual({
      total: "1400.00",
      perMeter: [
        { meterId: "api_calls", current: "3600.00", proposed: "0.00", difference: "-3600.00" },
        { meterId: "calls", current: "0.00", proposed: "5000.00", difference: "5000.00" },
      ],
    });
  });

  it("the term's last period: a term commitment counts the earlier periods as they were rated", async () => {
    const customerId = uniqueId("sim");
    const calls = { metric: "api_calls", pricing: { model: "per_unit", unitPrice: "0.10" } };
    const contract = await t.createContract(contractBody({ customerId, terms: { meters: [calls], commitment: { amount: "20000.00", scope: "term" } } }));
    await t.ingest(events(customerId, "api_calls", "150000", "2026-10-12T09:00:00Z"));
    // December (the term's last period, no usage yet), with a 25,000.00 term commitment at twice the price: the
    // earlier periods keep their own terms (15,000.00 of usage charges in October), so the shortfall is 10,000.00.
    const res = await post(`/v1/contracts/${contract.id}/simulations`, {
      periodStart: "2026-12-01T00:00:00Z",
      terms: { meters: [{ ...calls, pricing: { model: "per_unit", unitPrice: "0.20" } }], commitment: { amount: "25000.00", scope: "term" } },
    });
    expect(res.statusCode, res.body).toBe(200);
    const s = res.json();
    expect(s.current.total).toBe("5000.00"); // 20,000.00 − 15,000.00
    expect(s.proposed.total).toBe("10000.00");
    expect(s.difference).toEqual({ total: "5000.00", perMeter: [{ meterId: "api_calls", current: "0.00", proposed: "0.00", difference: "0.00" }] });
  });

  it("a proposed meter on a property the stored contracts never split by or counted reads the events (nothing is kept for it)", async () => {
    const customerId = uniqueId("sim");
    const contract = await t.createContract(
      contractBody({ customerId, terms: { meters: [{ metric: "logins", pricing: { model: "per_unit", unitPrice: "0.01" } }] } }),
    );
    const login = (eventId: string, timestamp: string, properties: Record<string, unknown>) => ({ eventId, customerId, metric: "logins", quantity: "1", timestamp, properties });
    await t.ingest([
      login("l1", "2026-10-03T10:00:00Z", { user: "ann", region: "eu" }),
      login("l2", "2026-10-03T10:20:00Z", { user: "ann", region: "eu" }),
      login("l3", "2026-10-09T08:00:00Z", { user: "bob", region: "us" }),
      login("l4", "2026-10-20T12:00:00Z", { user: "cy", region: "eu" }),
    ]);
    const before = await counts();
    const res = await post(`/v1/contracts/${contract.id}/simulations`, {
      terms: {
        meters: [
          { id: "mau-eu", metric: "logins", aggregation: "unique_count", uniqueBy: "user", filter: { region: ["eu"] }, pricing: { model: "per_unit", unitPrice: "3.00" } },
          { id: "mau-us", metric: "logins", aggregation: "unique_count", uniqueBy: "user", filter: { region: ["us"] }, pricing: { model: "per_unit", unitPrice: "5.00" } },
        ],
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const lines = res.json().proposed.lines.filter((l: any) => l.kind === "usage").map((l: any) => [l.meterId, l.usage, l.amount]);
    expect(lines).toEqual([["mau-eu", "2", "6.00"], ["mau-us", "1", "5.00"]]); // ann, cy | bob
    expect(await counts()).toEqual(before);
    const kept = await t.db.pool.query("SELECT count(*)::int AS n FROM usage_unique_values WHERE customer_id = $1", [customerId]);
    expect(kept.rows[0].n).toBe(0);
  });

  it("400 for bad terms or a period outside the term, 404 for an unknown contract, 403 for a reader", async () => {
    const contract = await octoberContract();
    const url = `/v1/contracts/${contract.id}/simulations`;
    const badPricing = await post(url, { terms: { meters: [{ metric: "api_calls", pricing: { model: "per_unit" } }] } });
    expectProblem(badPricing, 400, "validation_failed");
    expect(paths(badPricing).every((p) => p.startsWith("body.terms.meters.0.pricing"))).toBe(true);
    // The same money rule as amendments: USD amounts have 2 decimals.
    const badMoney = await post(url, { terms: { meters: [proposedMeter], platformFee: { amount: "10.001" } } });
    expectProblem(badMoney, 400, "validation_failed");
    expect(paths(badMoney)).toEqual(["body.terms.platformFee.amount"]);
    const outside = await post(url, { periodStart: "2027-01-01T00:00:00Z", terms: { meters: [proposedMeter] } });
    expectProblem(outside, 400, "validation_failed");
    expect(paths(outside)).toEqual(["body.periodStart"]);
    const notAStart = await post(url, { periodStart: "2026-10-02T00:00:00Z", terms: { meters: [proposedMeter] } });
    expect(paths(notAStart)).toEqual(["body.periodStart"]);
    expectProblem(await post(url, { meters: [proposedMeter] }), 400, "validation_failed");
    expectProblem(await post(`/v1/contracts/${randomUUID()}/simulations`, { terms: { meters: [proposedMeter] } }), 404, "not_found");
    expectProblem(await t.post(url, { terms: { meters: [proposedMeter] } }, "reader"), 403, "forbidden");
  });

  it("no closed period yet: name the period", async () => {
    const customerId = uniqueId("sim");
    const contract = await t.createContract(contractBody({ customerId, startDate: "2026-11-01", endDate: "2027-10-31" }));
    const res = await post(`/v1/contracts/${contract.id}/simulations`, { terms: { meters: [proposedMeter] } });
    expectProblem(res, 400, "validation_failed");
    expect(paths(res)).toEqual(["body.periodStart"]);
    const named = await post(`/v1/contracts/${contract.id}/simulations`, { periodStart: "2026-11-01T00:00:00Z", terms: { meters: [proposedMeter] } });
    expect(named.statusCode, named.body).toBe(200);
    expect(named.json().current.periodClosed).toBe(false);
  });
});
