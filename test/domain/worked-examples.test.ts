// The worked examples that must hold, figure for figure (docs/rating.md, "Worked examples"), and the words a
// customer reads on each line.
import { describe, expect, it } from "vitest";
import { lineSummary, perUnit, rate } from "./fixtures.js";

describe("worked examples", () => {
  it("annual period: platform fee billed externally, 400,000 overage calls at $0.08 → delta 32,000.00, invoice", () => {
    const r = rate({
      contract: { billingPeriod: "annual", endDate: "2026-12-31" },
      versions: [
        { terms: { platformFee: { amount: "120000.00" }, meters: [perUnit("api_calls", "0.08", { included: "1000000" })] } },
      ],
      usage: { api_calls: "1400000" },
      alreadyBilled: "120000.00",
    });
    expect(r.period).toEqual({ start: "2026-01-01T00:00:00.000Z", end: "2027-01-01T00:00:00.000Z" });
    expect(lineSummary(r)).toEqual(["platform_fee 120000.00", "usage api_calls 32000.00"]);
    const usage = r.lines[1];
    expect(usage).toMatchObject({ usage: "1400000", included: "1000000", billable: "400000", unitPrice: "0.08", fraction: "1" });
    expect(r.lines.map((l) => l.description)).toEqual([
      "Platform fee 120,000.00 (v1, Jan 1–Dec 31, 2026)",
      "api_calls: 1,400,000 used − 1,000,000 included = 400,000 billable; 400,000 × 0.08 = 32,000.00 (v1, Jan 1–Dec 31, 2026)",
    ]);
    expect(r.total).toBe("152000.00");
    expect(r.alreadyBilled).toBe("120000.00");
    expect(r.delta).toBe("32000.00");
    expect(r.action).toBe("invoice");
    expect(r.exceptions).toEqual([]);
  });

  it("quarterly $20,000 minimum commitment, usage charges $18,000 → shortfall 2,000.00, total 20,000.00", () => {
    const r = rate({
      contract: { billingPeriod: "quarterly" },
      versions: [{ terms: { commitment: { amount: "20000.00" }, meters: [perUnit("api_calls", "0.01")] } }],
      usage: { api_calls: "1800000" },
    });
    expect(r.period).toEqual({ start: "2026-01-01T00:00:00.000Z", end: "2026-04-01T00:00:00.000Z" });
    expect(lineSummary(r)).toEqual(["usage api_calls 18000.00", "commitment_shortfall 2000.00"]);
    expect(r.lines[1]).toMatchObject({ segment: null, commitment: "20000", usageCharges: "18000", scope: "period" });
    expect(r.lines[1]!.description).toBe("Minimum commitment 20,000.00; usage charges 18,000.00 (platform fees do not count); shortfall 2,000.00");
    expect(r.total).toBe("20000.00");
    expect(r.action).toBe("invoice");
  });

  describe("$120,000 prepaid credits", () => {
    const grant = { id: "grant-2026", amount: "120000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" };
    const versions = [{ terms: { meters: [perUnit("api_calls", "0.01")], prepaidCredits: [grant] } }];

    it("January usage $8,000 → credit_applied −8,000.00, total 0.00, action invoice (amount due 0.00)", () => {
      const r = rate({ versions, usage: { api_calls: "800000" } });
      expect(lineSummary(r)).toEqual(["usage api_calls 8000.00", "credit_applied grant-2026 -8000.00"]);
      expect(r.total).toBe("0.00");
      expect(r.delta).toBe("0.00");
      expect(r.action).toBe("invoice");
      // The remaining balance 112,000.00 after issue, on the document itself.
      expect(r.creditsApplied).toEqual([{ grantId: "grant-2026", amount: "8000.00", balanceAfter: "112000.00" }]);
      expect(r.lines[1]).toMatchObject({
        available: "120000.00",
        balanceAfter: "112000.00",
        description: "Prepaid credit grant-2026 (expires 2027-01-01T00:00:00.000Z): 120,000.00 available, 8,000.00 applied, 112,000.00 left",
      });
    });

    it("balance 112,000.00 after issue: February sees 112,000.00 available", () => {
      const r = rate({
        versions,
        period: "2026-02-01T00:00:00Z",
        usage: { api_calls: "100" },
        creditBalances: [{ grantId: "grant-2026", available: "112000.00" }],
      });
      const credit = r.lines.find((l) => l.kind === "credit_applied");
      expect(credit).toMatchObject({ available: "112000.00", amount: "-1.00" });
    });

    it("a late $1,200 of January usage → usage 9,200.00, credit_applied −9,200.00, total 0.00, delta 0.00, invoice", () => {
      const r = rate({
        versions,
        usage: { api_calls: "920000" },
        alreadyBilled: "0.00",
        previousCreditsApplied: [{ grantId: "grant-2026", amount: "8000.00" }],
      });
      expect(lineSummary(r)).toEqual(["usage api_calls 9200.00", "credit_applied grant-2026 -9200.00"]);
      expect(r.total).toBe("0.00");
      expect(r.delta).toBe("0.00");
      expect(r.action).toBe("invoice");
      // The balance excludes January's own earlier use (superseded): 120,000.00 − 9,200.00.
      expect(r.creditsApplied).toEqual([{ grantId: "grant-2026", amount: "9200.00", balanceAfter: "110800.00" }]);
    });

    it("balance 110,800.00 after that issue; re-running January unchanged → action none", () => {
      const feb = rate({
        versions,
        period: "2026-02-01T00:00:00Z",
        usage: { api_calls: "100" },
        creditBalances: [{ grantId: "grant-2026", available: "110800.00" }],
      });
      expect(feb.lines.find((l) => l.kind === "credit_applied")?.available).toBe("110800.00");
      const again = rate({
        versions,
        usage: { api_calls: "920000" },
        previousCreditsApplied: [{ grantId: "grant-2026", amount: "9200.00" }],
      });
      expect(again.action).toBe("none");
    });
  });
});
