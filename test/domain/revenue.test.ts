// Revenue recognition, pure (DESIGN.md §7.2; docs/revenue.md): cumulative rounding, calendar months in a
// timezone, a billing period's months, and a prepaid grant's rollforward. No database.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Decimal,
  ZERO,
  grantRollforward,
  minorUnits,
  monthAt,
  monthIndex,
  monthIndexAt,
  monthText,
  monthsOf,
  monthsOverlapping,
  recognizePeriod,
  spreadCumulative,
  type LineKind,
  type MonthRecognition,
  type RevenueLine,
  type RoundingMode,
} from "../../src/domain/index.js";

// ---- helpers --------------------------------------------------------------------------------------------

const d = (x: string | number) => new Decimal(x);
const ds = (...xs: (string | number)[]) => xs.map(d);
/** Decimals as plain texts, so expectations read like the report ("3296.70" is "3296.7" as a Decimal). */
const texts = (xs: readonly Decimal[]) => xs.map((x) => x.toFixed());
const total = (xs: readonly Decimal[]) => xs.reduce((a, b) => a.plus(b), ZERO);
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
/** An amount of minor units as a decimal text: cents(123456) → "1234.56". */
const minor = (n: number, digits = 2) => d(n).dividedBy(d(10).pow(digits)).toFixed(digits);
const isWholeMinor = (x: Decimal, digits = 2) => x.decimalPlaces() <= digits;

/** round(n / d) on integers, independently of decimal.js: half_up away from zero, half_even to the even digit. */
function roundDiv(n: bigint, den: bigint, mode: RoundingMode): bigint {
  const neg = n < 0n !== den < 0n;
  const an = n < 0n ? -n : n;
  const ad = den < 0n ? -den : den;
  let q = an / ad;
  const twice = 2n * (an % ad);
  if (twice > ad || (twice === ad && (mode === "half_up" || q % 2n === 1n))) q += 1n;
  return neg ? -q : q;
}

const modes: RoundingMode[] = ["half_up", "half_even"];
const modeArb = fc.constantFrom<RoundingMode>(...modes);
const timezoneArb = fc.constantFrom("UTC", "America/New_York", "Asia/Kolkata", "Europe/London", "Australia/Sydney");

// ---- 1. spreadCumulative --------------------------------------------------------------------------------

