// Property-based tests of "what a meter measures" (DESIGN §3) and the minimum to the cent (§4, rule 9), fed
// from plain events through the reference definition (aggregateEvents) exactly as usageRequest() asks.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Decimal,
  aggregateEvents,
  measureOf,
  minorUnits,
  ratePeriod,
  roundMoney,
  usageRequest,
  type ContractTermsInput,
  type Line,
  type RatingResult,
} from "../../src/domain/index.js";
import { type MetricEvent, type Spec, buildInput, inputFromEvents } from "./fixtures.js";

const rateEvents = (spec: Spec, events: readonly MetricEvent[]): RatingResult => ratePeriod(inputFromEvents(spec, events));
const usageLines = (r: RatingResult): Line[] => r.lines.filter((l) => l.kind === "usage");

// ---- arbitraries --------------------------------------------------------------------------------------

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const JAN = { start: Date.UTC(2026, 0, 1), end: Date.UTC(2026, 1, 1) };

const decimalString = (maxInt: number, decimals: number) =>
  fc
    .tuple(fc.integer({ min: 0, max: maxInt }), fc.integer({ min: 0, max: 10 ** decimals - 1 }))
    .map(([i, f]) => (decimals === 0 ? String(i) : `${i}.${String(f).padStart(decimals, "0")}`));

/** An instant around January 2026: any millisecond, or a whole day/hour (so events share instants and bounds). */
const instant = (fromMs: number, toMs: number) =>
  fc.oneof(
    fc.integer({ min: fromMs, max: toMs - 1 }),
    fc.integer({ min: 0, max: Math.floor((toMs - 1 - fromMs) / DAY) }).map((d) => fromMs + d * DAY),
    fc.integer({ min: 0, max: Math.floor((toMs - 1 - fromMs) / HOUR) }).map((h) => fromMs + h * HOUR),
  );

