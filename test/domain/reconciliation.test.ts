// The pure core of the three-way reconciliation (DESIGN.md §7.1): classification of one key, the run's
// statement and watch-list, request validation, and a break's money as the rating engine prices it.
// No database: rating inputs are built with the same fixtures as the rating tests.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError, type FieldIssue } from "../../src/errors.js";
import {
  Decimal,
  OWNER_OF,
  RECONCILIATION_CLASSES,
  RECONCILIATION_LIMITS,
  classify,
  invoicedOf,
  keyOf,
  parseReconciliationRequest,
  priceBreaks,
  roundMoney,
  sourceOf,
  statementOf,
  watchlistOf,
  type BreakUnits,
  type ClassifiedKey,
  type ContractTermsInput,
  type KeyFigures,
  type RatingInput,
  type ReconciliationClass,
} from "../../src/domain/index.js";
import { baseContract, buildInput, perUnit, rate } from "./fixtures.js";

const d = (v: string | number | bigint) => new Decimal(typeof v === "bigint" ? v.toString() : v);

// ---- 1. classify: one case per class, and the precedence between the rules ------------------------------

/** Figures of one key; numbers are units in the metered unit. */
function fig(f: { r: number; m: number; inv: number; memos?: number; late?: number; version?: boolean; mapped?: boolean }): KeyFigures {
  return {
    mapped: f.mapped ?? true,
    raw: d(f.r),
    metered: d(f.m),
    invoices: d(f.inv),
    creditMemos: d(f.memos ?? 0),
    late: d(f.late ?? 0),
    versionInside: f.version ?? false,
  };
}

interface ClassCase {
  name: string;
  k: KeyFigures;
  class: ReconciliationClass;
  source: "billing" | "metering" | "both" | null;
}

const classCases: ClassCase[] = [
  // one per class
  { name: "R = M = I → match", k: fig({ r: 100, m: 100, inv: 100 }), class: "match", source: null },
  { name: "I = R − L, L ≠ 0 → timing", k: fig({ r: 100, m: 100, inv: 90, late: 10 }), class: "timing", source: "billing" },
  { name: "invoices = R, a credit memo explains the rest → credit", k: fig({ r: 100, m: 100, inv: 100, memos: 20 }), class: "credit", source: "billing" },
  { name: "I ≠ R with a version inside the window → proration", k: fig({ r: 100, m: 100, inv: 90, version: true }), class: "proration", source: "billing" },
  { name: "I < R → under_bill", k: fig({ r: 100, m: 100, inv: 90 }), class: "under_bill", source: "billing" },
  { name: "I > R → over_bill", k: fig({ r: 100, m: 100, inv: 120 }), class: "over_bill", source: "billing" },
  { name: "I = R, M ≠ R → metering (the bill is right)", k: fig({ r: 100, m: 90, inv: 100 }), class: "metering", source: "metering" },
  { name: "no contract → unmapped", k: fig({ r: 100, m: 100, inv: 90, mapped: false }), class: "unmapped", source: "billing" },

  // precedence
  { name: "unmapped wins over match-shaped figures", k: fig({ r: 5, m: 5, inv: 5, mapped: false }), class: "unmapped", source: null },
  { name: "unmapped wins over timing, credit and proration shapes", k: fig({ r: 100, m: 100, inv: 100, memos: 10, late: 10, version: true, mapped: false }), class: "unmapped", source: "billing" },
  { name: "match wins over late units and a version inside", k: fig({ r: 100, m: 100, inv: 100, late: 30, version: true }), class: "match", source: null },
  { name: "timing-shaped with a version inside → timing", k: fig({ r: 100, m: 100, inv: 90, late: 10, version: true }), class: "timing", source: "billing" },
  { name: "timing-shaped and credit-shaped → timing (tried first)", k: fig({ r: 100, m: 100, inv: 100, memos: 10, late: 10 }), class: "timing", source: "billing" },
  { name: "invoices = R with a credit memo and a version inside → credit", k: fig({ r: 100, m: 100, inv: 100, memos: 20, version: true }), class: "credit", source: "billing" },
  { name: "late units that do not explain the gap → not timing (under_bill)", k: fig({ r: 100, m: 100, inv: 80, late: 10 }), class: "under_bill", source: "billing" },
  { name: "a credit memo, but invoices ≠ R → not credit (over_bill)", k: fig({ r: 100, m: 100, inv: 130, memos: 10 }), class: "over_bill", source: "billing" },
  { name: "over-bill with a version inside → proration", k: fig({ r: 100, m: 100, inv: 110, version: true }), class: "proration", source: "billing" },
  { name: "I = R with M ≠ R and a version inside → metering (proration needs I ≠ R)", k: fig({ r: 100, m: 70, inv: 100, version: true }), class: "metering", source: "metering" },
  { name: "I = R with M ≠ R and late units → metering (I ≠ R − L)", k: fig({ r: 100, m: 70, inv: 100, late: 5 }), class: "metering", source: "metering" },

  // sources
  { name: "source metering: M ≠ R, I = M", k: fig({ r: 100, m: 90, inv: 90 }), class: "under_bill", source: "metering" },
  { name: "source both: R, M, I all differ", k: fig({ r: 100, m: 90, inv: 80 }), class: "under_bill", source: "both" },
  { name: "source both on an over-bill", k: fig({ r: 100, m: 110, inv: 120 }), class: "over_bill", source: "both" },
];

