// Hand-checked cases of "what a meter measures" (DESIGN §3) through the whole rating order (§4): events are
// aggregated by the reference definition (aggregateEvents), fed to the engine exactly as usageRequest() asks
// for them, and rated by ratePeriod(). Each case states its arithmetic in its name or a comment; usage lines
// are compared as "kind [meterId|grant] amount".
import { describe, expect, it } from "vitest";
import {
  Decimal,
  aggregateEvents,
  ratePeriod,
  usageRequest,
  type ContractTermsInput,
  type Line,
  type RatingResult,
} from "../../src/domain/index.js";
import { type MetricEvent, type Spec, buildInput, inputFromEvents } from "./fixtures.js";

const ev = (
  metric: string,
  iso: string,
  quantity: string,
  extra: { properties?: Record<string, unknown> | null; voided?: boolean; received?: number; id?: string } = {},
): MetricEvent => ({ metric, at: Date.parse(iso), quantity, ...extra });

/** `n` events of `metric`, quantity 1, from `startIso` every `stepHours` hours. */
const series = (metric: string, startIso: string, n: number, stepHours: number, quantity = "1"): MetricEvent[] =>
  Array.from({ length: n }, (_, i) => ({ metric, at: Date.parse(startIso) + i * stepHours * 3_600_000, quantity, id: `${metric}-${startIso}-${i}` }));

const summary = (r: RatingResult): string[] =>
  r.lines.map((l) => `${l.kind}${l.meterId ? ` ${l.meterId}` : l.metric ? ` ${l.metric}` : ""}${l.grantId ? ` ${l.grantId}` : ""} ${l.amount}`);
const usageLines = (r: RatingResult): Line[] => r.lines.filter((l) => l.kind === "usage");

// ---- terms ---------------------------------------------------------------------------------------------

const one = (t: ContractTermsInput): Spec["versions"] => [{ terms: t }];
const JAN11 = "2026-01-11T00:00:00Z"; // January 2026 = 31 days: 10/31 before, 21/31 after
const both = (t: ContractTermsInput): Spec["versions"] => [{ terms: t }, { from: JAN11, terms: t }];
const APRIL = "2026-04-01T00:00:00Z"; // April 2026 = 30 days
const JULY = "2026-07-01T00:00:00Z";

type Agg = "sum" | "count" | "max" | "latest" | "unique_count" | "time_weighted";
const meter = (metric: string, aggregation: Agg, unitPrice: string, extra: Record<string, unknown> = {}) => ({
  metric,
  aggregation,
  pricing: { model: "per_unit" as const, unitPrice },
  ...extra,
});
const firstTierFee = [
  { upTo: "1000", unitPrice: "0.10", flatFee: "50" },
  { upTo: null, unitPrice: "0.05", flatFee: "25" },
];
const graduatedFee = (metric: string, aggregation: Agg = "sum") => ({ metric, aggregation, pricing: { model: "graduated" as const, tiers: firstTierFee } });
const volumeFee = (metric: string, aggregation: Agg = "sum") => ({ metric, aggregation, pricing: { model: "volume" as const, tiers: firstTierFee } });

const regionMeters = [
  { id: "api-eu", metric: "api", filter: { region: ["eu"] }, pricing: { model: "per_unit" as const, unitPrice: "0.10" } },
  { id: "api-us", metric: "api", filter: { region: ["us"] }, pricing: { model: "per_unit" as const, unitPrice: "0.20" } },
];

// Spike history: peaks 10, 20, 30 (average 20, limit 3 × 20 = 60) while the sums are 40, 60, 60 (average 53.33…).
const spikeHistory: MetricEvent[] = [
  ...series("seats", "2026-01-05T00:00:00Z", 4, 24, "10"),
  ...series("seats", "2026-02-05T00:00:00Z", 3, 24, "20"),
  ...series("seats", "2026-03-05T00:00:00Z", 2, 24, "30"),
];
const spikeTerms: Spec["versions"] = one({ spikeFactor: "3", meters: [meter("seats", "max", "1")] });

// ---- cases ---------------------------------------------------------------------------------------------

interface Case {
  name: string;
  spec: Spec;
  events: MetricEvent[];
  lines?: string[];
  /** The `usage` of every usage line, in order. */
  usages?: string[];
  total?: string;
  /** "kind:subject" of every exception, in order (default: none). */
  exceptions?: string[];
  check?: (r: RatingResult) => void;
}