const propertiesArb = fc.option(
  fc.record(
    { region: fc.constantFrom("eu", "us", "ap"), user: fc.constantFrom<unknown>("a", "b", "c", 1, "1", null), plan: fc.constantFrom("pro", "team") },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

const eventArb = (metrics: readonly string[], fromMs = JAN.start - 45 * DAY, toMs = JAN.end + 10 * DAY) =>
  fc.record({
    metric: fc.constantFrom(...metrics),
    at: instant(fromMs, toMs),
    quantity: decimalString(1000, 3),
    properties: propertiesArb,
    voided: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
    received: fc.integer({ min: 0, max: 3 }),
  });

/** Events with unique ids (ties at one instant and arrival are then broken by id, deterministically). */
const eventsArb = (metrics: readonly string[], maxLength = 25, range?: [number, number]) =>
  fc
    .array(range ? eventArb(metrics, range[0], range[1]) : eventArb(metrics), { maxLength })
    .map((list) => list.map((e, i): MetricEvent => ({ ...e, id: `e${String(i).padStart(3, "0")}`, properties: e.properties ?? null })));

/** 0–3 amendment instants strictly inside January (hours), sorted and distinct. */
const cutsArb = fc
  .uniqueArray(fc.integer({ min: 1, max: 31 * 24 - 1 }), { maxLength: 3 })
  .map((hours) => [...hours].sort((a, b) => a - b).map((h) => new Date(JAN.start + h * HOUR).toISOString()));

const versionsWith = (t: ContractTermsInput, cuts: readonly string[]): Spec["versions"] => [{ terms: t }, ...cuts.map((from) => ({ from, terms: t }))];

/** Every aggregation, and two filtered meters of one metric. */
const allMeters: ContractTermsInput["meters"] = [
  { metric: "calls", pricing: { model: "per_unit", unitPrice: "0.013" } },
  { metric: "tx", aggregation: "count", included: "3", pricing: { model: "per_unit", unitPrice: "0.5" } },
  { metric: "peak", aggregation: "max", pricing: { model: "graduated", tiers: [{ upTo: "500", unitPrice: "0.1", flatFee: "5" }, { upTo: null, unitPrice: "0.2" }] } },
  { metric: "end", aggregation: "latest", pricing: { model: "volume", tiers: [{ upTo: "100", unitPrice: "1" }, { upTo: null, unitPrice: "0.5", flatFee: "7" }] } },
  { metric: "users", aggregation: "unique_count", uniqueBy: "user", pricing: { model: "per_unit", unitPrice: "3" } },
  { metric: "seats", aggregation: "time_weighted", included: "100", pricing: { model: "per_unit", unitPrice: "0.77" } },
  { id: "api-eu", metric: "api", filter: { region: ["eu"] }, pricing: { model: "per_unit", unitPrice: "0.1" } },
  { id: "api-us", metric: "api", aggregation: "max", filter: { region: ["us"] }, pricing: { model: "per_unit", unitPrice: "0.2" } },
];
const allMetrics = ["calls", "tx", "peak", "end", "users", "seats", "api"] as const;

const scenarioArb = fc.record({
  currency: fc.constantFrom("USD", "JPY"),
  roundingMode: fc.constantFrom("half_up" as const, "half_even" as const),
  cuts: cutsArb,
  spike: fc.boolean(),
  events: eventsArb([...allMetrics, "unmetered"], 30),
});

const scenarioSpec = (s: { currency: string; roundingMode: "half_up" | "half_even"; cuts: string[]; spike: boolean }): Spec => ({
  contract: { currency: s.currency, roundingMode: s.roundingMode },
  versions: versionsWith({ meters: allMeters, spikeFactor: s.spike ? "2" : null }, s.cuts),
  // February, so the spike check reads January as a prior period; the cuts then amend January only.
  period: s.spike ? "2026-02-01T00:00:00Z" : "2026-01-01T00:00:00Z",
});

// ---- properties ---------------------------------------------------------------------------------------

describe("meter properties", () => {
  it("a constant level's time_weighted (and latest) equals the level, in any window and whatever the event instants", () => {
    fc.assert(
      fc.property(
        decimalString(10000, 4),
        fc.constantFrom("monthly" as const, "quarterly" as const, "annual" as const),
        fc.integer({ min: 0, max: 364 }),
        cutsArb,
        fc.integer({ min: 0, max: 400 * DAY }),
        fc.array(fc.tuple(instant(JAN.start - 400 * DAY, JAN.start + 800 * DAY), fc.integer({ min: 0, max: 3 })), { maxLength: 12 }),
        (level, billingPeriod, day, cuts, anchorBefore, others) => {
          const at = new Date(JAN.start + day * DAY).toISOString();
          const spec: Spec = {
            contract: { billingPeriod },
            versions: versionsWith({ meters: [{ metric: "seats", aggregation: "time_weighted", pricing: { model: "per_unit", unitPrice: "1" } }, { metric: "end", aggregation: "latest", pricing: { model: "per_unit", unitPrice: "1" } }] }, cuts),
            period: at,
          };
          const base = buildInput({ ...spec, usage: undefined });
          const startMs = Date.parse(base.period.start);
          // one event at or before the period start sets the level; every other event (before, inside or after) repeats it
          const anchor = (metric: string): MetricEvent => ({ metric, at: startMs - anchorBefore, quantity: level, id: "anchor" });
          const repeats = (metric: string) => others.map(([at, received], i): MetricEvent => ({ metric, at, quantity: level, received, id: `r${i}` }));
          const events = [anchor("seats"), ...repeats("seats"), anchor("end"), ...repeats("end")];
          const r = rateEvents(spec, events);
          const lines = usageLines(r);
          expect(lines.length).toBeGreaterThan(0);
          for (const l of lines) expect(new Decimal(l.usage ?? "NaN").equals(level)).toBe(true);
          // and the reference itself over an arbitrary window after the anchor
          const fromMs = startMs + (anchorBefore % (40 * DAY));
          const toMs = fromMs + 1 + (day * 7919 * 1000) % (90 * DAY);
          const m = { metric: "seats", aggregation: "time_weighted" as const, filter: null, uniqueBy: null };
          expect(aggregateEvents(m, events, fromMs, toMs).equals(level)).toBe(true);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("splitting a period into segments with identical terms: sum and count usage add up exactly; money within one minor unit per extra line", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("USD", "JPY"),
        fc.constantFrom("half_up" as const, "half_even" as const),
        fc.array(decimalString(3, 6), { minLength: 4, maxLength: 4 }),
        cutsArb.filter((c) => c.length > 0),
        eventsArb(["api", "tx", "req"], 40),
        (currency, roundingMode, prices, cuts, events) => {
          const t: ContractTermsInput = {
            meters: [
              { metric: "api", pricing: { model: "per_unit", unitPrice: prices[0] ?? "0" } },
              { metric: "tx", aggregation: "count", pricing: { model: "per_unit", unitPrice: prices[1] ?? "0" } },
              { id: "req-eu", metric: "req", filter: { region: ["eu"] }, pricing: { model: "per_unit", unitPrice: prices[2] ?? "0" } },
              { id: "req-us", metric: "req", aggregation: "count", filter: { region: ["us"] }, pricing: { model: "per_unit", unitPrice: prices[3] ?? "0" } },
            ],
          };
          const contract = { currency, roundingMode };
          const whole = rateEvents({ contract, versions: versionsWith(t, []) }, events);
          const split = rateEvents({ contract, versions: versionsWith(t, cuts) }, events);
          const usageBy = (r: RatingResult) => {
            const m = new Map<string, Decimal>();
            for (const l of usageLines(r)) m.set(l.meterId ?? "", (m.get(l.meterId ?? "") ?? new Decimal(0)).plus(l.usage ?? "0"));
            return m;
          };
          const w = usageBy(whole);
          const s = usageBy(split);
          expect([...s.keys()].sort()).toEqual([...w.keys()].sort());
          for (const [id, u] of w) expect(s.get(id)?.equals(u)).toBe(true);
          const extraLines = usageLines(split).length - usageLines(whole).length;
          expect(extraLines).toBe(cuts.length * t.meters.length);
          const unit = new Decimal(10).pow(-minorUnits(currency));
          expect(new Decimal(split.total).minus(whole.total).abs().lessThanOrEqualTo(unit.times(extraLines))).toBe(true);
          // the unpriced remainder (region ap or none) adds up too
          const unpriced = (r: RatingResult) => new Decimal((r.exceptions.find((e) => e.kind === "unpriced_metric")?.details.quantity as string | undefined) ?? "0");
          expect(unpriced(split).equals(unpriced(whole))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });


  it("splitting a period at identical terms does not change what a constant level bills (a level's price is per period)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("USD", "JPY"),
        fc.constantFrom("max" as const, "latest" as const, "time_weighted" as const),
        decimalString(500, 0),
        decimalString(100, 0),
        decimalString(50, 2),
        cutsArb.filter((c) => c.length > 0),
        (currency, aggregation, level, included, price, cuts) => {
          const t: ContractTermsInput = { meters: [{ metric: "seats", aggregation, included, pricing: { model: "per_unit", unitPrice: price } }] };
          const events: MetricEvent[] = [{ metric: "seats", at: JAN.start - 10 * DAY, quantity: level }];
          if (aggregation === "max") events.push({ metric: "seats", at: JAN.start, quantity: level });
          const contract = { currency };
          const whole = rateEvents({ contract, versions: versionsWith(t, []) }, events);
          const split = rateEvents({ contract, versions: versionsWith(t, cuts) }, events);
          const exact = (r: RatingResult) => usageLines(r).reduce((s, l) => s.plus(l.unroundedAmount), new Decimal(0));
          // max sees its event only in the first segment; the other segments have no event (peak 0)
          if (aggregation !== "max") expect(exact(split).minus(exact(whole)).abs().lessThan("1e-30")).toBe(true);
          else expect(exact(split).lessThanOrEqualTo(exact(whole))).toBe(true);
          const unit = new Decimal(10).pow(-minorUnits(currency));
          if (aggregation !== "max")
            expect(new Decimal(split.total).minus(whole.total).abs().lessThanOrEqualTo(unit.times(usageLines(split).length))).toBe(true);
        },
      ),
      { numRuns: 80 },
    );
  });
  it("unique_count ≤ count, and max ≥ every counted event's quantity (and is one of them, or 0)", () => {
    fc.assert(
      fc.property(cutsArb, eventsArb(["x"], 30), (cuts, base) => {
        const copy = (metric: string) => base.map((e) => ({ ...e, metric }));
        const t: ContractTermsInput = {
          meters: [
            { metric: "u", aggregation: "unique_count", uniqueBy: "user", pricing: { model: "per_unit", unitPrice: "1" } },
            { metric: "c", aggregation: "count", pricing: { model: "per_unit", unitPrice: "1" } },
            { metric: "m", aggregation: "max", pricing: { model: "per_unit", unitPrice: "1" } },
          ],
        };
        const r = rateEvents({ versions: versionsWith(t, cuts) }, [...copy("u"), ...copy("c"), ...copy("m")]);
        const lines = usageLines(r);
        expect(lines.length).toBe(3 * (cuts.length + 1));
        for (let i = 0; i < lines.length; i += 3) {
          const [u, c, m] = lines.slice(i, i + 3);
          const seg = u?.segment;
          expect([u?.meterId, c?.meterId, m?.meterId]).toEqual(["u", "c", "m"]);
          expect(new Decimal(u?.usage ?? "NaN").lessThanOrEqualTo(c?.usage ?? "NaN")).toBe(true);
          const inside = base.filter((e) => !e.voided && e.at >= Date.parse(seg?.from ?? "") && e.at < Date.parse(seg?.to ?? ""));
          expect(c?.usage).toBe(String(inside.length));
          const peak = new Decimal(m?.usage ?? "NaN");
          for (const e of inside) expect(peak.greaterThanOrEqualTo(e.quantity)).toBe(true);
          expect(inside.length === 0 ? peak.isZero() : inside.some((e) => peak.equals(e.quantity))).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("adding a voided event changes nothing: the same result and inputsHash", () => {
    fc.assert(
      fc.property(scenarioArb, eventArb([...allMetrics, "unmetered", "never_seen"]), (s, extra) => {
        const spec = scenarioSpec(s);
        const before = rateEvents(spec, s.events);
        const after = rateEvents(spec, [...s.events, { ...extra, properties: extra.properties ?? null, voided: true, id: "voided" }]);
        expect(after.inputsHash).toBe(before.inputsHash);
        expect(after).toEqual(before);
      }),
      { numRuns: 100 },
    );
  });

  it("usage_spike compares each meter's figure over the whole periods, whatever amendments cut them", () => {
    const FEB_END = Date.UTC(2026, 2, 1);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 59 * 24 - 1 }), { maxLength: 3 }),
        eventsArb([...allMetrics], 40, [JAN.start - 10 * DAY, FEB_END]),
        (hours, events) => {
          const cuts = [...hours].sort((a, b) => a - b).map((h) => new Date(JAN.start + h * HOUR).toISOString());
          const spec: Spec = { versions: versionsWith({ meters: allMeters, spikeFactor: "2" }, cuts), period: "2026-02-01T00:00:00Z" };
          const spiked = new Set(rateEvents(spec, events).exceptions.filter((e) => e.kind === "usage_spike").map((e) => e.subject));
          for (const m of allMeters) {
            const measure = measureOf({ ...m, aggregation: m.aggregation ?? "sum" });
            const of = events.filter((e) => e.metric === m.metric);
            const current = aggregateEvents(measure, of, JAN.end, FEB_END);
            const prior = aggregateEvents(measure, of, JAN.start, JAN.end); // January, the one prior period
            const expected = prior.isPositive() && !prior.isZero() && current.greaterThan(prior.times(2));
            expect(spiked.has(m.id ?? m.metric)).toBe(expected);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("the order of the events does not change the result (aggregateEvents figures through usageRequest)", () => {
    fc.assert(
      fc.property(
        scenarioArb.chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray(s.events, { minLength: s.events.length, maxLength: s.events.length }))),
        ([s, shuffled]) => {
          const spec = scenarioSpec(s);
          expect(rateEvents(spec, shuffled)).toEqual(rateEvents(spec, s.events));
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ---- the minimum to the cent ------------------------------------------------------------------------------

const countsTowardCommitment = (l: Line) => l.kind === "usage" || l.kind === "contract_discount" || l.kind === "contract_cap";

const commitmentTermsArb: fc.Arbitrary<ContractTermsInput> = fc
  .record({
    commitment: fc.option(decimalString(30000, 6).map((amount) => ({ amount, scope: "period" as const })), { nil: null, freq: 6 }),
    platformFee: fc.option(decimalString(500, 2).map((amount) => ({ amount })), { nil: null }),
    discountPercent: fc.option(decimalString(60, 3), { nil: undefined }),
    cap: fc.option(decimalString(20000, 6).map((amount) => ({ amount })), { nil: null }),
    meters: fc.tuple(
      ...["api", "storage", "seats"].map((metric) =>
        fc.record({
          metric: fc.constant(metric),
          aggregation: fc.constantFrom("sum" as const, "count" as const, "max" as const, "time_weighted" as const),
          included: fc.option(decimalString(300, 0), { nil: undefined }),
          pricing: decimalString(9, 6).map((unitPrice) => ({ model: "per_unit" as const, unitPrice })),
          discountPercent: fc.option(decimalString(99, 4), { nil: undefined }),
          cap: fc.option(decimalString(8000, 6).map((amount) => ({ amount })), { nil: null }),
        }),
      ),
    ),
  })
  .map((t) => ({ ...t, meters: [...t.meters] }));

describe("commitment shortfall", () => {
  it("the rounded usage, contract discount and contract cap lines plus the shortfall are exactly the rounded commitment", () => {
    let billed = 0;
    fc.assert(
      fc.property(
        fc.constantFrom("USD", "JPY"),
        fc.constantFrom("half_up" as const, "half_even" as const),
        fc.constantFrom("monthly" as const, "quarterly" as const),
        fc.array(commitmentTermsArb, { minLength: 1, maxLength: 3 }),
        cutsArb,
        eventsArb(["api", "storage", "seats"], 20, [JAN.start - 10 * DAY, JAN.end]),
        (currency, roundingMode, billingPeriod, termsList, cuts, events) => {
          const versions: Spec["versions"] = [{ terms: termsList[0]! }, ...cuts.map((from, i) => ({ from, terms: termsList[(i + 1) % termsList.length]! }))];
          const r = rateEvents({ contract: { currency, roundingMode, billingPeriod }, versions }, events);
          const usageCharges = r.lines.filter(countsTowardCommitment).reduce((s, l) => s.plus(l.amount), new Decimal(0));
          // the period's commitment: Σ commitment.amount × fraction over the segments with one, then rounded
          let exact = new Decimal(0);
          r.segments.forEach((seg) => {
            const c = versions[(seg.version ?? 1) - 1]?.terms.commitment;
            if (c) exact = exact.plus(new Decimal(c.amount).times(seg.fraction));
          });
          const commitment = roundMoney(exact, currency, roundingMode);
          const shortfalls = r.lines.filter((l) => l.kind === "commitment_shortfall");
          if (shortfalls.length === 0) {
            expect(usageCharges.greaterThanOrEqualTo(commitment)).toBe(true);
            return;
          }
          billed++;
          expect(shortfalls.length).toBe(1);
          const shortfall = shortfalls[0]!;
          expect(shortfall.scope).toBe("period");
          expect(new Decimal(shortfall.amount).isPositive() && !new Decimal(shortfall.amount).isZero()).toBe(true);
          expect(new Decimal(shortfall.unroundedAmount).equals(shortfall.amount)).toBe(true);
          expect(usageCharges.plus(shortfall.amount).equals(commitment)).toBe(true);
          expect(new Decimal(shortfall.commitment ?? "NaN").equals(commitment)).toBe(true);
          // and the total is the commitment plus the platform fees (no credits here)
          const fees = r.lines.filter((l) => l.kind === "platform_fee").reduce((s, l) => s.plus(l.amount), new Decimal(0));
          expect(new Decimal(r.total).equals(commitment.plus(fees))).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
    expect(billed).toBeGreaterThan(25);
  });
});