describe("classify", () => {
  it.each(classCases)("$name", (c) => {
    expect(classify(c.k)).toEqual({ class: c.class, source: c.source, owner: OWNER_OF[c.class] });
  });

  it("routes each class to its owner (step 5)", () => {
    expect(OWNER_OF).toEqual({
      match: "none",
      under_bill: "revops",
      over_bill: "csm",
      timing: "watchlist",
      proration: "revops",
      credit: "none",
      metering: "data",
      unmapped: "revops",
    });
  });

  it("I is invoices minus credit memos", () => {
    expect(invoicedOf({ invoices: d("100.5"), creditMemos: d("20.25") }).toFixed()).toBe("80.25");
  });

  it("sourceOf: billing, metering (I = M or I = R), both, null", () => {
    expect(sourceOf(d(1), d(1), d(2))).toBe("billing");
    expect(sourceOf(d(1), d(2), d(2))).toBe("metering");
    expect(sourceOf(d(1), d(2), d(1))).toBe("metering");
    expect(sourceOf(d(1), d(2), d(3))).toBe("both");
    expect(sourceOf(d(1), d(1), d(1))).toBeNull();
    // equality is numeric, not textual
    expect(sourceOf(d("1.0"), d("1"), d("1.000"))).toBeNull();
  });
});

// ---- 2. classify: properties --------------------------------------------------------------------------

// Small integer-ish decimals (halves in 0..3) so that the equalities the rules test happen often.
const units = fc.bigInt({ min: 0n, max: 6n }).map((n) => d(n).dividedBy(2));
const figuresArb: fc.Arbitrary<KeyFigures> = fc.record({
  mapped: fc.boolean(),
  raw: units,
  metered: units,
  invoices: units,
  creditMemos: fc.oneof(fc.constant(d(0)), units),
  late: fc.oneof(fc.constant(d(0)), units),
  versionInside: fc.boolean(),
});

/** DESIGN §7.1 step 4, written out independently: the rules in order; the class is the first that holds. */
function designRules(k: KeyFigures): Array<[ReconciliationClass, boolean]> {
  const r = k.raw, m = k.metered, i = k.invoices.minus(k.creditMemos), l = k.late;
  return [
    ["unmapped", !k.mapped],
    ["match", r.eq(m) && m.eq(i)],
    ["timing", i.eq(r.minus(l)) && !l.isZero()],
    ["credit", !i.eq(r) && k.invoices.eq(r) && k.creditMemos.gt(0)],
    ["proration", !i.eq(r) && k.versionInside],
    ["under_bill", i.lt(r)],
    ["over_bill", i.gt(r)],
    ["metering", i.eq(r) && !m.eq(r)],
  ];
}

