// Which periods a billing run takes and what it does with each rated one (src/domain/billing-runs.ts): pure.
import { describe, expect, it } from "vitest";
import { type PeriodHistory, itemDecision, periodsDue } from "../../src/domain/index.js";

const contract = { startDate: "2026-08-01", endDate: "2027-07-31", timezone: "UTC", billingPeriod: "monthly" as const };
const NOV_15 = Date.parse("2026-11-15T00:00:00Z");
const AUG = "2026-08-01T00:00:00.000Z";
const SEP = "2026-09-01T00:00:00.000Z";
const OCT = "2026-10-01T00:00:00.000Z";
const h = (over: Partial<PeriodHistory>): PeriodHistory => ({ documented: false, quiet: false, activitySince: false, ...over });

describe("periodsDue", () => {
  it("every ended period without a document, oldest first; the running one is not due", () => {
    expect(periodsDue(contract, NOV_15, new Map()).map((p) => p.start)).toEqual([AUG, SEP, OCT]);
  });

  it("a documented period only with activity since; a quiet one only with activity since", () => {
    const history = new Map([
      [AUG, h({ documented: true })],
      [SEP, h({ quiet: true })],
      [OCT, h({ documented: true, activitySince: true })],
    ]);
    expect(periodsDue(contract, NOV_15, history).map((p) => p.start)).toEqual([OCT]);
    history.set(SEP, h({ quiet: true, activitySince: true }));
    expect(periodsDue(contract, NOV_15, history).map((p) => p.start)).toEqual([SEP, OCT]);
  });

  it("a period ending after periodEnd is left for a later run", () => {
    expect(periodsDue(contract, Date.parse(OCT), new Map()).map((p) => p.end)).toEqual([SEP, OCT]);
  });
});

describe("itemDecision", () => {
  const blocking = { id: "x1", blocking: true, status: "open" };
  it("nothing due, blocked, previewed, issued, in that order of precedence", () => {
    expect(itemDecision({ action: "none", exceptions: [blocking] }, true)).toEqual({ status: "nothing_to_issue" });
    expect(itemDecision({ action: "invoice", exceptions: [blocking, { id: "x2", blocking: false, status: "open" }] }, true)).toEqual({
      status: "blocked",
      blockingExceptionIds: ["x1"],
    });
    expect(itemDecision({ action: "credit_memo", exceptions: [] }, false)).toEqual({ status: "previewed" });
    expect(itemDecision({ action: "invoice", exceptions: [{ ...blocking, status: "approved" }] }, true)).toEqual({ status: "issue" });
  });
});
