// The forecast of GET /v1/contracts/{id}/usage-summary, through HTTP on a real PostgreSQL, against figures
// worked by hand. The test clock is 2026-11-15T12:00:00Z: 14.5 of November's 30 days in UTC (29/60), and
// exactly 15 of 30 for a contract at UTC+12 (its November runs 2026-10-31T12:00Z to 2026-11-30T12:00Z).
import { describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { contractBody, events, uniqueId } from "../helpers/factories.js";

const t = useTestApp();
const { get } = t.as("reader");
const { post } = t.as("writer");

/** UTC+12 all year (no daylight saving): the test clock is exactly half way through its November. */
const HALF_WAY_TZ = "Etc/GMT-12";

async function summary(contractId: string, at?: string) {
  const res = await get(`/v1/contracts/${contractId}/usage-summary${at ? `?at=${at}` : ""}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

const count = async (table: string) => Number((await t.db.pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);

describe("usage-summary forecast", () => {
  it("projects flows by the elapsed share, keeps levels at their current level, and rates the projection", async () => {
    const customerId = uniqueId("fc");
    const contract = await t.createContract(
      contractBody({
        customerId,
        timezone: HALF_WAY_TZ,
        terms: {
          meters: [
            { metric: "api_calls", included: "50000", pricing: { model: "per_unit", unitPrice: "0.10" } },
            { metric: "seats", aggregation: "max", included: "20", pricing: { model: "per_unit", unitPrice: "2" } },
            { metric: "logins", aggregation: "count", pricing: { model: "per_unit", unitPrice: "1" } },
          ],
        },
      }),
    );
    await t.ingest([
      ...events(customerId, "api_calls", "15000", "2026-11-03T10:00:00Z"),
      ...events(customerId, "api_calls", "25000", "2026-11-10T10:00:00Z", 5),
      ...events(customerId, "seats", "10", "2026-11-02T10:00:00Z"),
      ...events(customerId, "seats", "25", "2026-11-08T10:00:00Z"),
      ...events(customerId, "seats", "15", "2026-11-12T10:00:00Z"),
      ...events(customerId, "logins", "7", "2026-11-04T10:00:00Z"),
      ...events(customerId, "logins", "1", "2026-11-05T10:00:00Z"),
      ...events(customerId, "logins", "1", "2026-11-06T10:00:00Z"),
      // October (the period before): not this period's usage.
      ...events(customerId, "api_calls", "99000", "2026-10-10T10:00:00Z"),
    ]);
    const calculations = await count("calculations");
    const exceptions = await count("exceptions");
    const audit = await count("audit_log");

    const s = await summary(contract.id);
    expect(s.period).toEqual({ start: "2026-10-31T12:00:00.000Z", end: "2026-11-30T12:00:00.000Z" });
    expect(s.elapsedShare).toBe("0.5");
    expect(s.meters.map((m: any) => [m.meterId, m.used, m.projected])).toEqual([
      ["api_calls", "40000", "80000"], // 40,000 ÷ 0.5
      ["seats", "25", "25"], // the peak so far
      ["logins", "3", "6"], // 3 events ÷ 0.5
    ]);
    // (80,000 − 50,000) × 0.10 + (25 − 20) × 2 + 6 × 1 = 3,000 + 10 + 6; nothing billed yet.
    expect(s.projectedTrueUp).toBe("3016.00");
    // A preview of the same open period rates the usage so far: 0 + 10 + 3 (what the forecast is not).
    // The forecast stored nothing: no calculation, exception or audit entry.
    expect([await count("calculations"), await count("exceptions"), await count("audit_log")]).toEqual([calculations, exceptions, audit]);
    const preview = await t.preview(contract.id, "2026-10-31T12:00:00.000Z");
    expect(preview.delta).toBe("13.00");

    // `at` inside the current period answers the same forecast (it is as of now, not as of `at`).
    const atEarlier = await summary(contract.id, "2026-11-01T00:00:00Z");
    expect(atEarlier).toMatchObject({ elapsedShare: "0.5", projectedTrueUp: "3016.00" });
  });

  it("latest, unique_count and time_weighted: projected is the current level, as used says it", async () => {
    const customerId = uniqueId("fc");
    const contract = await t.createContract(
      contractBody({
        customerId,
        timezone: HALF_WAY_TZ,
        terms: {
          meters: [
            { metric: "plan_size", aggregation: "latest", pricing: { model: "per_unit", unitPrice: "1" } },
            { metric: "active_user", aggregation: "unique_count", uniqueBy: "user", pricing: { model: "per_unit", unitPrice: "1" } },
            { metric: "storage_gb", aggregation: "time_weighted", pricing: { model: "per_unit", unitPrice: "1" } },
          ],
        },
      }),
    );
    const ev = (metric: string, quantity: string, timestamp: string, properties?: Record<string, unknown>) => ({
      ...events(customerId, metric, quantity, timestamp)[0]!,
      ...(properties ? { properties } : {}),
    });
    await t.ingest([
      ev("plan_size", "5", "2026-11-02T00:00:00Z"),
      ev("plan_size", "8", "2026-11-09T00:00:00Z"),
      ev("active_user", "1", "2026-11-02T00:00:00Z", { user: "a" }),
      ev("active_user", "1", "2026-11-03T00:00:00Z", { user: "b" }),
      ev("active_user", "1", "2026-11-04T00:00:00Z", { user: "a" }),
      // 10 GB from the period's start, 40 GB from day 10: carried to the end, (10 × 10 + 40 × 20) ÷ 30 = 30.
      ev("storage_gb", "10", "2026-10-31T12:00:00Z"),
      ev("storage_gb", "40", "2026-11-10T12:00:00Z"),
    ]);
    const s = await summary(contract.id);
    expect(s.meters.map((m: any) => [m.meterId, m.used, m.projected])).toEqual([
      ["plan_size", "8", "8"],
      ["active_user", "2", "2"],
      ["storage_gb", "30", "30"],
    ]);
    expect(s.projectedTrueUp).toBe("40.00"); // 8 + 2 + 30
  });

  it("a past or future period answers without a forecast", async () => {
    const customerId = uniqueId("fc");
    const contract = await t.createContract(contractBody({ customerId }));
    await t.ingest(events(customerId, "api_calls", "500", "2026-10-10T10:00:00Z"));
    const october = await summary(contract.id, "2026-10-15T00:00:00Z");
    expect(october.meters[0]).toMatchObject({ used: "500" });
    expect(october.meters[0]).not.toHaveProperty("projected");
    expect(october).not.toHaveProperty("projectedTrueUp");
    expect(october).not.toHaveProperty("elapsedShare");
    const december = await summary(contract.id, "2026-12-10T00:00:00Z");
    expect(december.meters[0]).not.toHaveProperty("projected");
    expect(december).not.toHaveProperty("projectedTrueUp");
  });

  it("in UTC: 14.5 of 30 days elapsed, the share exact as decimals", async () => {
    const customerId = uniqueId("fc");
    const contract = await t.createContract(
      contractBody({ customerId, terms: { meters: [{ metric: "api_calls", included: "50000", pricing: { model: "per_unit", unitPrice: "0.10" } }] } }),
    );
    await t.ingest(events(customerId, "api_calls", "40000", "2026-11-10T00:00:00Z"));
    const s = await summary(contract.id);
    expect(s.elapsedShare).toBe("0.483333333"); // 29/60
    // 40,000 × 60/29 = 82,758.6206896551…, to 9 decimals; (82,758.620689655 − 50,000) × 0.10 = 3,275.8620689655.
    expect(s.meters[0].projected).toBe("82758.620689655");
    expect(s.projectedTrueUp).toBe("3275.86");
  });

  it("a mid-period amendment: usage still to come is projected into the segment it will be billed in", async () => {
    const customerId = uniqueId("fc");
    const contract = await t.createContract(
      contractBody({
        customerId,
        timezone: HALF_WAY_TZ,
        terms: { meters: [{ metric: "api_calls", included: "30000", pricing: { model: "per_unit", unitPrice: "0.10" } }] },
      }),
    );
    // From local 21 November (20 of the period's 30 days): twice the price.
    const amend = await post(`/v1/contracts/${contract.id}/amendments`, {
      effectiveFrom: "2026-11-20T12:00:00Z",
      reason: "price rise",
      terms: { meters: [{ metric: "api_calls", included: "30000", pricing: { model: "per_unit", unitPrice: "0.20" } }] },
    });
    expect(amend.statusCode, amend.body).toBe(201);
    await t.ingest(events(customerId, "api_calls", "40000", "2026-11-05T00:00:00Z"));
    const s = await summary(contract.id);
    expect(s.meters[0]).toMatchObject({ used: "40000", projected: "80000" });
    // Run rate 40,000 per 15 days. Segment 1 (20 days): 40,000 + 5 days' 13,333.333333333 = 53,333.333333333 against
    // 20,000 included (× 20/30) → 33,333.333333333 × 0.10 = 3,333.33. Segment 2 (10 days): 10 days' 26,666.666666667
    // against 10,000 (× 10/30) → 16,666.666666667 × 0.20 = 3,333.33. (Scaling each segment's usage so far instead
    // would bill 60,000 × 0.10 = 6,000.00 and nothing at the new price.)
    expect(s.projectedTrueUp).toBe("6666.66");
  });
});