describe("classify: properties", () => {
  it("exactly one class per key: the first DESIGN rule that holds (and some rule always holds)", () => {
    fc.assert(
      fc.property(figuresArb, (k) => {
        const holding = designRules(k).filter(([, holds]) => holds);
        expect(holding.length).toBeGreaterThan(0);
        const c = classify(k).class;
        expect(RECONCILIATION_CLASSES).toContain(c);
        expect(c).toBe(holding[0]![0]);
      }),
    );
  });

  it("match iff mapped and R = M = I", () => {
    fc.assert(
      fc.property(figuresArb, (k) => {
        const i = invoicedOf(k);
        expect(classify(k).class === "match").toBe(k.mapped && k.raw.eq(k.metered) && k.raw.eq(i));
      }),
    );
  });

  it("under_bill ⇒ I < R; over_bill ⇒ I > R; metering ⇒ I = R ≠ M; timing ⇒ I = R − L, L ≠ 0", () => {
    fc.assert(
      fc.property(figuresArb, (k) => {
        const i = invoicedOf(k);
        const c = classify(k).class;
        if (c === "under_bill") expect(i.lt(k.raw)).toBe(true);
        if (c === "over_bill") expect(i.gt(k.raw)).toBe(true);
        if (c === "metering") expect(i.eq(k.raw) && !k.metered.eq(k.raw)).toBe(true);
        if (c === "timing") expect(!k.late.isZero() && i.eq(k.raw.minus(k.late))).toBe(true);
        if (c === "credit") expect(k.invoices.eq(k.raw) && !k.creditMemos.isZero() && !i.eq(k.raw)).toBe(true);
        if (c === "proration") expect(k.versionInside && !i.eq(k.raw)).toBe(true);
      }),
    );
  });

  it("owner is always OWNER_OF[class]; source is null iff R = M = I", () => {
    fc.assert(
      fc.property(figuresArb, (k) => {
        const out = classify(k);
        expect(out.owner).toBe(OWNER_OF[out.class]);
        const i = invoicedOf(k);
        expect(out.source === null).toBe(k.raw.eq(k.metered) && k.raw.eq(i));
        // a mapped break always names the wrong side
        if (k.mapped && out.class !== "match") expect(out.source).not.toBeNull();
      }),
    );
  });
});

// ---- 3. statementOf ------------------------------------------------------------------------------------

const key = (cls: ReconciliationClass, unitsText: string, amount: string | null, currency: string | null = "USD", customerId = "acme", metric = "api"): ClassifiedKey => ({
  customerId,
  metric,
  class: cls,
  units: d(unitsText),
  amount: amount === null ? null : d(amount),
  currency,
});