describe("spreadCumulative", () => {
  it("spreads 10,000.00 over 30/31/30 days as 3296.70 / 3406.60 / 3296.70", () => {
    // Through month 2: round(10000 × 61/91) = 6703.30, so month 2 is 6703.30 − 3296.70.
    expect(texts(spreadCumulative(d("10000.00"), ds(30, 31, 30), "USD", "half_up"))).toEqual(["3296.7", "3406.6", "3296.7"]);
  });

  it("spreads 0.10 over 1:1:1 as 0.03 / 0.04 / 0.03 (the rounding lands in the middle, not the end)", () => {
    for (const mode of modes) expect(texts(spreadCumulative(d("0.10"), ds(1, 1, 1), "USD", mode))).toEqual(["0.03", "0.04", "0.03"]);
  });

  it("puts everything in the last part when no weight is positive (zero or negative weights)", () => {
    expect(texts(spreadCumulative(d("12.34"), ds(0, 0, 0), "USD", "half_up"))).toEqual(["0", "0", "12.34"]);
    expect(texts(spreadCumulative(d("12.34"), ds(-1, 0, -5), "USD", "half_up"))).toEqual(["0", "0", "12.34"]);
    // A negative weight counts as 0 among positive ones.
    expect(texts(spreadCumulative(d("10.00"), ds(1, -3, 1), "USD", "half_up"))).toEqual(["5", "0", "5"]);
    expect(spreadCumulative(d("10.00"), [], "USD", "half_up")).toEqual([]);
  });

  it("spreads negative amounts like their positive counterparts (half_up rounds a tie away from zero)", () => {
    expect(texts(spreadCumulative(d("-0.10"), ds(1, 1, 1), "USD", "half_up"))).toEqual(["-0.03", "-0.04", "-0.03"]);
    expect(texts(spreadCumulative(d("-10000.00"), ds(30, 31, 30), "USD", "half_up"))).toEqual(["-3296.7", "-3406.6", "-3296.7"]);
    // 0.05 over 1:1 is a tie in the first part: half_up gives 0.03 first, half_even 0.02.
    expect(texts(spreadCumulative(d("0.05"), ds(1, 1), "USD", "half_up"))).toEqual(["0.03", "0.02"]);
    expect(texts(spreadCumulative(d("-0.05"), ds(1, 1), "USD", "half_up"))).toEqual(["-0.03", "-0.02"]);
    expect(texts(spreadCumulative(d("0.05"), ds(1, 1), "USD", "half_even"))).toEqual(["0.02", "0.03"]);
  });

  it("rounds to the currency's minor unit: JPY has none, BHD three", () => {
    expect(texts(spreadCumulative(d("1000"), ds(1, 1, 1), "JPY", "half_up"))).toEqual(["333", "334", "333"]);
    expect(texts(spreadCumulative(d("10000"), ds(30, 31, 30), "JPY", "half_up"))).toEqual(["3297", "3406", "3297"]);
    expect(texts(spreadCumulative(d("1.000"), ds(1, 1, 1), "BHD", "half_up"))).toEqual(["0.333", "0.334", "0.333"]);
  });

  // Amounts as whole minor units of a currency with 0, 2 or 3 decimals, and integer weights (some zero).
  const spreadCase = fc.record({
    currency: fc.constantFrom("USD", "JPY", "BHD"),
    units: fc.integer({ min: -10_000_000_000, max: 10_000_000_000 }),
    weights: fc.array(fc.integer({ min: 0, max: 3_000_000 }), { minLength: 1, maxLength: 14 }),
    mode: modeArb,
  });

  it("property: the parts add up to the amount exactly, each a whole number of minor units", () => {
    fc.assert(
      fc.property(spreadCase, ({ currency, units, weights, mode }) => {
        const digits = minorUnits(currency);
        const amount = d(minor(units, digits));
        const parts = spreadCumulative(amount, weights.map(d), currency, mode);
        expect(parts).toHaveLength(weights.length);
        expect(total(parts).equals(amount)).toBe(true);
        for (const p of parts) expect(isWholeMinor(p, digits)).toBe(true);
      }),
    );
  });

  it("property: with equal weights the parts differ by at most one minor unit", () => {
    fc.assert(
      fc.property(spreadCase, fc.integer({ min: 1, max: 1000 }), ({ currency, units, weights, mode }, w) => {
        const digits = minorUnits(currency);
        const parts = spreadCumulative(d(minor(units, digits)), weights.map(() => d(w)), currency, mode);
        const scaled = parts.map((p) => p.times(d(10).pow(digits)));
        const spread = Decimal.max(...scaled).minus(Decimal.min(...scaled));
        expect(spread.lessThanOrEqualTo(1)).toBe(true);
      }),
    );
  });

  it("property: through every part k the running sum is round(A × W≤k / W), checked on integers", () => {
    fc.assert(
      fc.property(spreadCase, ({ currency, units, weights, mode }) => {
        const digits = minorUnits(currency);
        const parts = spreadCumulative(d(minor(units, digits)), weights.map(d), currency, mode);
        const W = BigInt(weights.reduce((a, b) => a + b, 0));
        let running = ZERO;
        let wk = 0n;
        parts.forEach((p, k) => {
          running = running.plus(p);
          wk += BigInt(weights[k]!);
          // With no weight at all, everything sits in the last part.
          const expected = W === 0n ? (k === parts.length - 1 ? BigInt(units) : 0n) : roundDiv(BigInt(units) * wk, W, mode);
          expect(running.times(d(10).pow(digits)).toFixed()).toBe(expected.toString());
        });
      }),
    );
  });
});

// ---- 2. months in a timezone ----------------------------------------------------------------------------

