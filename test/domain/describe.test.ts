// The words of line descriptions and the backup's dates (src/domain/rating/describe.ts), hand-checked.
import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/domain/index.js";
import { inclusiveDates, moneyText, quantityText, shareText, spanText } from "../../src/domain/rating/describe.js";

const ms = (iso: string) => Date.parse(iso);
const DAY = 86_400_000;

describe("line descriptions", () => {
  it("a half-open period as inclusive local dates: [2026-01-01, 2026-04-01) is 2026-01-01 to 2026-03-31", () => {
    expect(inclusiveDates(ms("2026-01-01T00:00:00Z"), ms("2026-04-01T00:00:00Z"), "UTC")).toBe("2026-01-01 to 2026-03-31");
    // New York midnights are 05:00Z: the same local dates.
    expect(inclusiveDates(ms("2026-01-01T05:00:00Z"), ms("2026-04-01T04:00:00Z"), "America/New_York")).toBe("2026-01-01 to 2026-03-31");
  });

  it("segments by their local dates, the year once when it does not change", () => {
    expect(spanText(ms("2026-01-01T00:00:00Z"), ms("2026-02-10T00:00:00Z"), "UTC")).toBe("Jan 1–Feb 9, 2026");
    expect(spanText(ms("2026-12-15T00:00:00Z"), ms("2027-01-15T00:00:00Z"), "UTC")).toBe("Dec 15, 2026–Jan 14, 2027");
    expect(spanText(ms("2026-01-01T00:00:00Z"), ms("2026-01-02T00:00:00Z"), "UTC")).toBe("Jan 1, 2026");
    expect(spanText(ms("2026-01-10T12:00:00Z"), ms("2026-02-01T00:00:00Z"), "UTC")).toBe("Jan 10, 2026 12:00 to Feb 1, 2026 00:00");
  });

  it("proration in the largest whole unit that measures both spans, else the fraction", () => {
    expect(shareText(10 * DAY, 31 * DAY, new Decimal(10).div(31))).toBe("10 of 31 days");
    expect(shareText(31 * DAY, 31 * DAY, new Decimal(1))).toBeNull();
    expect(shareText(228 * 3_600_000, 743 * 3_600_000, new Decimal(228).div(743))).toBe("228 of 743 hours");
    expect(shareText(1_500, 31 * DAY, new Decimal("0.00000056"))).toBe("0.00000056 of the period");
  });

  it("figures grouped by thousands, never rounded: at most 6 decimals shown, truncated, then …", () => {
    expect(moneyText(new Decimal("20000"), "USD")).toBe("20,000.00");
    expect(moneyText(new Decimal("1234"), "JPY")).toBe("1,234");
    expect(moneyText(new Decimal(20000).times(40).div(90), "USD")).toBe("8,888.888888…");
    expect(moneyText(new Decimal("-0.5"), "USD")).toBe("-0.50");
    expect(quantityText(new Decimal("1400000"))).toBe("1,400,000");
    expect(quantityText(new Decimal("0.000125"))).toBe("0.000125");
    expect(quantityText(new Decimal(1000).times(50).div(90))).toBe("555.555555…");
  });
});