describe("statementOf", () => {
  it("one currency: per-class keys, units and money; totals; under- and over-billed as positive amounts", () => {
    const s = statementOf([
      key("match", "0", "0"),
      key("under_bill", "100", "5.00"),
      key("under_bill", "50", "2.5"),
      key("over_bill", "-20", "-1.00"),
      key("timing", "10", "0.50"),
      key("metering", "0", "0"),
      key("unmapped", "30", null, null), // no contract: no money, no currency
    ]);
    expect(s.currency).toBe("USD");
    expect(s.totals).toEqual({ keys: 7, breaks: 6, underBilled: "7.50", overBilled: "1.00" });
    expect(s.counts.under_bill).toEqual({ keys: 2, units: "150", amount: "7.50" });
    expect(s.counts.over_bill).toEqual({ keys: 1, units: "-20", amount: "-1.00" });
    expect(s.counts.timing).toEqual({ keys: 1, units: "10", amount: "0.50" });
    expect(s.counts.match).toEqual({ keys: 1, units: "0", amount: "0.00" });
    // the unmapped key counts, with its units, but brings no money
    expect(s.counts.unmapped).toEqual({ keys: 1, units: "30", amount: "0.00" });
    expect(s.counts.credit).toEqual({ keys: 0, units: "0", amount: "0.00" });
    expect(Object.keys(s.byCurrency)).toEqual(["USD"]);
    expect(s.byCurrency.USD!.underBilled).toBe("7.50");
    expect(s.byCurrency.USD!.overBilled).toBe("1.00");
    expect(s.byCurrency.USD!.counts.unmapped.keys).toBe(0);
  });

  it("two currencies: no one total (currency and top-level amounts null), byCurrency per currency", () => {
    const s = statementOf([
      key("under_bill", "100", "5.00", "USD", "acme"),
      key("over_bill", "-40", "-2.25", "USD", "acme", "storage"),
      key("under_bill", "10", "1234", "JPY", "kabu"),
      key("over_bill", "-3", "-300", "JPY", "kabu", "storage"),
      key("match", "0", "0", "JPY", "kabu", "seats"),
    ]);
    expect(s.currency).toBeNull();
    expect(s.totals).toEqual({ keys: 5, breaks: 4, underBilled: null, overBilled: null });
    for (const cls of RECONCILIATION_CLASSES) expect(s.counts[cls].amount).toBeNull();
    // keys and units still add up across currencies
    expect(s.counts.under_bill).toEqual({ keys: 2, units: "110", amount: null });
    expect(Object.keys(s.byCurrency)).toEqual(["JPY", "USD"]);
    expect(s.byCurrency.USD).toMatchObject({ underBilled: "5.00", overBilled: "2.25" });
    expect(s.byCurrency.USD!.counts.over_bill).toEqual({ keys: 1, units: "-40", amount: "-2.25" });
    // JPY has no minor unit
    expect(s.byCurrency.JPY).toMatchObject({ underBilled: "1234", overBilled: "300" });
    expect(s.byCurrency.JPY!.counts.match).toEqual({ keys: 1, units: "0", amount: "0" });
  });

  it('no priced keys: amounts are "0" and there is no currency', () => {
    for (const keys of [[], [key("unmapped", "12", null, null), key("unmapped", "-3", null, null, "other")]]) {
      const s = statementOf(keys);
      expect(s.currency).toBeNull();
      expect(s.byCurrency).toEqual({});
      expect(s.totals.underBilled).toBe("0");
      expect(s.totals.overBilled).toBe("0");
      for (const cls of RECONCILIATION_CLASSES) expect(s.counts[cls].amount).toBe("0");
      expect(s.totals.keys).toBe(keys.length);
    }
  });

  // Random single-currency runs: an under-bill's money is positive, an over-bill's negative, the rest any.
  const cents = fc.integer({ min: 0, max: 100_000 }).map((n) => d(n).dividedBy(100));
  const classifiedArb: fc.Arbitrary<ClassifiedKey> = fc
    .tuple(fc.constantFrom(...RECONCILIATION_CLASSES), fc.integer({ min: -1000, max: 1000 }), cents, fc.boolean())
    .map(([cls, u, c, neg]) => {
      if (cls === "unmapped") return { customerId: "x", metric: "api", class: cls, units: d(u), amount: null, currency: null };
      const amount = cls === "match" ? d(0) : cls === "under_bill" ? c : cls === "over_bill" ? c.negated() : neg ? c.negated() : c;
      return { customerId: "acme", metric: "api", class: cls, units: d(u), amount, currency: "USD" };
    });

  it("property: counts add up to totals.keys; breaks = keys − match; under/overBilled are the sums, both ≥ 0", () => {
    fc.assert(
      fc.property(fc.array(classifiedArb, { maxLength: 30 }), (keys) => {
        const s = statementOf(keys);
        const total = RECONCILIATION_CLASSES.reduce((n, cls) => n + s.counts[cls].keys, 0);
        expect(total).toBe(s.totals.keys);
        expect(s.totals.keys).toBe(keys.length);
        expect(s.totals.breaks).toBe(keys.length - s.counts.match.keys);
        const sumOf = (cls: ReconciliationClass) => keys.filter((k) => k.class === cls).reduce((a, k) => a.plus(k.amount ?? 0), d(0));
        const priced = keys.some((k) => k.currency !== null);
        if (!priced) {
          expect(s.totals.underBilled).toBe("0");
          return;
        }
        expect(s.totals.underBilled).toBe(sumOf("under_bill").toFixed(2));
        expect(s.totals.overBilled).toBe(sumOf("over_bill").negated().toFixed(2).replace(/^-0\.00$/, "0.00"));
        expect(d(s.totals.overBilled!).gte(0)).toBe(true);
        for (const cls of RECONCILIATION_CLASSES) {
          const unitSum = keys.filter((k) => k.class === cls).reduce((a, k) => a.plus(k.units), d(0));
          expect(d(s.counts[cls].units).eq(unitSum)).toBe(true);
          expect(d(s.counts[cls].amount!).eq(sumOf(cls))).toBe(true);
        }
      }),
    );
  });
});