describe("monthIndex / monthsOf / monthsOverlapping", () => {
  it("parses exactly YYYY-MM and rejects anything else", () => {
    expect(monthIndex("2026-01")).toBe(2026 * 12);
    expect(monthIndex("2026-12")).toBe(2026 * 12 + 11);
    expect(monthText(monthIndex("2026-03")!)).toBe("2026-03");
    for (const bad of ["2026-1", "2026-13", "26-01", "2026-00", "2026-01-01", " 2026-01", "2026/01", ""]) expect(monthIndex(bad), bad).toBeNull();
  });

  it("America/New_York: months run between local midnights, across the DST changes", () => {
    // March 1 is EST (−5), April 1 EDT (−4).
    const march = monthAt(monthIndex("2026-03")!, "America/New_York");
    expect(march.month).toBe("2026-03");
    expect(iso(march.startMs)).toBe("2026-03-01T05:00:00.000Z");
    expect(iso(march.endMs)).toBe("2026-04-01T04:00:00.000Z");
    // November: starts in EDT (DST ends on Nov 1 at 02:00), ends in EST.
    const november = monthAt(monthIndex("2026-11")!, "America/New_York");
    expect(iso(november.startMs)).toBe("2026-11-01T04:00:00.000Z");
    expect(iso(november.endMs)).toBe("2026-12-01T05:00:00.000Z");
    // The last second of February in New York is already March in UTC.
    expect(monthText(monthIndexAt(at("2026-03-01T04:59:59Z"), "America/New_York"))).toBe("2026-02");
    expect(monthText(monthIndexAt(at("2026-03-01T05:00:00Z"), "America/New_York"))).toBe("2026-03");
  });

  it("Asia/Kolkata (+05:30): a month starts at 18:30Z the day before", () => {
    const jan = monthAt(monthIndex("2026-01")!, "Asia/Kolkata");
    expect(iso(jan.startMs)).toBe("2025-12-31T18:30:00.000Z");
    expect(iso(jan.endMs)).toBe("2026-01-31T18:30:00.000Z");
    expect(monthText(monthIndexAt(at("2026-01-31T18:29:59Z"), "Asia/Kolkata"))).toBe("2026-01");
    expect(monthText(monthIndexAt(at("2026-01-31T18:30:00Z"), "Asia/Kolkata"))).toBe("2026-02");
  });

  it("monthsOf lists the months from one index to another, both included, across a year end", () => {
    const ms = monthsOf(monthIndex("2025-11")!, monthIndex("2026-02")!, "America/New_York");
    expect(ms.map((m) => m.month)).toEqual(["2025-11", "2025-12", "2026-01", "2026-02"]);
    for (let i = 1; i < ms.length; i++) expect(ms[i]!.startMs).toBe(ms[i - 1]!.endMs);
    expect(monthsOf(5, 4, "UTC")).toEqual([]);
  });

  it("monthsOverlapping takes [start, end): a period ending on a month's first midnight does not touch it", () => {
    const tz = "America/New_York";
    const marchStart = monthAt(monthIndex("2026-03")!, tz).startMs;
    expect(monthsOverlapping(at("2026-01-15T12:00:00Z"), marchStart, tz).map((m) => m.month)).toEqual(["2026-01", "2026-02"]);
    expect(monthsOverlapping(at("2026-01-15T12:00:00Z"), marchStart + 1, tz).map((m) => m.month)).toEqual(["2026-01", "2026-02", "2026-03"]);
    expect(monthsOverlapping(marchStart, marchStart, tz)).toEqual([]);
    expect(monthsOverlapping(marchStart + 1, marchStart, tz)).toEqual([]);
  });

  it("property: each month ends where the next starts, and its start is the first instant of its local month", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1990 * 12, max: 2060 * 12 }), timezoneArb, (i, tz) => {
        const m = monthAt(i, tz);
        expect(m.month).toBe(monthText(i));
        expect(m.endMs).toBe(monthAt(i + 1, tz).startMs);
        expect(monthIndexAt(m.startMs, tz)).toBe(i);
        expect(monthIndexAt(m.startMs - 1, tz)).toBe(i - 1);
        expect(monthIndexAt(m.endMs - 1, tz)).toBe(i);
      }),
    );
  });
});

// ---- 3. recognizePeriod ---------------------------------------------------------------------------------

const USD = (timezone = "UTC", roundingMode: RoundingMode = "half_up") => ({ timezone, currency: "USD", roundingMode });
const line = (kind: LineKind, amount: string, segment: [string, string] | null, unitsByMonth?: Record<string, number | string>): RevenueLine => ({
  kind,
  amount,
  segment: segment ? { from: segment[0], to: segment[1] } : null,
  ...(unitsByMonth ? { unitsByMonth: new Map(Object.entries(unitsByMonth).map(([m, u]) => [m, d(u)])) } : {}),
});
/** One component of every month, as texts, in month order. */
const column = (r: Map<string, MonthRecognition>, c: "platformFee" | "usage" | "commitment") => [...r.values()].map((m) => m[c].toFixed());
const creditColumn = (r: Map<string, MonthRecognition>, grantId: string) => [...r.values()].map((m) => (m.credits.get(grantId) ?? ZERO).toFixed());

