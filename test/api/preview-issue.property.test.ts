// Preview and issue share one code path: for many randomly generated contracts, the issued document is
// exactly what was previewed (lines, subtotal, amount, credits).
import fc from "fast-check";
import { expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { events } from "../helpers/factories.js";

const t = useTestApp();

const amount = fc.integer({ min: 0, max: 500_000 }).map((c) => (c / 100).toFixed(2)); // cents → "1234.56" (test data only)
const price = fc.constantFrom("0.001", "0.08", "0.5", "1", "2.25", "12");
const qty = fc.integer({ min: 0, max: 50_000 }).map(String);
const pricing = fc.oneof(
  price.map((unitPrice) => ({ model: "per_unit", unitPrice })),
  fc.tuple(fc.integer({ min: 1, max: 5000 }), price, price).map(([b, p1, p2]) => ({
    model: "graduated",
    tiers: [{ upTo: String(b), unitPrice: p1 }, { upTo: null, unitPrice: p2, flatFee: "5.00" }],
  })),
  fc.tuple(fc.integer({ min: 1, max: 5000 }), price, price).map(([b, p1, p2]) => ({
    model: "volume",
    tiers: [{ upTo: String(b), unitPrice: p1, flatFee: "1.00" }, { upTo: null, unitPrice: p2 }],
  })),
  fc.tuple(fc.integer({ min: 1, max: 1000 }), price).map(([s, p]) => ({ model: "package", packageSize: String(s), packagePrice: p })),
);
const terms = fc.record({
  platformFee: fc.option(amount.map((a) => ({ amount: a })), { nil: undefined }),
  commitment: fc.option(amount.map((a) => ({ amount: a, scope: "period" })), { nil: undefined }),
  discountPercent: fc.constantFrom("0", "5", "12.5"),
  cap: fc.option(amount.map((a) => ({ amount: a })), { nil: null }),
  prepaidCredits: fc.constantFrom(
    [],
    [{ id: "g1", amount: "1000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2026-03-01T00:00:00Z" }],
  ),
  meters: fc.tuple(pricing, pricing, fc.constantFrom("0", "100", "2500"), fc.constantFrom("0", "10")).map(([p1, p2, inc, disc]) => [
    { metric: "m1", included: inc, discountPercent: disc, pricing: p1 },
    { metric: "m2", pricing: p2, cap: { amount: "3000.00" } },
  ]),
});

let n = 0;
it("every issued document equals its preview", async () => {
  await fc.assert(
    fc.asyncProperty(terms, qty, qty, fc.constantFrom("USD", "JPY", "EUR"), fc.boolean(), async (tm, q1, q2, currency, amend) => {
      const customerId = `prop-${++n}`;
      const fix = (t: any) =>
        currency === "JPY"
          ? JSON.parse(JSON.stringify(t).replace(/"amount":"(\d+)\.\d+"/g, '"amount":"$1"'))
          : t;
      const c = await t.createContract({
        customerId,
        name: customerId,
        currency,
        billingPeriod: "monthly",
        startDate: "2026-01-01",
        allowTrueDown: true,
        terms: fix(tm),
      });
      if (amend) {
        const r = await t.post(
          `/v1/contracts/${c.id}/amendments`,
          { effectiveFrom: "2026-01-16T00:00:00Z", reason: "mid-month change", terms: fix({ ...tm, discountPercent: "20" }) },
          "writer",
        );
        expect(r.statusCode, r.body).toBe(201);
      }
      const batch = [...events(customerId, "m1", q1, "2026-01-10T00:00:00Z"), ...events(customerId, "m2", q2, "2026-01-20T00:00:00Z")].filter((e) => e.quantity !== "0");
      if (batch.length > 0) await t.ingest(batch);
      const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
      const total = calc.lines.reduce((s: bigint, l: any) => s + BigInt(l.amount.replace(".", "")), 0n);
      expect(total).toBe(BigInt(calc.total.replace(".", "")));
      if (calc.action === "none") return;
      await t.approveAll(calc);
      const res = await t.issue(c.id, calc.id);
      expect(res.statusCode, res.body).toBe(201);
      const doc = res.json();
      expect(doc.kind).toBe(calc.action);
      expect(doc.subtotal).toBe(calc.total);
      expect(doc.alreadyBilled).toBe(calc.alreadyBilled);
      expect(doc.amount).toBe(calc.delta.replace(/^-/, ""));
      expect(doc.creditsApplied).toEqual(calc.creditsApplied.filter((x: any) => !/^0(\.0+)?$/.test(x.amount)));
      expect(doc.lines.map((l: any) => ({ kind: l.kind, meterId: l.meterId, metric: l.metric ?? undefined, amount: l.amount, ...l.explanation }))).toEqual(
        calc.lines.map((l: any) => ({ ...l, metric: l.metric ?? undefined })),
      );
    }),
    { numRuns: 30 },
  );
}, 240_000);