// ---- 4. watchlistOf ------------------------------------------------------------------------------------

describe("watchlistOf", () => {
  const a = keyOf("acme", "api"), b = keyOf("acme", "storage"), c = keyOf("beta", "api");

  it("a previous timing key that matches now is cleared; any other class persists", () => {
    const now = new Map<string, ReconciliationClass>([[a, "match"], [b, "timing"], [c, "under_bill"]]);
    expect(watchlistOf(new Set([a, b, c]), (k) => now.get(k)!)).toEqual({ cleared: 1, persisting: 2 });
  });

  it("keys that were not timing last time do not count; no previous run → 0 and 0", () => {
    expect(watchlistOf(new Set([a]), () => "match")).toEqual({ cleared: 1, persisting: 0 });
    expect(watchlistOf(new Set(), () => "under_bill")).toEqual({ cleared: 0, persisting: 0 });
  });

  it("keyOf separates customer and metric unambiguously", () => {
    expect(keyOf("a", "bc")).not.toBe(keyOf("ab", "c"));
  });
});

// ---- 5. parseReconciliationRequest ---------------------------------------------------------------------

function issuesOf(body: unknown): FieldIssue[] {
  try {
    parseReconciliationRequest(body);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).issues;
  }
  throw new Error("expected a ValidationError");
}
const fieldsOf = (body: unknown) => issuesOf(body).map((i) => i.field).sort();

const validBody = () => ({
  periodStart: "2026-07-01T02:00:00+02:00",
  periodEnd: "2026-10-01T00:00:00Z",
  unitConversions: { api_calls: "0.0010" },
  metered: [{ customerId: "acme", metric: "api_calls", quantity: "0010.50" }],
  invoiced: [
    { customerId: "acme", metric: "api_calls", quantity: "1400.000", amount: "32.00", invoiceRef: "in_1Q", invoicedAt: "2026-10-02T09:00:00.5Z" },
    { customerId: "acme", metric: "api_calls", quantity: "0", invoicedAt: "2026-10-03T09:00:00.123456Z", kind: "credit_memo" },
  ],
});