// Q1 2026 in UTC: January 31 days, February 28, March 31. A mid-period change on Feb 15 gives two segments of
// 45 days each: [Jan 1, Feb 15) = 31 + 14 days and [Feb 15, Apr 1) = 14 + 31 days.
const Q1: [string, string] = ["2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"];
const SEG_A: [string, string] = ["2026-01-01T00:00:00Z", "2026-02-15T00:00:00Z"];
const SEG_B: [string, string] = ["2026-02-15T00:00:00Z", "2026-04-01T00:00:00Z"];
const q1 = { startMs: at(Q1[0]), endMs: at(Q1[1]) };

describe("recognizePeriod", () => {
  it("a monthly period: the platform fee and the usage are all in its month", () => {
    const jan: [string, string] = ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"];
    const r = recognizePeriod(
      { startMs: at(jan[0]), endMs: at(jan[1]), lines: [line("platform_fee", "10000.00", jan), line("usage", "8000.00", jan, { "2026-01": 400000 })], creditsApplied: [] },
      USD(),
    );
    expect([...r.keys()]).toEqual(["2026-01"]);
    expect(column(r, "platformFee")).toEqual(["10000"]);
    expect(column(r, "usage")).toEqual(["8000"]);
    expect(column(r, "commitment")).toEqual(["0"]);
  });

  it("lists every month of the period in the contract's timezone, even those that earn nothing", () => {
    // The same UTC instants in New York: the period starts on Dec 31 local time, so December is listed too.
    const r = recognizePeriod({ ...q1, lines: [], creditsApplied: [] }, USD("America/New_York"));
    expect([...r.keys()]).toEqual(["2025-12", "2026-01", "2026-02", "2026-03"]);
  });

  it("a quarterly period split mid-period: each platform fee line is spread by its own segment's seconds", () => {
    // Segment A 4500.00 over 31 + 14 days → 3100.00 + 1400.00; segment B 9000.00 over 14 + 31 days → 2800.00 + 6200.00.
    const r = recognizePeriod({ ...q1, lines: [line("platform_fee", "4500.00", SEG_A), line("platform_fee", "9000.00", SEG_B)], creditsApplied: [] }, USD());
    expect([...r.keys()]).toEqual(["2026-01", "2026-02", "2026-03"]);
    expect(column(r, "platformFee")).toEqual(["3100", "4200", "6200"]);
    expect(column(r, "usage")).toEqual(["0", "0", "0"]);
  });

  it("a usage line goes by its units per month, and by time when it has none (or only zeros)", () => {
    const r = recognizePeriod(
      {
        ...q1,
        lines: [
          line("usage", "600.00", Q1, { "2026-01": 1, "2026-02": 0, "2026-03": 2 }), // 200 / 0 / 400
          line("usage", "900.00", Q1), // by time: 900 × 31/90, 28/90, 31/90 = 310 / 280 / 310
        ],
        creditsApplied: [],
      },
      USD(),
    );
    expect(column(r, "usage")).toEqual(["510", "280", "710"]);
    const zeros = recognizePeriod({ ...q1, lines: [line("usage", "900.00", Q1, { "2026-01": 0 })], creditsApplied: [] }, USD());
    expect(column(zeros, "usage")).toEqual(["310", "280", "310"]);
  });

  it("units outside a usage line's segment are ignored: the line stays inside its segment", () => {
    // Segment B has no January; the January units do not pull any of it there.
    const r = recognizePeriod({ ...q1, lines: [line("usage", "300.00", SEG_B, { "2026-01": 1000, "2026-02": 1, "2026-03": 2 })], creditsApplied: [] }, USD());
    expect(column(r, "usage")).toEqual(["0", "100", "200"]);
  });

  it("contract discount and cap lines follow the usage their own segment recognizes", () => {
    const r = recognizePeriod(
      {
        ...q1,
        lines: [
          line("usage", "1000.00", SEG_A, { "2026-01": 3, "2026-02": 1 }), // 750 / 250
          line("usage", "2000.00", SEG_B, { "2026-02": 1, "2026-03": 1 }), // 1000 / 1000
          line("contract_discount", "-100.00", SEG_A), // like segment A's usage: −75 / −25
          line("contract_discount", "-200.00", SEG_B), // like segment B's usage: −100 / −100
          line("contract_cap", "-40.00", SEG_A), // −30 / −10
        ],
        creditsApplied: [],
      },
      USD(),
    );
    expect(column(r, "usage")).toEqual([String(750 - 75 - 30), String(250 + 1000 - 25 - 100 - 10), String(1000 - 100)]);
  });

  it("a contract discount of a segment without usage is spread by time", () => {
    const r = recognizePeriod({ ...q1, lines: [line("contract_discount", "-90.00", Q1)], creditsApplied: [] }, USD());
    expect(column(r, "usage")).toEqual(["-31", "-28", "-31"]);
  });

  it("a commitment shortfall goes to the period's last month", () => {
    const r = recognizePeriod({ ...q1, lines: [line("platform_fee", "900.00", Q1), line("commitment_shortfall", "500.00", null)], creditsApplied: [] }, USD());
    expect(column(r, "commitment")).toEqual(["0", "0", "500"]);
    expect(column(r, "platformFee")).toEqual(["310", "280", "310"]);
  });

  it("credits are placed like the usage and commitment they paid for", () => {
    // Usage 0 / 300 / 600 and a shortfall of 300 in March: paid 0 / 300 / 900, so 600.00 of credit is 0 / 150 / 450.
    const r = recognizePeriod(
      {
        ...q1,
        lines: [
          line("platform_fee", "9000.00", Q1), // platform fees are not what credits pay
          line("usage", "900.00", Q1, { "2026-02": 1, "2026-03": 2 }),
          line("commitment_shortfall", "300.00", null),
        ],
        creditsApplied: [
          { grantId: "g1", amount: "600.00" },
          { grantId: "g2", amount: "0.10" },
        ],
      },
      USD(),
    );
    expect(creditColumn(r, "g1")).toEqual(["0", "150", "450"]);
    expect(creditColumn(r, "g2")).toEqual(["0", "0.03", "0.07"]); // 0.10 × 300/1200 = 0.025 → 0.03 (half_up)
  });

  it("credits go to the last month when the period recognizes no usage nor commitment", () => {
    const r = recognizePeriod({ ...q1, lines: [line("platform_fee", "9000.00", Q1)], creditsApplied: [{ grantId: "g1", amount: "250.00" }] }, USD());
    expect(creditColumn(r, "g1")).toEqual(["0", "0", "250"]);
  });

  it("a credit_applied line earns nothing (credits come from creditsApplied); a line without segment spans the period", () => {
    const r = recognizePeriod(
      {
        ...q1,
        lines: [line("usage", "900.00", null), line("credit_applied", "-300.00", null)],
        creditsApplied: [{ grantId: "g1", amount: "300.00" }],
      },
      USD(),
    );
    expect(column(r, "usage")).toEqual(["310", "280", "310"]);
    expect(column(r, "platformFee")).toEqual(["0", "0", "0"]);
    expect(column(r, "commitment")).toEqual(["0", "0", "0"]);
    expect(creditColumn(r, "g1")).toEqual(["103.33", "93.34", "103.33"]);
  });

  // Random quarterly periods: a timezone, a start month, one to three segments (split at random seconds), and
  // per segment a platform fee, usage lines (with or without units per month, some of the period's months,
  // sometimes one outside it), a contract discount and cap; a shortfall; and credits no larger than the usage.
  const periodArb = fc
    .record({
      timezone: timezoneArb,
      startIndex: fc.integer({ min: 2024 * 12, max: 2028 * 12 }),
      splits: fc.uniqueArray(fc.double({ min: 0.01, max: 0.99, noNaN: true }), { maxLength: 2 }),
      mode: modeArb,
    })
    .chain(({ timezone, startIndex, splits, mode }) => {
      const startMs = monthAt(startIndex, timezone).startMs;
      const endMs = monthAt(startIndex + 3, timezone).startMs;
      const cuts = [...new Set(splits.map((f) => startMs + Math.round(((endMs - startMs) * f) / 1000) * 1000))].sort((a, b) => a - b);
      const bounds = [startMs, ...cuts, endMs];
      const segments = bounds.slice(1).map((to, i) => ({ from: iso(bounds[i]!), to: iso(to) }));
      const monthNames = [startIndex - 1, startIndex, startIndex + 1, startIndex + 2, startIndex + 3].map(monthText);
      const units = fc.oneof(fc.integer({ min: 0, max: 100_000 }).map(String), fc.integer({ min: 0, max: 10_000_000 }).map((n) => minor(n, 3)));
      const unitsByMonth = fc.option(fc.dictionary(fc.constantFrom(...monthNames), units, { maxKeys: 5 }), { nil: undefined });
      const cents = (max: number) => fc.integer({ min: 0, max });
      const segmentLines = (segment: { from: string; to: string }) =>
        fc
          .record({
            fee: fc.option(cents(5_000_000), { nil: undefined }),
            usage: fc.array(fc.record({ amount: cents(2_000_000), units: unitsByMonth }), { maxLength: 3 }),
            discount: fc.option(cents(100_000), { nil: undefined }),
            cap: fc.option(cents(100_000), { nil: undefined }),
          })
          .map(({ fee, usage, discount, cap }) => {
            const lines: RevenueLine[] = [];
            if (fee !== undefined) lines.push({ kind: "platform_fee", amount: minor(fee), segment });
            for (const u of usage) {
              lines.push({
                kind: "usage",
                amount: minor(u.amount),
                segment,
                ...(u.units ? { unitsByMonth: new Map(Object.entries(u.units).map(([m, x]) => [m, d(x)])) } : {}),
              });
            }
            const usageCents = usage.reduce((a, u) => a + u.amount, 0);
            // A discount and a cap reduce the segment's usage, never below zero.
            const off = Math.min(discount ?? 0, usageCents);
            if (discount !== undefined) lines.push({ kind: "contract_discount", amount: minor(-off), segment });
            if (cap !== undefined) lines.push({ kind: "contract_cap", amount: minor(-Math.min(cap, usageCents - off)), segment });
            return lines;
          });
      return fc
        .record({
          perSegment: fc.tuple(...segments.map(segmentLines)),
          shortfall: fc.option(cents(3_000_000), { nil: undefined }),
          creditShares: fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 3 }),
          shuffle: fc.boolean(),
        })
        .map(({ perSegment, shortfall, creditShares, shuffle }) => {
          const lines = perSegment.flat();
          if (shortfall !== undefined) lines.push({ kind: "commitment_shortfall", amount: minor(shortfall), segment: null });
          // Credits: shares of at most the usage (after discounts and caps), also on the document as a
          // credit_applied line, which is not revenue.
          const usage = total(lines.filter((l) => ["usage", "contract_discount", "contract_cap"].includes(l.kind)).map((l) => d(l.amount)));
          const usageCents = usage.times(100).toNumber();
          const shares = creditShares.reduce((a, b) => a + b, 0);
          const creditsApplied = creditShares.map((s, i) => ({
            grantId: `g${i + 1}`,
            amount: minor(shares === 0 ? 0 : Math.floor((usageCents * s) / Math.max(shares, 1000))),
          }));
          const applied = total(creditsApplied.map((c) => d(c.amount)));
          if (!applied.isZero()) lines.push({ kind: "credit_applied", amount: applied.negated().toFixed(2), segment: null });
          if (shuffle) lines.reverse(); // the order of the lines does not matter
          return { startMs, endMs, timezone, mode, lines, creditsApplied };
        });
    });

  it("property: each component's months add up to its lines, each grant's to its credits, all in whole cents", () => {
    fc.assert(
      fc.property(periodArb, ({ startMs, endMs, timezone, mode, lines, creditsApplied }) => {
        const r = recognizePeriod({ startMs, endMs, lines, creditsApplied }, USD(timezone, mode));
        const months = [...r.values()];
        expect([...r.keys()]).toEqual(monthsOverlapping(startMs, endMs, timezone).map((m) => m.month));
        const ofKinds = (...kinds: LineKind[]) => total(lines.filter((l) => kinds.includes(l.kind)).map((l) => d(l.amount))).toFixed();
        expect(total(months.map((m) => m.platformFee)).toFixed()).toBe(ofKinds("platform_fee"));
        expect(total(months.map((m) => m.usage)).toFixed()).toBe(ofKinds("usage", "contract_discount", "contract_cap"));
        expect(total(months.map((m) => m.commitment)).toFixed()).toBe(ofKinds("commitment_shortfall"));
        // The shortfall is in the last month only.
        for (const m of months.slice(0, -1)) expect(m.commitment.isZero()).toBe(true);
        for (const c of creditsApplied) expect(total(months.map((m) => m.credits.get(c.grantId) ?? ZERO)).toFixed()).toBe(d(c.amount).toFixed());
        for (const m of months) {
          for (const x of [m.platformFee, m.usage, m.commitment, ...m.credits.values()]) expect(isWholeMinor(x)).toBe(true);
        }
      }),
    );
  });
});

