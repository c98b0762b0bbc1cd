// Rating engine throughput: one monthly contract with 5 graduated meters, a mid-month amendment, a prepaid
// credit grant and a spike check over 3 prior periods. Run with `npm run bench`.
import { ContractTerms, ratePeriod, usageRequest, usageWindows, type ContractVersion, type RatingInput } from "../src/domain/index.js";

const metrics = ["api_calls", "storage_gb", "compute_min", "egress_gb", "seats"];
const terms = (scale: string) =>
  ContractTerms.parse({
    platformFee: { amount: "10000.00" },
    commitment: { amount: "20000.00", scope: "period" },
    meters: metrics.map((metric, i) => ({
      metric,
      included: String(1000 * (i + 1)),
      pricing: {
        model: "graduated",
        tiers: [
          { upTo: "100000", unitPrice: `0.0${i + 1}${scale}` },
          { upTo: "1000000", unitPrice: `0.00${i + 1}${scale}`, flatFee: "50.00" },
          { upTo: null, unitPrice: `0.000${i + 1}${scale}` },
        ],
      },
      discountPercent: "5",
      cap: { amount: "50000.00" },
    })),
    discountPercent: "2.5",
    cap: { amount: "200000.00" },
    prepaidCredits: [{ id: "grant-2026", amount: "120000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
    materialityThreshold: "25000.00",
    spikeFactor: "3",
  });

const versions: ContractVersion[] = [
  { version: 1, effectiveFrom: "2026-01-01T05:00:00Z", signedAt: "2025-12-15T00:00:00Z", kind: "original", reason: "signed", terms: terms("") },
  { version: 2, effectiveFrom: "2026-04-16T04:00:00Z", signedAt: "2026-04-10T00:00:00Z", kind: "amendment", reason: "new rates", terms: terms("5") },
];
const base = {
  contract: {
    id: "bench-contract",
    currency: "USD",
    timezone: "America/New_York",
    billingPeriod: "monthly" as const,
    startDate: "2026-01-01",
    endDate: "2026-12-31",
    roundingMode: "half_up" as const,
    allowTrueDown: true,
  },
  versions,
  period: { start: "2026-04-01T04:00:00.000Z", end: "2026-05-01T04:00:00.000Z" },
};
const windows = usageWindows(base);
const input: RatingInput = {
  ...base,
  usage: windows.flatMap((w, wi) => metrics.map((metric, mi) => ({ ...w, metric, quantity: String(123457 * (wi + 1) * (mi + 1)) + ".25" }))),
  alreadyBilled: "10000.00",
  creditBalances: [{ grantId: "grant-2026", available: "90000.00" }],
  previousCreditsApplied: [],
  issuedPeriods: [],
};

const warmup = 300;
const iterations = 3000;
for (let i = 0; i < warmup; i++) ratePeriod(input);
const started = process.hrtime.bigint();
let lines = 0;
for (let i = 0; i < iterations; i++) lines += ratePeriod(input).lines.length;
const elapsedNs = Number(process.hrtime.bigint() - started);
const result = ratePeriod(input);

console.log(`rating engine: ${windows.length} usage windows, ${result.segments.length} segments, ${result.lines.length} lines, total ${result.total}, action ${result.action}`);
console.log(`${iterations} ratings in ${(elapsedNs / 1e6).toFixed(1)} ms`);
console.log(`${Math.round((iterations * 1e9) / elapsedNs)} ratings/s, ${(elapsedNs / iterations / 1e3).toFixed(1)} µs/rating`);
if (lines !== iterations * result.lines.length) throw new Error("non-deterministic line count");

// On a shared machine one run swings widely with the load: the best of a few short rounds is steadier.
const rounds = 5;
let bestNs = Infinity;
for (let r = 0; r < rounds; r++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < 500; i++) ratePeriod(input);
  bestNs = Math.min(bestNs, Number(process.hrtime.bigint() - t) / 500);
}
console.log(`best of ${rounds} rounds of 500: ${Math.round(1e9 / bestNs)} ratings/s, ${(bestNs / 1e3).toFixed(1)} µs/rating`);

// The figures above rate the same usage again, as a preview and its issue do, and the engine keeps what it
// computed from the same figures (src/domain/rating/memo.ts). Usage that changed between ratings is rated
// from scratch: 500 inputs whose every quantity differs, new texts in every round.
let freshNs = Infinity;
for (let r = 0; r < rounds; r++) {
  const fresh = Array.from({ length: 500 }, (_, k) => ({
    ...input,
    usage: input.usage.map((u) => ({ ...u, quantity: `${u.quantity.split(".")[0]}${String(k).padStart(3, "0")}.${r}5` })),
  }));
  const t = process.hrtime.bigint();
  for (const f of fresh) ratePeriod(f);
  freshNs = Math.min(freshNs, Number(process.hrtime.bigint() - t) / fresh.length);
}
console.log(`usage changed every rating: best of ${rounds} rounds of 500: ${Math.round(1e9 / freshNs)} ratings/s, ${(freshNs / 1e3).toFixed(1)} µs/rating`);

// A contract with one meter of each aggregation (and a filtered pair), its figures as the database gives them.
const aggregationTerms = ContractTerms.parse({
  platformFee: { amount: "500.00" },
  commitment: { amount: "20000.00" },
  meters: [
    { metric: "api_calls", included: "100000", pricing: { model: "per_unit", unitPrice: "0.005" } },
    { metric: "transactions", aggregation: "count", pricing: { model: "graduated", tiers: [{ upTo: "1000", unitPrice: "0", flatFee: "99.00" }, { upTo: null, unitPrice: "0.10" }] } },
    { metric: "storage_gb", aggregation: "max", included: "5000", pricing: { model: "per_unit", unitPrice: "0.02" } },
    { metric: "seats_end", aggregation: "latest", included: "50", pricing: { model: "per_unit", unitPrice: "40.00" } },
    { metric: "active_users", aggregation: "unique_count", uniqueBy: "user", pricing: { model: "volume", tiers: [{ upTo: "1000", unitPrice: "2" }, { upTo: null, unitPrice: "1.5" }] } },
    { metric: "seats", aggregation: "time_weighted", included: "100", pricing: { model: "per_unit", unitPrice: "40.00" } },
    { id: "egress-eu", metric: "egress_gb", filter: { region: ["eu"] }, pricing: { model: "per_unit", unitPrice: "0.09" } },
    { id: "egress-us", metric: "egress_gb", filter: { region: ["us"] }, pricing: { model: "per_unit", unitPrice: "0.08" } },
  ],
});
const aggBase = { ...base, versions: [{ ...versions[0]!, terms: aggregationTerms }, { ...versions[1]!, terms: aggregationTerms }] };
const request = usageRequest(aggBase);
const figure = (i: number) => String(2_000_000 + 7919 * i) + ".5";
const aggInput: RatingInput = {
  ...aggBase,
  usage: request.windows.flatMap((w) =>
    ["api_calls", "transactions", "storage_gb", "seats_end", "active_users", "seats", "egress_gb"].map((metric, mi) => ({ ...w, metric, quantity: figure(mi) })),
  ),
  measured: request.measures.map((m, i) => ({ ...m, value: figure(i) })),
  alreadyBilled: "0",
  creditBalances: [],
  previousCreditsApplied: [],
  issuedPeriods: [],
};
for (let i = 0; i < warmup; i++) ratePeriod(aggInput);
let aggBest = Infinity;
for (let r = 0; r < rounds; r++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < 500; i++) ratePeriod(aggInput);
  aggBest = Math.min(aggBest, Number(process.hrtime.bigint() - t) / 500);
}
const aggResult = ratePeriod(aggInput);
console.log(
  `one meter of each aggregation: ${request.measures.length} figures, ${aggResult.lines.length} lines, total ${aggResult.total}; ` +
    `best of ${rounds} rounds of 500: ${Math.round(1e9 / aggBest)} ratings/s, ${(aggBest / 1e3).toFixed(1)} µs/rating`,
);