describe("parseReconciliationRequest", () => {
  it("normalises a valid body: quantities, conversions, default kind, UTC microsecond instants (amounts as sent)", () => {
    const req = parseReconciliationRequest(validBody());
    expect(req).toEqual({
      periodStart: "2026-07-01T00:00:00.000000Z",
      periodEnd: "2026-10-01T00:00:00.000000Z",
      periodStartMs: Date.parse("2026-07-01T00:00:00Z"),
      periodEndMs: Date.parse("2026-10-01T00:00:00Z"),
      unitConversions: { api_calls: "0.001" },
      metered: [{ customerId: "acme", metric: "api_calls", quantity: "10.5" }],
      invoiced: [
        {
          customerId: "acme", metric: "api_calls", quantity: "1400", amount: "32.00", invoiceRef: "in_1Q",
          invoicedAt: "2026-10-02T09:00:00.500000Z", invoicedAtMs: Date.parse("2026-10-02T09:00:00.5Z"), kind: "invoice",
        },
        {
          customerId: "acme", metric: "api_calls", quantity: "0", amount: null, invoiceRef: null,
          invoicedAt: "2026-10-03T09:00:00.123456Z", invoicedAtMs: Date.parse("2026-10-03T09:00:00.123Z"), kind: "credit_memo",
        },
      ],
    });
  });

  it("invoiced omitted → null (take this service's documents); metered may be empty; negative amounts allowed", () => {
    const { invoiced: _omit, ...rest } = validBody();
    const req = parseReconciliationRequest({ ...rest, unitConversions: undefined, metered: [] });
    expect(req.invoiced).toBeNull();
    expect(req.metered).toEqual([]);
    expect(req.unitConversions).toEqual({});
    const adj = parseReconciliationRequest({ ...validBody(), invoiced: [{ ...validBody().invoiced[0]!, amount: "-12.500000" }] });
    expect(adj.invoiced![0]!.amount).toBe("-12.500000");
  });

  it("names every bad path at once", () => {
    const body = {
      periodStart: "2026-10-01T00:00:00Z",
      periodEnd: "2026-10-01T00:00:00Z", // = periodStart
      extra: true, // unknown top-level field
      unitConversions: { api_calls: "0", "bad metric": "1", storage: 2, ok: "1.5" },
      metered: [
        { customerId: "acme", metric: "api_calls", quantity: 10, note: "x" }, // a JSON number; an unknown field
        "not a row",
        { customerId: "has space", metric: "api", quantity: "-1" },
        { customerId: "acme", metric: "api", quantity: "1" }, // valid
      ],
      invoiced: [
        { customerId: "acme", metric: "api_calls", quantity: "1", amount: 32, kind: "refund", ref: "x" }, // invoicedAt missing
        { customerId: "acme", metric: "api_calls", quantity: "1", invoicedAt: "2026-10-02", invoiceRef: "", amount: "1.1234567" },
      ],
    };
    expect(fieldsOf(body)).toEqual(
      [
        "extra",
        "periodEnd",
        "unitConversions.api_calls",
        "unitConversions.bad metric",
        "unitConversions.storage",
        "metered.0.note",
        "metered.0.quantity",
        "metered.1",
        "metered.2.customerId",
        "metered.2.quantity",
        "invoiced.0.ref",
        "invoiced.0.amount",
        "invoiced.0.kind",
        "invoiced.0.invoicedAt",
        "invoiced.1.invoicedAt",
        "invoiced.1.invoiceRef",
        "invoiced.1.amount",
      ].sort(),
    );
    const byField = new Map(issuesOf(body).map((i) => [i.field, i.message]));
    expect(byField.get("periodEnd")).toBe("must be after periodStart");
    expect(byField.get("invoiced.0.invoicedAt")).toBe("is required");
    expect(byField.get("invoiced.0.amount")).toMatch(/never a JSON number/);
    expect(byField.get("metered.0.quantity")).toMatch(/never a JSON number/);
  });

  it("periodEnd before periodStart; missing and non-string fields; a body that is not an object", () => {
    expect(issuesOf({ periodStart: "2026-10-01T00:00:00Z", periodEnd: "2026-09-30T23:59:59Z", metered: [] })).toEqual([
      { field: "periodEnd", message: "must be after periodStart" },
    ]);
    expect(fieldsOf({})).toEqual(["metered", "periodEnd", "periodStart"]);
    expect(fieldsOf({ periodStart: 1, periodEnd: "x", metered: {}, invoiced: "y", unitConversions: [] })).toEqual(
      ["invoiced", "metered", "periodEnd", "periodStart", "unitConversions"],
    );
    expect(issuesOf([]).map((i) => i.field)).toEqual([""]);
    expect(issuesOf(null).map((i) => i.field)).toEqual([""]);
  });

  it('a conversion must be a positive decimal string: "0", "0.000", "-1", "1e3" are refused', () => {
    for (const factor of ["0", "0.000", "-1", "1e3", "", "1.1234567890123456789"]) {
      expect(fieldsOf({ ...validBody(), unitConversions: { api_calls: factor } })).toEqual(["unitConversions.api_calls"]);
    }
  });

  it(`more than ${RECONCILIATION_LIMITS.maxRows} rows → one issue on the array, not one per row`, () => {
    const over = Array.from({ length: RECONCILIATION_LIMITS.maxRows + 1 }, () => null); // every row bad, too
    expect(issuesOf({ ...validBody(), metered: over })).toEqual([{ field: "metered", message: `must hold at most ${RECONCILIATION_LIMITS.maxRows} rows` }]);
    expect(fieldsOf({ ...validBody(), invoiced: over })).toEqual(["invoiced"]);
    // exactly the limit is accepted
    const row = { customerId: "acme", metric: "api", quantity: "1" };
    const atLimit = Array.from({ length: RECONCILIATION_LIMITS.maxRows }, () => row);
    expect(parseReconciliationRequest({ ...validBody(), metered: atLimit }).metered).toHaveLength(RECONCILIATION_LIMITS.maxRows);
  });

  // A metric the usage rules accept may name an Object.prototype member: its conversion is an own entry
  // ("__proto__" is not swallowed by the prototype setter) and nothing is inherited ("constructor").
  it("keeps a conversion for a metric named __proto__ and inherits nothing", () => {
    const body = JSON.parse('{"periodStart":"2026-07-01T00:00:00Z","periodEnd":"2026-08-01T00:00:00Z","metered":[],"unitConversions":{"__proto__":"0.001"}}');
    const req = parseReconciliationRequest(body);
    expect(Object.entries(req.unitConversions)).toEqual([["__proto__", "0.001"]]);
    expect(req.unitConversions["constructor"]).toBeUndefined();
  });
});

