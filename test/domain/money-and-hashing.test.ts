// Money (ISO 4217 minor units, rounding), canonical JSON, usage windows and input validation.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CURRENCY_CODES,
  Decimal,
  ENGINE_VERSION,
  RatingInputError,
  canonicalJson,
  formatMoney,
  isKnownCurrency,
  minorUnits,
  parseDecimal,
  ratePeriod,
  roundMoney,
  toDecimal,
  usageWindows,
} from "../../src/domain/index.js";
import { buildInput, perUnit, rate } from "./fixtures.js";

describe("money", () => {
  it("knows ISO 4217 minor units", () => {
    expect(minorUnits("USD")).toBe(2);
    expect(minorUnits("JPY")).toBe(0);
    expect(minorUnits("KRW")).toBe(0);
    expect(minorUnits("BHD")).toBe(3);
    expect(minorUnits("KWD")).toBe(3);
    expect(minorUnits("IQD")).toBe(3);
    expect(minorUnits("CLF")).toBe(4);
    expect(minorUnits("XCG")).toBe(2);
    expect(isKnownCurrency("EUR")).toBe(true);
    expect(isKnownCurrency("usd")).toBe(false);
    expect(isKnownCurrency("XAU")).toBe(false); // no minor unit: not money a contract is written in
    expect(isKnownCurrency("toString")).toBe(false);
    expect(() => minorUnits("ZZZ")).toThrow(RangeError);
    expect(CURRENCY_CODES.length).toBeGreaterThan(150);
  });

  it("rounds half_up away from zero and half_even to even, and formats with exactly the minor unit's decimals", () => {
    expect(formatMoney(roundMoney(new Decimal("0.125"), "USD", "half_up"), "USD")).toBe("0.13");
    expect(formatMoney(roundMoney(new Decimal("0.125"), "USD", "half_even"), "USD")).toBe("0.12");
    expect(formatMoney(roundMoney(new Decimal("-0.125"), "USD", "half_up"), "USD")).toBe("-0.13");
    expect(formatMoney(roundMoney(new Decimal("-0.001"), "USD", "half_up"), "USD")).toBe("0.00");
    expect(formatMoney(roundMoney(new Decimal("1234.5"), "JPY", "half_up"), "JPY")).toBe("1235");
    expect(formatMoney(new Decimal("32000"), "USD")).toBe("32000.00");
    expect(formatMoney(new Decimal("1.5"), "BHD")).toBe("1.500");
  });

  it("parses a decimal text into exactly what decimal.js's constructor makes of it (sign, exponent, words), or refuses it", () => {
    // Texts of every shape: plain ones (the fast path of money.ts) and the rest (leading zeros, trailing
    // zeros, signs, exponents, spaces, garbage), integer parts across several 7-digit words.
    const digits = (max: number) => fc.string({ unit: fc.constantFrom("0", "1", "5", "9"), maxLength: max });
    const text = fc.oneof(
      fc.tuple(fc.constantFrom("", "-"), digits(30), fc.option(digits(30), { nil: undefined })).map(([sign, i, f]) => `${sign}${i}${f === undefined ? "" : `.${f}`}`),
      fc.tuple(fc.constantFrom("", "-", "+", " "), fc.bigInt({ min: 0n, max: 10n ** 40n }), fc.nat(60), fc.constantFrom("", "0", "00", "e3", " ", "x")).map(
        ([sign, n, shift, tail]) => {
          const s = n.toString();
          const at = Math.max(0, s.length - (shift % (s.length + 3)));
          return `${sign}${s.slice(0, at) || "0"}${at < s.length ? `.${s.slice(at)}` : ""}${tail}`;
        },
      ),
    );
    const parts = (d: Decimal) => ({ s: (d as unknown as { s: number }).s, e: (d as unknown as { e: number }).e, d: (d as unknown as { d: number[] }).d });
    const reference = (t: string) => {
      if (!/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(t.trim())) return "refused";
      return parts(new Decimal(t.trim()));
    };
    const ours = (parse: (t: string) => Decimal, t: string) => {
      try {
        return parts(parse(t));
      } catch (e) {
        expect(e).toBeInstanceOf(RangeError);
        return "refused";
      }
    };
    fc.assert(
      fc.property(text, (t) => {
        const expected = reference(t);
        expect(ours(parseDecimal, t)).toEqual(expected);
        expect(ours(toDecimal, t)).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
    for (const t of ["0", "-0", "0.5", "-0.0001", "1000", "10000000", "1234567.1234567", "0.00000001", "12345678901234567890.5"]) {
      expect(ours(parseDecimal, t)).toEqual(reference(t));
    }
  });

  it("carries at least 34 significant digits", () => {
    expect(new Decimal(1).dividedBy(3).precision()).toBeGreaterThanOrEqual(34);
  });
});

describe("canonicalJson", () => {
  it("sorts keys, drops whitespace and undefined, writes decimals as plain strings", () => {
    expect(canonicalJson({ b: 1, a: [new Decimal("1e-10"), null, "x"], c: undefined, d: { z: true, y: new Decimal("1.50") } })).toBe(
      '{"a":["0.0000000001",null,"x"],"b":1,"d":{"y":"1.5","z":true}}',
    );
    expect(canonicalJson(new Date("2026-01-01T00:00:00Z"))).toBe('"2026-01-01T00:00:00.000Z"');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
  });
});

describe("usageWindows", () => {
  const meters = [perUnit("api", "1")];
  it("one window per segment of the period", () => {
    const input = buildInput({ versions: [{ terms: { meters } }, { from: "2026-01-11T00:00:00Z", terms: { meters } }] });
    expect(usageWindows(input)).toEqual([
      { from: "2026-01-01T00:00:00.000Z", to: "2026-01-11T00:00:00.000Z" },
      { from: "2026-01-11T00:00:00.000Z", to: "2026-02-01T00:00:00.000Z" },
    ]);
  });

  it("adds up to 3 prior periods of the term when a spike factor applies", () => {
    const input = buildInput({ versions: [{ terms: { meters, spikeFactor: "3" } }], period: "2026-03-01T00:00:00Z" });
    expect(usageWindows(input).map((w) => w.from)).toEqual([
      "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z",
    ]);
    const later = buildInput({ versions: [{ terms: { meters, spikeFactor: "3" } }], period: "2026-06-01T00:00:00Z" });
    expect(usageWindows(later)).toHaveLength(4);
  });

  it("adds every period of the term in its last period when a term commitment applies", () => {
    const input = buildInput({
      contract: { endDate: "2026-06-30" },
      versions: [{ terms: { meters, commitment: { amount: "10", scope: "term" } } }],
      period: "2026-06-01T00:00:00Z",
    });
    expect(usageWindows(input)).toHaveLength(6);
    expect(usageWindows({ ...input, period: { start: "2026-05-01T00:00:00.000Z", end: "2026-06-01T00:00:00.000Z" } })).toHaveLength(1);
  });
});

describe("input validation", () => {
  const meters = [perUnit("api", "1")];
  it("rejects a period that is not a period of the contract", () => {
    const input = buildInput({ versions: [{ terms: { meters } }] });
    expect(() => ratePeriod({ ...input, period: { start: "2026-01-02T00:00:00Z", end: "2026-02-01T00:00:00Z" } })).toThrow(RatingInputError);
    expect(() => ratePeriod({ ...input, period: { start: "2026-01-01T00:00:00Z", end: "2026-02-02T00:00:00Z" } })).toThrow(RatingInputError);
  });

  it("rejects unknown currencies, non-decimal quantities and duplicate versions", () => {
    const input = buildInput({ versions: [{ terms: { meters } }], usage: { api: "1" } });
    expect(() => ratePeriod({ ...input, contract: { ...input.contract, currency: "XYZ" } })).toThrow(RatingInputError);
    expect(() => ratePeriod({ ...input, usage: [{ ...input.usage[0]!, quantity: "1e3" }] })).toThrow(RatingInputError);
    expect(() => ratePeriod({ ...input, alreadyBilled: "12,00" })).toThrow(RatingInputError);
    expect(() => ratePeriod({ ...input, versions: [input.versions[0]!, input.versions[0]!] })).toThrow(RatingInputError);
  });

  it("puts ENGINE_VERSION and a sha256 inputsHash into every result; ignores usage of windows it does not read", () => {
    const input = buildInput({ versions: [{ terms: { meters } }], usage: { api: "1" } });
    const r = ratePeriod(input);
    expect(r.engineVersion).toBe(ENGINE_VERSION);
    expect(r.inputsHash).toMatch(/^[0-9a-f]{64}$/);
    const extra = ratePeriod({ ...input, usage: [...input.usage, { from: "2025-12-01T00:00:00Z", to: "2026-01-01T00:00:00Z", metric: "api", quantity: "5" }] });
    expect(extra).toEqual(r);
  });

  it("a period with no version at all is one missing_terms gap and bills nothing", () => {
    const r = rate({ versions: [{ from: "2026-03-01T00:00:00Z", terms: { meters } }], period: "2026-01-01T00:00:00Z" });
    expect(r.segments).toEqual([{ from: "2026-01-01T00:00:00.000Z", to: "2026-02-01T00:00:00.000Z", version: null, fraction: "1" }]);
    expect(r.lines).toEqual([]);
    expect(r.exceptions.map((e) => e.kind)).toEqual(["missing_terms"]);
  });
});