const cases: Case[] = [
  // ---- time_weighted
  {
    name: "time_weighted: 100 seats for the first half of a 30-day month, then 150 → 125; (125 − 100 included) × 40 = 1000.00",
    spec: { versions: one({ meters: [meter("seats", "time_weighted", "40.00", { included: "100" })] }), period: APRIL },
    // (100 × 15 days + 150 × 15 days) ÷ 30 days = 125
    events: [ev("seats", "2026-04-01T00:00:00Z", "100"), ev("seats", "2026-04-16T00:00:00Z", "150")],
    lines: ["usage seats 1000.00"], usages: ["125"], total: "1000.00",
    check: (r) => {
      const [l] = usageLines(r);
      expect(l?.included).toBe("100");
      expect(l?.billable).toBe("25");
    },
  },
  {
    name: "time_weighted carries the level from before the period: 100 set in March, 160 from Apr 11 → (100 × 10 + 160 × 20) ÷ 30 = 140",
    spec: { versions: one({ meters: [meter("seats", "time_weighted", "1")] }), period: APRIL },
    events: [ev("seats", "2026-03-03T00:00:00Z", "100"), ev("seats", "2026-04-11T00:00:00Z", "160")],
    lines: ["usage seats 140.00"], usages: ["140"],
  },
  {
    name: "a level set in May carries into July with no July event: time_weighted 80 × 2 = 160.00, latest 30 × 1.5 = 45.00",
    spec: { versions: one({ meters: [meter("seats", "time_weighted", "2"), meter("storage", "latest", "1.5")] }), period: JULY },
    // seats: 500 (Mar 1) is replaced by 80 (May 10), held all of July; storage: last value before Aug 1 is 30 (May 20)
    events: [ev("seats", "2026-03-01T00:00:00Z", "500"), ev("seats", "2026-05-10T00:00:00Z", "80"), ev("storage", "2026-05-20T00:00:00Z", "30")],
    lines: ["usage seats 160.00", "usage storage 45.00"], usages: ["80", "30"], total: "205.00",
  },
  {
    name: "time_weighted is 0 before the first event and without events: 150 from Apr 16 → 150 × 15/30 = 75; an event after the period → 0",
    spec: { versions: one({ meters: [meter("seats", "time_weighted", "1"), meter("gb", "time_weighted", "1")] }), period: APRIL },
    events: [ev("seats", "2026-04-16T00:00:00Z", "150"), ev("gb", "2026-05-05T00:00:00Z", "900")],
    lines: ["usage seats 75.00", "usage gb 0.00"], usages: ["75", "0"], total: "75.00",
  },
  {
    name: "time_weighted at full precision: 100 for 10 days then 200 for 21 days of January → 5200/31 = 167.741935… → 167.74",
    spec: { versions: one({ meters: [meter("seats", "time_weighted", "1")] }) },
    events: [ev("seats", "2026-01-01T00:00:00Z", "100"), ev("seats", "2026-01-11T00:00:00Z", "200")],
    lines: ["usage seats 167.74"],
    check: (r) => {
      // at least 34 significant digits: 167.7419354838709677419354838709677 (23/31 = 0.741935483870967 repeating)
      expect(usageLines(r)[0]?.usage?.startsWith("167.7419354838709677419354838709677")).toBe(true);
    },
  },
  {
    name: "time_weighted: two events at one instant, the later received sets the level: 200 (received 1) then 150 (received 2) → 125",
    spec: { versions: one({ meters: [meter("seats", "time_weighted", "1")] }), period: APRIL },
    events: [
      ev("seats", "2026-04-01T00:00:00Z", "100"),
      ev("seats", "2026-04-16T00:00:00Z", "150", { received: 2, id: "a" }),
      ev("seats", "2026-04-16T00:00:00Z", "200", { received: 1, id: "z" }),
    ],
    lines: ["usage seats 125.00"], usages: ["125"],
  },
  {
    name: "filtered time_weighted (the §3 example): plan pro 100, plan team 150 from Apr 16 → 125; (125 − 100) × 40 = 1000.00; words name both",
    spec: {
      versions: one({ meters: [{ metric: "seats", aggregation: "time_weighted", filter: { plan: ["pro", "team"] }, included: "100", pricing: { model: "per_unit", unitPrice: "40.00" } }] }),
      period: APRIL,
    },
    events: [ev("seats", "2026-04-01T00:00:00Z", "100", { properties: { plan: "pro" } }), ev("seats", "2026-04-16T00:00:00Z", "150", { properties: { plan: "team" } })],
    lines: ["usage seats 1000.00"], usages: ["125"],
    check: (r) => {
      const [l] = usageLines(r);
      expect(l?.meterId).toBe("seats");
      expect(l?.aggregation).toBe("time_weighted");
      expect(l?.filter).toEqual({ plan: ["pro", "team"] });
      expect(l?.description).toContain("time-weighted average");
      expect(l?.description).toContain("plan in [pro, team]");
    },
  },

  // ---- latest
  {
    name: "latest looks back before the period: 12 (Mar 5); an event at May 1 (the period end) is not before the end → 12 × 1 = 12.00",
    spec: { versions: one({ meters: [meter("gauge", "latest", "1")] }), period: APRIL },
    events: [ev("gauge", "2026-03-05T00:00:00Z", "12"), ev("gauge", "2026-05-01T00:00:00Z", "99")],
    lines: ["usage gauge 12.00"], usages: ["12"],
  },
  {
    name: "latest is the last value by time, not the largest: 5 (Apr 2), 20 (Apr 10), 9 (Apr 30 23:59:59.999) → 9.00",
    spec: { versions: one({ meters: [meter("gauge", "latest", "1")] }), period: APRIL },
    events: [ev("gauge", "2026-04-02T00:00:00Z", "5"), ev("gauge", "2026-04-30T23:59:59.999Z", "9"), ev("gauge", "2026-04-10T00:00:00Z", "20")],
    lines: ["usage gauge 9.00"], usages: ["9"],
  },
  {
    name: "latest: two events at the same instant, the later received wins (not the event id): 7 (received 1) then 4 (received 2) → 4.00",
    spec: { versions: one({ meters: [meter("gauge", "latest", "1")] }), period: APRIL },
    events: [ev("gauge", "2026-04-30T12:00:00Z", "4", { received: 2, id: "a" }), ev("gauge", "2026-04-30T12:00:00Z", "7", { received: 1, id: "b" })],
    lines: ["usage gauge 4.00"], usages: ["4"],
  },

  // ---- unique_count
  {
    name: "unique_count: 7 events over 4 users → 4 (no property, JSON null and another property do not count); (4 − 1) × 10 = 30.00",
    spec: { versions: one({ meters: [meter("active_users", "unique_count", "10", { uniqueBy: "user", included: "1" })] }), period: APRIL },
    events: [
      ...["a", "b", "a", "c", "d", "b", "a"].map((user, i) => ev("active_users", `2026-04-${String(i + 2).padStart(2, "0")}T00:00:00Z`, "1", { properties: { user } })),
      ev("active_users", "2026-04-20T00:00:00Z", "1", { properties: {} }),
      ev("active_users", "2026-04-21T00:00:00Z", "1", { properties: { user: null } }),
      ev("active_users", "2026-04-22T00:00:00Z", "1", { properties: { other: "e" } }),
      ev("active_users", "2026-04-23T00:00:00Z", "1"),
    ],
    lines: ["usage active_users 30.00"], usages: ["4"],
  },
  {
    name: "unique_count compares canonical JSON: 1 and \"1\" are two users, {a:1,b:2} and {b:2,a:1} one → 3 × 1 = 3.00",
    spec: { versions: one({ meters: [meter("active_users", "unique_count", "1", { uniqueBy: "user" })] }), period: APRIL },
    events: [
      ev("active_users", "2026-04-02T00:00:00Z", "1", { properties: { user: 1 } }),
      ev("active_users", "2026-04-03T00:00:00Z", "1", { properties: { user: "1" } }),
      ev("active_users", "2026-04-04T00:00:00Z", "1", { properties: { user: 1 } }),
      ev("active_users", "2026-04-05T00:00:00Z", "1", { properties: { user: { a: 1, b: 2 } } }),
      ev("active_users", "2026-04-06T00:00:00Z", "1", { properties: { user: { b: 2, a: 1 } } }),
    ],
    lines: ["usage active_users 3.00"], usages: ["3"],
  },

  // ---- count and max
  {
    name: "count ignores quantities: events of 5, 10, 1000 and 0 → 4 × 0.50 = 2.00",
    spec: { versions: one({ meters: [meter("tx", "count", "0.50")] }), period: APRIL },
    events: ["5", "10", "1000", "0"].map((q, i) => ev("tx", `2026-04-0${i + 2}T00:00:00Z`, q)),
    lines: ["usage tx 2.00"], usages: ["4"],
  },
  {
    name: "max: the peak of 10, 45, 30 → 45 × 2 = 90.00; a max meter without events → 0; words say peak",
    spec: { versions: one({ meters: [meter("seats", "max", "2"), meter("storage", "max", "3")] }), period: APRIL },
    events: [ev("seats", "2026-04-02T00:00:00Z", "10"), ev("seats", "2026-04-12T00:00:00Z", "45"), ev("seats", "2026-04-22T00:00:00Z", "30")],
    lines: ["usage seats 90.00", "usage storage 0.00"], usages: ["45", "0"], total: "90.00",
    check: (r) => {
      const [seats] = usageLines(r);
      expect(seats?.aggregation).toBe("max");
      expect(seats?.filter).toBeNull();
      expect(seats?.description.startsWith("seats (peak): 45 used")).toBe(true);
    },
  },
  {
    name: "max does not look back: 500 in March, 20 in April → 20 × 1 = 20.00",
    spec: { versions: one({ meters: [meter("seats", "max", "1")] }), period: APRIL },
    events: [ev("seats", "2026-03-20T00:00:00Z", "500"), ev("seats", "2026-04-20T00:00:00Z", "20")],
    lines: ["usage seats 20.00"], usages: ["20"],
  },
  {
    name: "sum and count are half-open: an event at the period start counts, one at its end (or just before its start) does not",
    spec: { versions: one({ meters: [meter("api", "sum", "1"), meter("tx", "count", "1")] }), period: APRIL },
    // api: 10 only; tx: 1 event only
    events: [
      ev("api", "2026-03-31T23:59:59.999Z", "500"), ev("api", "2026-04-01T00:00:00Z", "10"), ev("api", "2026-05-01T00:00:00Z", "1000"),
      ev("tx", "2026-03-31T23:59:59.999Z", "1"), ev("tx", "2026-04-01T00:00:00Z", "1"), ev("tx", "2026-05-01T00:00:00Z", "1"),
    ],
    lines: ["usage api 10.00", "usage tx 1.00"], usages: ["10", "1"], total: "11.00",
  },

  // ---- voided events
  {
    name: "voided events are excluded from every aggregation: sum 10, count 2, max 5, latest 3, unique_count 2, time_weighted 100 → 122.00",
    spec: {
      versions: one({
        meters: [
          meter("calls", "sum", "1"), meter("txns", "count", "1"), meter("peak_gb", "max", "1"),
          meter("seats_end", "latest", "1"), meter("users", "unique_count", "1", { uniqueBy: "user" }), meter("seats", "time_weighted", "1"),
        ],
      }),
      period: APRIL,
    },
    events: [
      ev("calls", "2026-04-05T00:00:00Z", "10"), ev("calls", "2026-04-06T00:00:00Z", "100", { voided: true }), // 10, not 110
      ev("txns", "2026-04-05T00:00:00Z", "1"), ev("txns", "2026-04-06T00:00:00Z", "1"), ev("txns", "2026-04-07T00:00:00Z", "1", { voided: true }), // 2, not 3
      ev("peak_gb", "2026-04-05T00:00:00Z", "5"), ev("peak_gb", "2026-04-06T00:00:00Z", "50", { voided: true }), // 5, not 50
      ev("seats_end", "2026-04-05T00:00:00Z", "3"), ev("seats_end", "2026-04-20T00:00:00Z", "9", { voided: true }), // 3, not 9
      ev("users", "2026-04-05T00:00:00Z", "1", { properties: { user: "a" } }), ev("users", "2026-04-06T00:00:00Z", "1", { properties: { user: "b" } }),
      ev("users", "2026-04-07T00:00:00Z", "1", { properties: { user: "c" }, voided: true }), // 2, not 3
      ev("seats", "2026-04-01T00:00:00Z", "100"), ev("seats", "2026-04-16T00:00:00Z", "400", { voided: true }), // 100, not 250
    ],
    lines: ["usage calls 10.00", "usage txns 2.00", "usage peak_gb 5.00", "usage seats_end 3.00", "usage users 2.00", "usage seats 100.00"],
    usages: ["10", "2", "5", "3", "2", "100"], total: "122.00",
  },

  // ---- amendments: levels whole, flows prorated
  {
    name: "mid-month amendment (Jan 11): a level's included units stay whole (max, time_weighted), a flow's are prorated (sum, count)",
    spec: {
      versions: both({
        meters: [
          meter("seats", "max", "1", { included: "100" }),
          meter("tx", "count", "1", { included: "31" }),
          meter("api", "sum", "0.10", { included: "3100" }),
          meter("seats_avg", "time_weighted", "1", { included: "100" }),
        ],
      }),
    },
    // segment 1 (10/31): seats 120 − 100 = 20, × 1 × 10/31 = 6.4516… → 6.45 (a level's price is per period: the segment
    //   bills its share); tx 12 − 31 × 10/31 = 2; api (1200 − 1000) × 0.10 = 20; seats_avg 150 − 100 = 50, × 10/31 → 16.13
    // segment 2 (21/31): seats 130 − 100 = 30, × 21/31 = 20.3225… → 20.32; tx 25 − 21 = 4; api 2000 − 2100 → 0;
    //   seats_avg 150 − 100 = 50 (not 150 − 100 × 21/31), × 21/31 = 33.870… → 33.87 (16.13 + 33.87 = 50.00: the month's charge)
    events: [
      ev("seats", "2026-01-05T00:00:00Z", "120"), ev("seats", "2026-01-20T00:00:00Z", "130"),
      ...series("tx", "2026-01-01T00:00:00Z", 12, 18), ...series("tx", JAN11, 25, 18),
      ev("api", "2026-01-03T00:00:00Z", "1200"), ev("api", "2026-01-15T00:00:00Z", "2000"),
      ev("seats_avg", "2025-12-20T00:00:00Z", "150"),
    ],
    lines: [
      "usage seats 6.45", "usage tx 2.00", "usage api 20.00", "usage seats_avg 16.13",
      "usage seats 20.32", "usage tx 4.00", "usage api 0.00", "usage seats_avg 33.87",
    ],
    usages: ["120", "12", "1200", "150", "130", "25", "2000", "150"], total: "102.77",
    check: (r) => {
      const [s1, t1, a1, w1, s2, t2, a2, w2] = usageLines(r);
      for (const l of [s1, w1, s2, w2]) expect(l?.included).toBe("100");
      expect(new Decimal(t1?.included ?? "").toDecimalPlaces(20).toFixed()).toBe("10");
      expect(new Decimal(t2?.included ?? "").toDecimalPlaces(20).toFixed()).toBe("21");
      expect(new Decimal(a1?.included ?? "").toDecimalPlaces(20).toFixed()).toBe("1000");
      expect(new Decimal(a2?.included ?? "").toDecimalPlaces(20).toFixed()).toBe("2100");
      expect(s1?.description).toContain("120 used − 100 included = 20 billable; 20 × 1 × 10 of 31 days = 6.45");
    },
  },
  {
    name: "mid-month amendment, graduated: a level's tier bounds stay whole (max), a flow's are scaled (sum) → 45.16 + 125 + 108.39 + 255 = 533.55",
    spec: {
      versions: both({
        meters: [
          { metric: "seats", aggregation: "max", pricing: { model: "graduated", tiers: [{ upTo: "100", unitPrice: "1" }, { upTo: null, unitPrice: "2" }] } },
          { metric: "api", pricing: { model: "graduated", tiers: [{ upTo: "3100", unitPrice: "0.10" }, { upTo: null, unitPrice: "0.05" }] } },
        ],
      }),
    },
    // seats: 100 × 1 + 20 × 2 = 140, × 10/31 = 45.161… → 45.16 (segment 1); 100 × 1 + 30 × 2 = 160, × 21/31 = 108.387… → 108.39
    // (segment 2): the bound is 100 in both, and a level's charge is per period (× the segment's share)
    // api: bound 3100 × 10/31 = 1000: 1000 × 0.10 + 500 × 0.05 = 125; bound 2100: 2100 × 0.10 + 900 × 0.05 = 255
    events: [
      ev("seats", "2026-01-05T00:00:00Z", "120"), ev("seats", "2026-01-20T00:00:00Z", "130"),
      ev("api", "2026-01-03T00:00:00Z", "1500"), ev("api", "2026-01-15T00:00:00Z", "3000"),
    ],
    lines: ["usage seats 45.16", "usage api 125.00", "usage seats 108.39", "usage api 255.00"], total: "533.55",
    check: (r) => {
      const [s1, a1, s2, a2] = usageLines(r);
      expect(s1?.tiers?.[0]?.upTo).toBe("100");
      expect(s2?.tiers?.[0]?.upTo).toBe("100");
      expect(new Decimal(a1?.tiers?.[0]?.upTo ?? "").toDecimalPlaces(20).toFixed()).toBe("1000");
      expect(new Decimal(a2?.tiers?.[0]?.upTo ?? "").toDecimalPlaces(20).toFixed()).toBe("2100");
    },
  },
  {
    name: "a level's tier flat fee and meter cap are money: × fraction (fee 31 → 10.00 and 21.00; cap 310 → 100.00 and 210.00)",
    spec: {
      versions: both({
        meters: [
          { metric: "seats", aggregation: "max", pricing: { model: "graduated", tiers: [{ upTo: "100", unitPrice: "0", flatFee: "31" }, { upTo: null, unitPrice: "1" }] } },
          meter("peak", "max", "1", { cap: { amount: "310" } }),
        ],
      }),
    },
    // seats: no events, first tier reached at 0: 31 × 10/31 = 10, 31 × 21/31 = 21; peak: 1000 capped at 310 × 10/31 = 100, 310 × 21/31 = 210
    events: [ev("peak", "2026-01-05T00:00:00Z", "1000"), ev("peak", "2026-01-20T00:00:00Z", "1000")],
    lines: ["usage seats 10.00", "usage peak 100.00", "usage seats 21.00", "usage peak 210.00"], total: "341.00",
  },

  // ---- filters
  {
    name: "two filtered meters of one metric at two prices: eu (1000 + 500) × 0.10 = 150.00, us 300 × 0.20 = 60.00",
    spec: { versions: one({ meters: regionMeters }), period: APRIL },
    events: [
      ev("api", "2026-04-02T00:00:00Z", "1000", { properties: { region: "eu" } }),
      ev("api", "2026-04-03T00:00:00Z", "300", { properties: { region: "us" } }),
      ev("api", "2026-04-04T00:00:00Z", "500", { properties: { region: "eu", plan: "pro" } }),
    ],
    lines: ["usage api-eu 150.00", "usage api-us 60.00"], usages: ["1500", "300"], total: "210.00",
    check: (r) => {
      const [eu, us] = usageLines(r);
      expect([eu?.meterId, eu?.metric, eu?.aggregation, eu?.filter]).toEqual(["api-eu", "api", "sum", { region: ["eu"] }]);
      expect([us?.meterId, us?.metric, us?.aggregation, us?.filter]).toEqual(["api-us", "api", "sum", { region: ["us"] }]);
      expect(eu?.description.startsWith("api-eu (api, sum; region in [eu]): 1,500 used")).toBe(true);
      expect(us?.description.startsWith("api-us (api, sum; region in [us]): 300 used")).toBe(true);
    },
  },
  {
    name: "events matching no filter → unpriced_metric with their quantity (ap 70 + no region 30 = 100), not billed: 100.00 + 60.00",
    spec: { versions: one({ meters: regionMeters }), period: APRIL },
    events: [
      ev("api", "2026-04-02T00:00:00Z", "1000", { properties: { region: "eu" } }),
      ev("api", "2026-04-03T00:00:00Z", "300", { properties: { region: "us" } }),
      ev("api", "2026-04-04T00:00:00Z", "70", { properties: { region: "ap" } }),
      ev("api", "2026-04-05T00:00:00Z", "30"),
    ],
    lines: ["usage api-eu 100.00", "usage api-us 60.00"], usages: ["1000", "300"], total: "160.00",
    exceptions: ["unpriced_metric:api"],
    check: (r) => {
      expect(r.exceptions[0]?.details.quantity).toBe("100");
      expect(r.exceptions[0]?.message).toContain("(100)");
    },
  },
  {
    name: "a filter compares canonical JSON: tier 1 matches, tier \"1\" does not (unpriced 5); 10 × 1 = 10.00",
    spec: { versions: one({ meters: [{ metric: "api", filter: { tier: [1] }, pricing: { model: "per_unit", unitPrice: "1" } }] }), period: APRIL },
    events: [ev("api", "2026-04-02T00:00:00Z", "10", { properties: { tier: 1 } }), ev("api", "2026-04-03T00:00:00Z", "5", { properties: { tier: "1" } })],
    lines: ["usage api 10.00"], usages: ["10"], exceptions: ["unpriced_metric:api"],
    check: (r) => expect(r.exceptions[0]?.details.quantity).toBe("5"),
  },
  {
    name: "two meters of one metric with different aggregations: count of ok events 3 × 0.50 = 1.50, sum of failed 15 × 0.10 = 1.50",
    spec: {
      versions: one({
        meters: [
          { id: "tx-ok", metric: "tx", aggregation: "count", filter: { status: ["ok"] }, pricing: { model: "per_unit", unitPrice: "0.50" } },
          { id: "tx-failed", metric: "tx", filter: { status: ["failed"] }, pricing: { model: "per_unit", unitPrice: "0.10" } },
        ],
      }),
      period: APRIL,
    },
    events: [
      ...["100", "100", "100"].map((q, i) => ev("tx", `2026-04-0${i + 2}T00:00:00Z`, q, { properties: { status: "ok" } })),
      ev("tx", "2026-04-06T00:00:00Z", "7", { properties: { status: "failed" } }),
      ev("tx", "2026-04-07T00:00:00Z", "8", { properties: { status: "failed" } }),
    ],
    lines: ["usage tx-ok 1.50", "usage tx-failed 1.50"], usages: ["3", "15"], total: "3.00",
    check: (r) => expect(usageLines(r).map((l) => l.aggregation)).toEqual(["count", "sum"]),
  },
  {
    name: "meterId defaults to the metric; aggregation defaults to sum, filter to null; (100 + 200) × 0.10 = 30.00",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "per_unit", unitPrice: "0.10" } }] }), period: APRIL },
    events: [ev("api", "2026-04-02T00:00:00Z", "100"), ev("api", "2026-04-03T00:00:00Z", "200")],
    lines: ["usage api 30.00"], usages: ["300"],
    check: (r) => {
      const [l] = usageLines(r);
      expect([l?.meterId, l?.metric, l?.aggregation, l?.filter]).toEqual(["api", "api", "sum", null]);
      expect(l?.description.startsWith("api: 300 used")).toBe(true);
    },
  },

  // ---- first-tier flat fees
  {
    name: "graduated and volume: the first tier's flat fee is due at zero usage → 50.00 each",
    spec: { versions: one({ meters: [graduatedFee("api"), volumeFee("calls")] }), period: APRIL },
    events: [],
    lines: ["usage api 50.00", "usage calls 50.00"], usages: ["0", "0"], total: "100.00",
  },
  {
    name: "first-tier flat fee across an amendment × fraction: 50 × 10/31 = 16.13, 50 × 21/31 = 33.87 (graduated and volume)",
    spec: { versions: both({ meters: [graduatedFee("api"), volumeFee("calls")] }) },
    events: [],
    lines: ["usage api 16.13", "usage calls 16.13", "usage api 33.87", "usage calls 33.87"], total: "100.00",
  },
  {
    name: "graduated: a later tier's flat fee is not due until reached: 1000 → 100 + 50 = 150.00; 1001 → 150 + 0.05 + 25 = 175.05",
    spec: { versions: one({ meters: [graduatedFee("a"), graduatedFee("b")] }), period: APRIL },
    events: [ev("a", "2026-04-02T00:00:00Z", "1000"), ev("b", "2026-04-02T00:00:00Z", "1001")],
    lines: ["usage a 150.00", "usage b 175.05"], total: "325.05",
  },
  {
    name: "volume: only the applied tier's fee: 1000 → 1000 × 0.10 + 50 = 150.00; 1001 → 1001 × 0.05 + 25 = 75.05",
    spec: { versions: one({ meters: [volumeFee("a"), volumeFee("b")] }), period: APRIL },
    events: [ev("a", "2026-04-02T00:00:00Z", "1000"), ev("b", "2026-04-02T00:00:00Z", "1001")],
    lines: ["usage a 150.00", "usage b 75.05"], total: "225.05",
  },
  {
    name: "a level (max) with a first-tier flat fee at zero usage: bounds whole, fee due: 50.00",
    spec: { versions: one({ meters: [graduatedFee("seats", "max")] }), period: APRIL },
    events: [],
    lines: ["usage seats 50.00"], usages: ["0"],
  },

  // ---- the minimum to the cent
  ...(["half_up", "half_even"] as const).map(
    (roundingMode): Case => ({
      name: `quarterly $20,000 minimum, ${roundingMode}: 3,599,999 calls × 0.005 = 17,999.995 → 18,000.00; shortfall 2,000.00; total 20,000.00`,
      spec: { contract: { billingPeriod: "quarterly", roundingMode }, versions: one({ commitment: { amount: "20000.00" }, meters: [meter("api", "sum", "0.005")] }) },
      // 1,000,000 + 2,000,000 + 599,999 = 3,599,999 calls; × 0.005 = 17,999.995 (half_up → 18,000.00; half_even: 9 is odd → 18,000.00)
      events: [ev("api", "2026-01-15T00:00:00Z", "1000000"), ev("api", "2026-02-15T00:00:00Z", "2000000"), ev("api", "2026-03-15T00:00:00Z", "599999")],
      lines: ["usage api 18000.00", "commitment_shortfall 2000.00"], usages: ["3599999"], total: "20000.00",
      check: (r) => {
        expect(usageLines(r)[0]?.unroundedAmount).toBe("17999.995");
        const shortfall = r.lines.find((l) => l.kind === "commitment_shortfall");
        expect(shortfall?.unroundedAmount).toBe("2000");
        expect(shortfall?.commitment).toBe("20000");
        expect(shortfall?.usageCharges).toBe("18000");
      },
    }),
  ),

  // ---- usage_spike by the meter's own aggregation
  {
    name: "usage_spike compares the meter's aggregation: peak 61 > 3 × average peak 20 = 60 (the sum 61 < 3 × 53.33 would not)",
    spec: { versions: spikeTerms, period: APRIL },
    events: [...spikeHistory, ev("seats", "2026-04-10T00:00:00Z", "61")],
    lines: ["usage seats 61.00"], exceptions: ["usage_spike:seats"],
    check: (r) => {
      const d = r.exceptions[0]?.details;
      expect([d?.aggregation, d?.usage, d?.average, d?.limit]).toEqual(["max", "61", "20", "60"]);
      expect((d?.priorPeriods as Array<{ usage: string }>).map((p) => p.usage)).toEqual(["30", "20", "10"]);
    },
  },
  {
    name: "usage_spike: no spike at exactly the limit, peak 60 = 3 × 20",
    spec: { versions: spikeTerms, period: APRIL },
    events: [...spikeHistory, ev("seats", "2026-04-10T00:00:00Z", "60")],
    lines: ["usage seats 60.00"],
  },
  {
    name: "usage_spike: no spike on a peak of 15 although the sum (20 × 15 = 300 > 3 × 53.33) would spike",
    spec: { versions: spikeTerms, period: APRIL },
    events: [...spikeHistory, ...series("seats", "2026-04-02T00:00:00Z", 20, 24, "15")],
    lines: ["usage seats 15.00"], usages: ["15"],
  },
  {
    name: "usage_spike on a time_weighted meter: 10 seats Jan–Mar (average 10), April 10 then 100 from Apr 16 → 55 > 3 × 10",
    spec: { versions: one({ spikeFactor: "3", meters: [meter("seats", "time_weighted", "1")] }), period: APRIL },
    // April: (10 × 15 days + 100 × 15 days) ÷ 30 = 55; each prior month holds the level 10 set on Jan 1
    events: [ev("seats", "2026-01-01T00:00:00Z", "10"), ev("seats", "2026-04-16T00:00:00Z", "100")],
    lines: ["usage seats 55.00"], usages: ["55"], exceptions: ["usage_spike:seats"],
    check: (r) => {
      const d = r.exceptions[0]?.details;
      expect([d?.aggregation, d?.usage, d?.average]).toEqual(["time_weighted", "55", "10"]);
    },
  },

  // ---- term commitment re-rates the term's periods by each meter's aggregation
  {
    name: "term commitment: earlier periods re-rated by the meter's aggregation (time_weighted 100 in each of Jan–Mar): 1000 − 300 = 700.00",
    spec: {
      contract: { endDate: "2026-03-31" },
      versions: one({ commitment: { amount: "1000", scope: "term" }, meters: [meter("seats", "time_weighted", "1")] }),
      period: "2026-03-01T00:00:00Z",
    },
    events: [ev("seats", "2025-12-15T00:00:00Z", "100")],
    lines: ["usage seats 100.00", "commitment_shortfall 700.00"], usages: ["100"], total: "800.00",
    check: (r) => {
      const shortfall = r.lines.find((l) => l.kind === "commitment_shortfall");
      expect(shortfall?.scope).toBe("term");
      expect(shortfall?.periods?.map((p) => p.usageCharges)).toEqual(["100", "100", "100"]);
    },
  },
];

describe("meters table", () => {
  it("has at least 25 cases", () => expect(cases.length).toBeGreaterThanOrEqual(25));

  it("usageRequest asks to look back only when a meter is latest or time_weighted", () => {
    const ask = (aggregation: Agg) =>
      usageRequest(buildInput({ versions: one({ meters: [meter("m", aggregation, "1", aggregation === "unique_count" ? { uniqueBy: "user" } : {})] }) })).looksBack;
    expect((["sum", "count", "max", "latest", "unique_count", "time_weighted"] as const).map(ask)).toEqual([false, false, false, true, false, true]);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const r = ratePeriod(inputFromEvents(c.spec, c.events));
    if (c.lines) expect(summary(r)).toEqual(c.lines);
    if (c.usages) expect(usageLines(r).map((l) => l.usage)).toEqual(c.usages);
    if (c.total) expect(r.total).toBe(c.total);
    expect(r.exceptions.map((e) => `${e.kind}:${e.subject}`)).toEqual(c.exceptions ?? []);
    c.check?.(r);
  });
});