// ---- 6. priceBreaks ------------------------------------------------------------------------------------

const JAN = "2026-01-01T00:00:00Z";
const FEB = "2026-02-01T00:00:00Z";
const contract = baseContract; // monthly, USD, half_up

/** The rating inputs of January and February 2026 under one version, with the given api usage per month. */
function months(t: ContractTermsInput, usage: Array<string | null>): RatingInput[] {
  return [JAN, FEB].slice(0, usage.length).map((period, i) => buildInput({ versions: [{ terms: t }], period, usage: usage[i] === null ? undefined : { api: usage[i]! } }));
}
const brk = (raw: string, invoiced: string): Map<string, BreakUnits> => new Map([["api", { raw: d(raw), invoiced: d(invoiced) }]]);
const money = (m: Map<string, { raw: Decimal; invoiced: Decimal; amount: Decimal }>, metric = "api") => {
  const c = m.get(metric)!;
  return { raw: c.raw.toFixed(), invoiced: c.invoiced.toFixed(), amount: c.amount.toFixed() };
};

const flat = { meters: [perUnit("api", "0.05")] };
const withIncluded = { meters: [perUnit("api", "0.05", { included: "1000" })] };
const tiered = {
  meters: [{ metric: "api", pricing: { model: "graduated" as const, tiers: [{ upTo: "1000", unitPrice: "0.10" }, { upTo: null, unitPrice: "0.05" }] } }],
};

