// The revenue tie-outs of DESIGN.md §7.2 as a property over random contracts, grants, usage and issued
// documents, through HTTP on a real PostgreSQL: quarterly contracts with a platform fee, a meter (included
// units, a discount), a prepaid grant and usage in some months; some quarters issued. For every report:
//  - closing = opening + additions − recognized − expired in every row, and each opening the previous closing;
//  - the months of a finalized quarter add up to its document's lines (fees; usage with discounts and caps;
//    shortfall) to the cent;
//  - after the last finalized quarter (all earlier ones finalized), the grant's closing balance is its amount
//    less the credits the documents applied: the balance the engine uses for the next quarter (rule 10).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/domain/index.js";
import { useTestApp } from "../helpers/app.js";
import { events, uniqueId } from "../helpers/factories.js";

const t = useTestApp();
const RUNS = Number(process.env.REVENUE_PROPERTY_RUNS ?? 25);
const QUARTERS = ["2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z"];
const MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"];

const cents = (lo: number, hi: number) => fc.integer({ min: lo, max: hi }).map((n) => (n / 100).toFixed(2));

const caseArb = fc.record({
  platformFee: cents(0, 500_000),
  unitPrice: fc.constantFrom("0.01", "0.0333", "0.125", "1"),
  included: fc.constantFrom("0", "100", "1000"),
  discountPercent: fc.constantFrom("0", "5", "12.5"),
  grant: cents(0, 300_000),
  usage: fc.array(fc.integer({ min: 0, max: 50_000 }), { minLength: 9, maxLength: 9 }),
  issued: fc.integer({ min: 0, max: 3 }),
});

describe("revenue tie-outs over random contracts", () => {
  it("rollforward identities, finalized quarters adding up to their documents, and the grant's balance", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const customer = uniqueId("rev-prop");
        const contract = await t.createContract({
          customerId: customer, name: "Property", currency: "USD", billingPeriod: "quarterly", startDate: "2026-01-01", endDate: "2026-12-31",
          terms: {
            ...(c.platformFee === "0.00" ? {} : { platformFee: { amount: c.platformFee } }),
            meters: [{ metric: "api_calls", included: c.included, pricing: { model: "per_unit", unitPrice: c.unitPrice }, discountPercent: c.discountPercent }],
            prepaidCredits: c.grant === "0.00" ? [] : [{ id: "g", amount: c.grant, grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
          },
        });
        for (const [i, q] of c.usage.entries()) if (q > 0) await t.ingest(events(customer, "api_calls", String(q), `${MONTHS[i]}-10T00:00:00Z`));
        const documents: any[] = [];
        for (const start of QUARTERS.slice(0, c.issued)) {
          const calc = await t.preview(contract.id, start);
          await t.approveAll(calc);
          const res = await t.issue(contract.id, calc.id);
          if (res.statusCode === 409 && res.json().code === "nothing_to_issue") return; // nothing billed: not this property's case
          expect(res.statusCode, res.body).toBe(201);
          documents.push(res.json());
        }
        const report = (await t.get(`/v1/contracts/${contract.id}/revenue?from=2026-01&to=2026-09`, "reader")).json();
        const months = report.months as any[];

        // Rollforward identities.
        let previous: Decimal | null = null;
        for (const m of months)
          for (const r of m.credits) {
            const [o, a, rec, e, cl] = [r.opening, r.additions, r.recognized, r.expired, r.closing].map((x: string) => new Decimal(x));
            expect(o!.plus(a!).minus(rec!).minus(e!).eq(cl!)).toBe(true);
            if (previous !== null) expect(o!.eq(previous)).toBe(true);
            previous = cl!;
          }

        // A finalized quarter's months add up to its document's lines.
        documents.forEach((doc, q) => {
          const three = months.slice(q * 3, q * 3 + 3);
          expect(three.every((m) => m.basis === "finalized")).toBe(true);
          const lines = (kinds: string[]) => doc.lines.filter((l: any) => kinds.includes(l.kind)).reduce((s: Decimal, l: any) => s.plus(l.amount), new Decimal(0));
          const sumOf = (k: string) => three.reduce((s: Decimal, m: any) => s.plus(m.recognized[k]), new Decimal(0));
          expect(sumOf("platformFee").toFixed(2)).toBe(lines(["platform_fee"]).toFixed(2));
          expect(sumOf("usage").toFixed(2)).toBe(lines(["usage", "contract_discount", "contract_cap"]).toFixed(2));
          expect(sumOf("commitment").toFixed(2)).toBe(lines(["commitment_shortfall"]).toFixed(2));
        });

        // The tie-out after the last finalized quarter.
        if (c.grant !== "0.00" && documents.length > 0) {
          const used = documents.reduce((s, d) => s.plus(d.creditsApplied.find((x: any) => x.grantId === "g")?.amount ?? 0), new Decimal(0));
          const last = months[documents.length * 3 - 1];
          expect(last.credits[0].closing).toBe(new Decimal(c.grant).minus(used).toFixed(2));
        }
      }),
      { numRuns: RUNS },
    );
  }, 300_000);
});
