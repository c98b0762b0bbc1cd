// The README's curl walk-through, through a client generated from openapi/openapi.json: the types
// openapi-typescript makes of the committed document (test/generated/api.d.ts, `npm run openapi`) and
// openapi-fetch, against the real app listening on 127.0.0.1. This file compiling under `npm run typecheck`
// is half the test: every request below is written as the README writes it, with only the fields it needs
// (no defaulted field such as discountPercent, cap or prepaidCredits), and read without casts.
import type { AddressInfo } from "node:net";
import createClient from "openapi-fetch";
import { beforeAll, describe, expect, it } from "vitest";
import { fixedClock } from "../../src/clock.js";
import type { paths } from "../generated/api.js";
import { KEYS, useTestApp } from "../helpers/app.js";

// After the README's 2026 annual period has ended, so it can be issued; no load shedding on a busy test machine.
const t = useTestApp({}, { clock: fixedClock("2027-01-05T09:00:00Z"), maxEventLoopDelayMs: 60_000 });

let client: ReturnType<typeof createClient<paths>>;
beforeAll(async () => {
  await t.app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = t.app.server.address() as AddressInfo;
  client = createClient<paths>({ baseUrl: `http://127.0.0.1:${port}`, headers: { Authorization: `Bearer ${KEYS.admin}` } });
});

describe("a client generated from openapi/openapi.json runs the README walk-through", () => {
  it("contract, external billing, usage, preview, approvals, issue exactly once, documents, backup, audit", async () => {
    // 1. A contract: annual, $120,000 platform fee, 1,000,000 API calls included, then $0.08 per call.
    const created = await client.POST("/v1/contracts", {
      body: {
        customerId: "acme",
        accountIds: ["acme-eu"],
        name: "Acme 2026 enterprise",
        currency: "USD",
        timezone: "UTC",
        billingPeriod: "annual",
        startDate: "2026-01-01",
        endDate: "2026-12-31",
        terms: {
          platformFee: { amount: "120000.00" },
          meters: [{ metric: "api_calls", unit: "call", included: "1000000", pricing: { model: "per_unit", unitPrice: "0.08" } }],
        },
      },
    });
    expect(created.response.status, JSON.stringify(created.error)).toBe(201);
    const contract = created.data!;
    // The response side has the defaults filled in.
    const terms = contract.versions[0]!.terms;
    expect(terms.discountPercent).toBe("0");
    expect(terms.cap).toBeNull();
    expect(terms.prepaidCredits).toEqual([]);
    expect(terms.meters[0]!.included).toBe("1000000");
    const path = { id: contract.id };

    // 2. The platform fee was invoiced by the ERP.
    const billed = await client.POST("/v1/contracts/{id}/external-billings", {
      params: { path },
      body: { periodStart: "2026-01-01T00:00:00Z", periodEnd: "2027-01-01T00:00:00Z", amount: "120000.00", reference: "ERP-INV-2026-0042" },
    });
    expect(billed.response.status, JSON.stringify(billed.error)).toBe(201);
    expect(billed.data!.amount).toBe("120000.00");

    // 3. Usage, exactly once per (customerId, eventId).
    const events = [
      { eventId: "evt-0001", customerId: "acme", metric: "api_calls", quantity: "1000000", timestamp: "2026-03-15T10:00:00Z" },
      { eventId: "evt-0002", customerId: "acme-eu", metric: "api_calls", quantity: "400000", timestamp: "2026-09-01T08:30:00Z" },
    ];
    const ingested = await client.POST("/v1/usage", { body: { events } });
    expect(ingested.data, JSON.stringify(ingested.error)).toEqual({ accepted: 2, duplicates: 0, conflicts: [] });
    const again = await client.POST("/v1/usage", { body: { events } });
    expect(again.data).toEqual({ accepted: 0, duplicates: 2, conflicts: [] });

    // 4. Preview the 2026 true-up.
    const previewed = await client.POST("/v1/contracts/{id}/true-ups/preview", { params: { path }, body: { periodStart: "2026-01-01T00:00:00Z" } });
    expect(previewed.response.status, JSON.stringify(previewed.error)).toBe(201);
    const calc = previewed.data!;
    expect(calc.lines.map((l) => [l.kind, l.amount])).toEqual([
      ["platform_fee", "120000.00"],
      ["usage", "32000.00"],
    ]);
    expect([calc.total, calc.alreadyBilled, calc.delta, calc.action]).toEqual(["152000.00", "120000.00", "32000.00", "invoice"]);

    // 5. Approve what blocks it, if anything.
    const open = await client.GET("/v1/exceptions", { params: { query: { status: "open", contractId: contract.id } } });
    expect(open.response.status, JSON.stringify(open.error)).toBe(200);
    for (const exception of open.data!.data.filter((e) => e.blocking)) {
      const resolved = await client.POST("/v1/exceptions/{id}/resolve", {
        params: { path: { id: exception.id } },
        body: { decision: "approve", note: "Signed off by RevOps lead" },
      });
      expect(resolved.data?.status, JSON.stringify(resolved.error)).toBe("approved");
    }

    // 6. Issue the invoice, exactly once.
    const issue = () =>
      client.POST("/v1/contracts/{id}/true-ups", {
        params: { path, header: { "Idempotency-Key": "acme-2026-trueup" } },
        body: { calculationId: calc.id },
      });
    const issued = await issue();
    expect(issued.response.status, JSON.stringify(issued.error)).toBe(201);
    const document = issued.data!;
    expect([document.kind, document.amount, document.subtotal, document.alreadyBilled]).toEqual(["invoice", "32000.00", "152000.00", "120000.00"]);
    expect(document.number).toMatch(/^INV-\d{6}$/);
    const replayed = await issue();
    expect(replayed.response.headers.get("idempotent-replayed")).toBe("true");
    expect(replayed.data).toEqual(document);

    // The documents, the backup of one, and the audit chain.
    const documents = await client.GET("/v1/documents", { params: { query: { contractId: contract.id } } });
    expect(documents.data!.data.map((d) => d.id)).toEqual([document.id]);
    const one = await client.GET("/v1/documents/{id}", { params: { path: { id: document.id } } });
    expect(one.data).toEqual(document);
    const backup = await client.GET("/v1/documents/{id}/backup.csv", { params: { path: { id: document.id } }, parseAs: "text" });
    expect(backup.response.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(backup.data).toContain("32000.00");
    const audit = await client.GET("/v1/audit", { params: { query: { entityId: contract.id } } });
    expect(audit.data!.data.map((e) => e.action)).toContain("contract.created");
    const verified = await client.GET("/v1/audit/verify");
    expect(verified.data?.ok, JSON.stringify(verified.data ?? verified.error)).toBe(true);
    expect(verified.data?.firstBrokenId).toBeNull();
  });

  it("errors arrive as the documented problem+json", async () => {
    const missing = await client.GET("/v1/contracts/{id}", { params: { path: { id: "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b" } } });
    expect(missing.response.status).toBe(404);
    expect(missing.response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(missing.error).toMatchObject({ status: 404, code: "not_found", type: "/problems/not_found" });
    const bad = await client.POST("/v1/contracts/{id}/true-ups/preview", { params: { path: { id: "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b" } }, body: { periodStart: "not-a-date" } });
    expect(bad.response.status).toBe(400);
    expect(bad.error?.errors?.[0]?.path).toBe("body.periodStart");
  });
});