describe("priceBreaks", () => {
  it("per_unit 0.05, no included units: amount = (R − I) × 0.05 = (4000 − 2500) × 0.05 = 75.00", () => {
    const out = priceBreaks(contract, months(flat, ["3000", "1000"]), brk("4000", "2500"));
    expect(money(out)).toEqual({ raw: "200", invoiced: "125", amount: "75" });
  });

  it("an over-bill is negative: (1000 − 1333) × 0.05 = −16.65", () => {
    const out = priceBreaks(contract, months(flat, ["1000"]), brk("1000", "1333"));
    expect(money(out).amount).toBe("-16.65");
  });

  it("included 1000/month, R = 3000 (Jan) + 1000 (Feb), I = 2000: money follows the periods, not (R − I) × price", () => {
    // R: Jan (3000 − 1000) × 0.05 = 100, Feb max(0, 1000 − 1000) = 0            → 100
    // I = R × 2000/4000: Jan 1500 → (1500 − 1000) × 0.05 = 25, Feb 500 → 0        →  25
    // amount 100 − 25 = 75.00 (a flat (4000 − 2000) × 0.05 would say 100.00)
    const out = priceBreaks(contract, months(withIncluded, ["3000", "1000"]), brk("4000", "2000"));
    expect(money(out)).toEqual({ raw: "100", invoiced: "25", amount: "75" });
  });

  it("graduated 1000 @ 0.10 then 0.05: money ≠ units × one price", () => {
    // R 3000: 1000 × 0.10 + 2000 × 0.05 = 200; I 500: 500 × 0.10 = 50 → 150.00
    // (2500 units × 0.10 = 250, × 0.05 = 125: neither price alone gives the break's money)
    const out = priceBreaks(contract, months(tiered, ["3000"]), brk("3000", "500"));
    const c = out.get("api")!;
    expect(c.amount.toFixed()).toBe("150");
    expect(c.raw.toFixed()).toBe("200");
    // I is R × 500/3000 at 50 significant digits: the unrounded charge may carry a 1e-48 artefact
    expect(c.invoiced.toDecimalPlaces(20).toFixed()).toBe("50");
  });

  it("I = R → amount 0, whatever the terms", () => {
    for (const t of [flat, withIncluded, tiered]) {
      const out = priceBreaks(contract, months(t, ["2500", "700"]), brk("3200", "3200"));
      expect(out.get("api")!.amount.isZero()).toBe(true);
      expect(out.get("api")!.raw.eq(out.get("api")!.invoiced)).toBe(true);
    }
  });

  it("R = 0 and I > 0: all of I goes to the last rated period; amount = −(charge of I there)", () => {
    // I = 1500 in February: (1500 − 1000) × 0.05 = 25 → −25.00 (spread over both months it would be 0)
    const out = priceBreaks(contract, months(withIncluded, [null, null]), brk("0", "1500"));
    const feb = rate({ versions: [{ terms: withIncluded }], period: FEB, usage: { api: "1500" } });
    const febCharge = d(feb.lines.find((l) => l.kind === "usage" && l.metric === "api")!.unroundedAmount);
    expect(febCharge.toFixed()).toBe("25");
    expect(money(out)).toEqual({ raw: "0", invoiced: "25", amount: "-25" });
    expect(out.get("api")!.amount.eq(febCharge.negated())).toBe(true);
  });

  it("no breaks → nothing priced; a metric not broken is left alone", () => {
    expect(priceBreaks(contract, months(flat, ["10"]), new Map()).size).toBe(0);
    const inputs = [buildInput({ versions: [{ terms: { meters: [perUnit("api", "0.05"), perUnit("storage", "2")] } }], usage: { api: "1000", storage: "10" } })];
    const out = priceBreaks(contract, inputs, brk("1000", "900"));
    expect([...out.keys()]).toEqual(["api"]);
    expect(money(out).amount).toBe("5");
  });

  it("an amendment inside the period: I is spread over the segments in proportion to R", () => {
    // v1 0.05 from Jan 1, v2 0.10 from Jan 11. R = 1000 + 3000 → 50 + 300 = 350.
    // I = 2000 = half of R: 500 + 1500 → 25 + 150 = 175; amount 175.00 (all of I in v2 would give 150.00)
    const input = buildInput({
      versions: [{ terms: flat }, { from: "2026-01-11T00:00:00Z", terms: { meters: [perUnit("api", "0.10")] } }],
      usage: [{ api: "1000" }, { api: "3000" }],
    });
    const out = priceBreaks(contract, [input], brk("4000", "2000"));
    expect(money(out)).toEqual({ raw: "350", invoiced: "175", amount: "175" });
  });

  /** (R − I) × price lies exactly on half a minor unit: see the BUG case below. */

  it("property: per_unit without included units → amount = round((R − I) × price), R split over two months", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50_000 }),
        fc.integer({ min: 0, max: 50_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 1, max: 20_000 }).map((n) => d(n).dividedBy(10_000).toFixed()), // price in 1/10,000
        (jan, feb, inv, price) => {
          const r = jan + feb;
          const exact = d(r - inv).times(price);
          const out = priceBreaks(contract, months({ meters: [perUnit("api", price)] }, [String(jan), String(feb)]), brk(String(r), String(inv)));
          expect(out.get("api")!.amount.toFixed()).toBe(roundMoney(exact, "USD", "half_up").toFixed());
        },
      ),
    );
  });

  // Regression (found by the property above, seed -1097558079): the invoiced shares must add up to I exactly.
  // Scaling by a factor I / R rounded to 50 digits gave 14 × (55291 / 14) = 55290.99…9, an invoiced charge of
  // 6911.37499…9 and, on this half-cent tie, −6909.62 instead of (14 − 55291) × 0.125 = −6909.625 → −6909.63.
  it("a half-cent tie is rounded like the exact difference", () => {
    for (const usage of [["14"], ["12", "2"]]) {
      const out = priceBreaks(contract, months({ meters: [perUnit("api", "0.125")] }, usage), brk("14", "55291"));
      expect(out.get("api")!.invoiced.toDecimalPlaces(18).toFixed()).toBe("6911.375");
      expect(out.get("api")!.amount.toFixed()).toBe("-6909.63");
    }
  });
});