// ---- 4. grantRollforward --------------------------------------------------------------------------------

describe("grantRollforward", () => {
  const row = (opening: number, additions: number, recognized: number, expired: number, closing: number) => ({
    opening: String(opening),
    additions: String(additions),
    recognized: String(recognized),
    expired: String(expired),
    closing: String(closing),
  });
  const asTexts = (rows: Map<string, { opening: Decimal; additions: Decimal; recognized: Decimal; expired: Decimal; closing: Decimal }>) =>
    Object.fromEntries(
      [...rows].map(([m, r]) => [
        m,
        { opening: r.opening.toFixed(), additions: r.additions.toFixed(), recognized: r.recognized.toFixed(), expired: r.expired.toFixed(), closing: r.closing.toFixed() },
      ]),
    );

  it("credits of a period ending after expiry, placed in a later month: the rows go on until the balance reaches 0", () => {
    // A quarter Jan–Mar used 600 of a 1000 grant expiring Feb 15; recognizePeriod placed it 0 / 200 / 400.
    const months = monthsOf(monthIndex("2026-01")!, monthIndex("2026-04")!, "UTC");
    const recognized: Record<string, string> = { "2026-02": "200", "2026-03": "400" };
    const rows = grantRollforward(
      { grantId: "g", amount: d("1000.00"), grantedAtMs: at("2026-01-01T00:00:00Z"), expiresAtMs: at("2026-02-15T00:00:00Z") },
      months,
      (m) => d(recognized[m] ?? "0"),
      d("600.00"),
      "UTC",
    );
    expect(asTexts(rows)).toEqual({
      "2026-01": row(0, 1000, 0, 0, 1000),
      "2026-02": row(1000, 0, 200, 400, 400),
      "2026-03": row(400, 0, 400, 0, 0),
    });
  });

  it("a grant of 1000 used 300 + 200 and expiring mid-March: rows January to March, 500 expires in March", () => {
    const months = monthsOf(monthIndex("2025-12")!, monthIndex("2026-05")!, "UTC");
    const recognized: Record<string, string> = { "2026-01": "300", "2026-02": "200" };
    const rows = grantRollforward(
      { grantId: "g1", amount: d("1000.00"), grantedAtMs: at("2026-01-10T00:00:00Z"), expiresAtMs: at("2026-03-15T00:00:00Z") },
      months,
      (m) => d(recognized[m] ?? "0"),
      d("500.00"),
      "UTC",
    );
    // No row in December (before the grant) nor in April or May (after it expired).
    expect(asTexts(rows)).toEqual({
      "2026-01": row(0, 1000, 300, 0, 700),
      "2026-02": row(700, 0, 200, 0, 500),
      "2026-03": row(500, 0, 0, 500, 0),
    });
    expect([...rows.values()].every((r) => r.grantId === "g1")).toBe(true);
  });

  it("what expires is never negative, even when more was used than granted", () => {
    const months = monthsOf(monthIndex("2026-01")!, monthIndex("2026-01")!, "UTC");
    const rows = grantRollforward(
      { grantId: "g1", amount: d("100.00"), grantedAtMs: at("2026-01-01T00:00:00Z"), expiresAtMs: at("2026-01-20T00:00:00Z") },
      months,
      () => d("100.00"),
      d("120.00"),
      "UTC",
    );
    expect(asTexts(rows)).toEqual({ "2026-01": row(0, 100, 100, 0, 0) });
  });

  it("uses the timezone's months: a grant at 2026-01-31T20:00Z in Kolkata is a February grant", () => {
    const months = monthsOf(monthIndex("2026-01")!, monthIndex("2026-04")!, "Asia/Kolkata");
    const rows = grantRollforward(
      { grantId: "g1", amount: d("50.00"), grantedAtMs: at("2026-01-31T20:00:00Z"), expiresAtMs: at("2026-03-31T19:00:00Z") },
      months,
      () => ZERO,
      ZERO,
      "Asia/Kolkata",
    );
    expect([...rows.keys()]).toEqual(["2026-02", "2026-03", "2026-04"]);
  });

  // A grant in some month of 2025–2026, expiring 0–14 months later, over a report window around it, with
  // credits recognized in some of its months (their total at most the grant), and what was used before expiry.
  const grantArb = fc
    .record({
      timezone: timezoneArb,
      grantIndex: fc.integer({ min: 2025 * 12, max: 2026 * 12 + 11 }),
      life: fc.integer({ min: 0, max: 14 }),
      grantDay: fc.double({ min: 0, max: 0.999, noNaN: true }),
      expiryDay: fc.double({ min: 0, max: 0.999, noNaN: true }),
      amountCents: fc.integer({ min: 0, max: 100_000_000 }),
      before: fc.integer({ min: 0, max: 4 }),
      after: fc.integer({ min: 0, max: 4 }),
      usedShares: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 20, maxLength: 20 }),
      extraUsedCents: fc.integer({ min: -1_000_000, max: 1_000_000 }),
    })
    .map((g) => {
      const inMonth = (i: number, f: number) => {
        const m = monthAt(i, g.timezone);
        return m.startMs + Math.floor((m.endMs - m.startMs) * f);
      };
      const grantedAtMs = inMonth(g.grantIndex, g.grantDay);
      const expiresAtMs = Math.max(grantedAtMs + 1, inMonth(g.grantIndex + g.life, g.expiryDay));
      const shares = g.usedShares.reduce((a, b) => a + b, 0);
      const perMonth = new Map<string, Decimal>();
      for (let k = 0; k <= g.life; k++) {
        const cents = shares === 0 ? 0 : Math.floor((g.amountCents * g.usedShares[k]!) / Math.max(shares, 100));
        perMonth.set(monthText(g.grantIndex + k), d(minor(cents)));
      }
      const recognizedTotal = total([...perMonth.values()]);
      return { ...g, grantedAtMs, expiresAtMs, perMonth, used: Decimal.max(ZERO, recognizedTotal.plus(minor(g.extraUsedCents))) };
    });

  it("property: closing = opening + additions − recognized − expired, openings carry, rows only in the grant's life", () => {
    fc.assert(
      fc.property(grantArb, (g) => {
        const amount = d(minor(g.amountCents));
        const months = monthsOf(g.grantIndex - g.before, g.grantIndex + g.life + g.after, g.timezone);
        const rows = grantRollforward(
          { grantId: "g", amount, grantedAtMs: g.grantedAtMs, expiresAtMs: g.expiresAtMs },
          months,
          (m) => g.perMonth.get(m) ?? ZERO,
          g.used,
          g.timezone,
        );
        const first = monthIndexAt(g.grantedAtMs, g.timezone);
        const last = monthIndexAt(g.expiresAtMs, g.timezone);
        expect([...rows.keys()]).toEqual(monthsOf(first, last, g.timezone).map((m) => m.month));
        let previous = ZERO;
        let recognized = ZERO;
        let expired = ZERO;
        for (const [m, r] of rows) {
          expect(r.closing.equals(r.opening.plus(r.additions).minus(r.recognized).minus(r.expired))).toBe(true);
          expect(r.opening.equals(previous)).toBe(true);
          // The grant's amount is added in its month only, and expires in the month of expiresAt only.
          expect(r.additions.equals(monthIndex(m) === first ? amount : ZERO)).toBe(true);
          if (monthIndex(m) !== last) expect(r.expired.isZero()).toBe(true);
          else expect(r.expired.equals(Decimal.max(ZERO, amount.minus(g.used)))).toBe(true);
          previous = r.closing;
          recognized = recognized.plus(r.recognized);
          expired = expired.plus(r.expired);
        }
        expect(previous.equals(amount.minus(recognized).minus(expired))).toBe(true);
      }),
    );
  });
});
