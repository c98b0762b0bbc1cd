// Billing periods in a timezone: alignment to startDate, month-end anchoring, leap years, DST, clipping.
import { describe, expect, it } from "vitest";
import {
  PeriodError,
  isLastPeriodOfTerm,
  lastClosedPeriod,
  periodContaining,
  periodSpanAt,
  periodStartingAt,
  startOfLocalDay,
  termPeriods,
  type PeriodContract,
} from "../../src/domain/index.js";

const c = (over: Partial<PeriodContract> = {}): PeriodContract => ({
  startDate: "2026-01-01",
  endDate: null,
  timezone: "UTC",
  billingPeriod: "monthly",
  ...over,
});

const starts = (contract: PeriodContract, n: number) =>
  Array.from({ length: n }, (_, i) => {
    const s = periodSpanAt(contract, i);
    return s ? new Date(s.startMs).toISOString().slice(0, 10) : null;
  });

describe("periods", () => {
  it("monthly periods in UTC are calendar months when the contract starts on the 1st", () => {
    expect(periodContaining(c(), "2026-01-15T12:00:00Z")).toEqual({
      index: 0,
      start: "2026-01-01T00:00:00.000Z",
      end: "2026-02-01T00:00:00.000Z",
      nominalEnd: "2026-02-01T00:00:00.000Z",
      clipped: false,
    });
  });

  it("aligns to startDate: a contract starting on the 15th bills 15th to 15th", () => {
    expect(periodContaining(c({ startDate: "2026-01-15" }), "2026-03-01T00:00:00Z")).toMatchObject({
      index: 1,
      start: "2026-02-15T00:00:00.000Z",
      end: "2026-03-15T00:00:00.000Z",
    });
  });

  it("anchors month ends to the original day: Jan 31 → Feb 28 → Mar 31 → Apr 30 (no drift)", () => {
    expect(starts(c({ startDate: "2026-01-31" }), 5)).toEqual(["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]);
  });

  it("leap years: Jan 31 2028 → Feb 29 2028; an annual contract from Feb 29 bills Feb 28 then Feb 29 again", () => {
    expect(starts(c({ startDate: "2028-01-31" }), 3)).toEqual(["2028-01-31", "2028-02-29", "2028-03-31"]);
    expect(starts(c({ startDate: "2028-02-29", billingPeriod: "annual" }), 5)).toEqual([
      "2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28", "2032-02-29",
    ]);
  });

  it("leap-year February has 29 days", () => {
    const feb = periodContaining(c({ startDate: "2028-01-01" }), "2028-02-10T00:00:00Z");
    expect(feb).toMatchObject({ start: "2028-02-01T00:00:00.000Z", end: "2028-03-01T00:00:00.000Z" });
    expect(Date.parse(feb!.end) - Date.parse(feb!.start)).toBe(29 * 86_400_000);
  });

  it("quarterly and annual periods, anchored", () => {
    expect(starts(c({ startDate: "2026-01-31", billingPeriod: "quarterly" }), 5)).toEqual(["2026-01-31", "2026-04-30", "2026-07-31", "2026-10-31", "2027-01-31"]);
    expect(periodContaining(c({ billingPeriod: "quarterly" }), "2026-05-05T00:00:00Z")).toMatchObject({
      index: 1, start: "2026-04-01T00:00:00.000Z", end: "2026-07-01T00:00:00.000Z",
    });
    expect(periodContaining(c({ billingPeriod: "annual", startDate: "2025-07-01" }), "2026-05-05T00:00:00Z")).toMatchObject({
      index: 0, start: "2025-07-01T00:00:00.000Z", end: "2026-07-01T00:00:00.000Z",
    });
  });

  it("DST in America/New_York: March has 743 hours, November 721 (30 days + 1 h)", () => {
    const ny = c({ timezone: "America/New_York" });
    const mar = periodContaining(ny, "2026-03-10T12:00:00Z")!;
    expect(mar).toMatchObject({ start: "2026-03-01T05:00:00.000Z", end: "2026-04-01T04:00:00.000Z" });
    expect(Date.parse(mar.end) - Date.parse(mar.start)).toBe(743 * 3_600_000);
    const nov = periodContaining(ny, "2026-11-10T12:00:00Z")!;
    expect(nov).toMatchObject({ start: "2026-11-01T04:00:00.000Z", end: "2026-12-01T05:00:00.000Z" });
    expect(Date.parse(nov.end) - Date.parse(nov.start)).toBe(721 * 3_600_000);
  });

  it("local midnight in zones east of UTC and with half-hour offsets", () => {
    expect(periodContaining(c({ timezone: "Asia/Tokyo" }), "2026-01-31T16:00:00Z")).toMatchObject({
      start: "2026-01-31T15:00:00.000Z", end: "2026-02-28T15:00:00.000Z",
    });
    expect(periodContaining(c({ timezone: "Asia/Kolkata" }), "2026-01-10T00:00:00Z")).toMatchObject({
      start: "2025-12-31T18:30:00.000Z",
    });
  });

  it("a day whose midnight is skipped by DST starts at the first wall time that exists (Santiago, Havana)", () => {
    expect(new Date(startOfLocalDay({ year: 2026, month: 9, day: 6 }, "America/Santiago")).toISOString()).toBe("2026-09-06T04:00:00.000Z");
    expect(new Date(startOfLocalDay({ year: 2026, month: 3, day: 8 }, "America/Havana")).toISOString()).toBe("2026-03-08T05:00:00.000Z");
    const santiago = c({ timezone: "America/Santiago", startDate: "2026-08-06" });
    expect(periodContaining(santiago, "2026-09-06T12:00:00Z")).toMatchObject({ start: "2026-09-06T04:00:00.000Z" });
  });

  it("half-open: the end instant belongs to the next period; outside the term → null", () => {
    const contract = c({ endDate: "2026-03-31" });
    expect(periodContaining(contract, "2026-02-01T00:00:00Z")?.index).toBe(1);
    expect(periodContaining(contract, "2026-01-31T23:59:59.999Z")?.index).toBe(0);
    expect(periodContaining(contract, "2025-12-31T23:59:59Z")).toBeNull();
    expect(periodContaining(contract, "2026-04-01T00:00:00Z")).toBeNull();
  });

  it("the term ends at local midnight of the day after endDate; a short last period is clipped, its nominal end kept", () => {
    const contract = c({ endDate: "2026-03-15", timezone: "Europe/Paris" });
    const periods = termPeriods(contract)!;
    expect(periods).toHaveLength(3);
    expect(periods[2]).toEqual({
      index: 2,
      start: "2026-02-28T23:00:00.000Z",
      end: "2026-03-15T23:00:00.000Z",
      nominalEnd: "2026-03-31T22:00:00.000Z",
      clipped: true,
    });
    expect(isLastPeriodOfTerm(contract, periodSpanAt(contract, 2)!)).toBe(true);
    expect(isLastPeriodOfTerm(contract, periodSpanAt(contract, 1)!)).toBe(false);
    expect(termPeriods(c())).toBeNull();
  });

  it("periodStartingAt only accepts a period's exact start", () => {
    expect(periodStartingAt(c(), "2026-02-01T00:00:00Z")?.index).toBe(1);
    expect(periodStartingAt(c(), "2026-02-01T00:00:00.001Z")).toBeNull();
    expect(periodStartingAt(c(), "2026-02-01T01:00:00+01:00")?.index).toBe(1);
  });

  it("lastClosedPeriod takes now as a parameter", () => {
    expect(lastClosedPeriod(c(), "2026-03-15T10:00:00Z")?.start).toBe("2026-02-01T00:00:00.000Z");
    expect(lastClosedPeriod(c(), "2026-03-01T00:00:00Z")?.start).toBe("2026-02-01T00:00:00.000Z");
    expect(lastClosedPeriod(c(), "2026-01-20T00:00:00Z")).toBeNull();
    expect(lastClosedPeriod(c(), "2025-01-20T00:00:00Z")).toBeNull();
    expect(lastClosedPeriod(c({ endDate: "2026-03-15" }), "2027-01-01T00:00:00Z")).toMatchObject({ start: "2026-03-01T00:00:00.000Z", end: "2026-03-16T00:00:00.000Z" });
  });

  it("rejects bad dates and timezones", () => {
    expect(() => periodContaining(c({ timezone: "Mars/Olympus" }), "2026-01-01T00:00:00Z")).toThrow(PeriodError);
    expect(() => periodContaining(c({ startDate: "2026-02-30" }), "2026-03-01T00:00:00Z")).toThrow(PeriodError);
    expect(() => periodContaining(c({ endDate: "2025-12-31" }), "2026-01-01T00:00:00Z")).toThrow(PeriodError);
    expect(() => periodContaining(c(), "yesterday")).toThrow(PeriodError);
  });
});
