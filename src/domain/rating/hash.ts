// inputsHash (docs/rating.md: issuing refuses a preview whose inputs changed): sha256 (hex) of the canonical
// JSON of the normalized rating input and the engine version. Normalization keeps exactly what the result
// depends on, in one spelling: instants as UTC ISO strings with milliseconds, decimals in plain notation
// without trailing zeros, usage restricted to the windows the engine reads with duplicates added up and zero
// sums dropped, issued periods restricted to those overlapping the period, lists sorted. Two inputs that rate
// identically because they differ only in spelling or in irrelevant rows therefore hash identically.
import { canonicalJson } from "../canonical-json.js";
import { formatDecimal } from "../money.js";
import { formatInstant } from "../periods.js";
import { sha256Hex } from "../sha256.js";
import { type MeasuredIndex, indexMeasured, indexUsage, parseDecimalInput, parseInstantInput, planRating, type RatingPlan, type UsageIndex } from "./plan.js";
import { ENGINE_VERSION, type RatingInput } from "./types.js";

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function normalizeInput(input: RatingInput, plan: RatingPlan, usage: UsageIndex, measured: MeasuredIndex): unknown {
  const { span } = plan.current;
  const usageRows: Array<{ from: string; to: string; metric: string; quantity: string }> = [];
  for (const [key, byMetric] of usage) {
    const [from, to] = key.split("|").map(Number) as [number, number];
    for (const [metric, quantity] of byMetric) {
      if (!quantity.isZero()) usageRows.push({ from: formatInstant(from), to: formatInstant(to), metric, quantity: formatDecimal(quantity) });
    }
  }
  usageRows.sort((a, b) => byKey(a.from, b.from) || byKey(a.to, b.to) || byKey(a.metric, b.metric));
  // The aggregated figures of every other meter (counts, peaks, levels, distinct values), keyed by measure.
  const measuredRows: Array<{ from: string; to: string; measure: string; value: string }> = [];
  for (const [key, byMeasure] of measured) {
    const [from, to] = key.split("|").map(Number) as [number, number];
    for (const [measure, value] of byMeasure) {
      if (!value.isZero()) measuredRows.push({ from: formatInstant(from), to: formatInstant(to), measure, value: formatDecimal(value) });
    }
  }
  measuredRows.sort((a, b) => byKey(a.from, b.from) || byKey(a.to, b.to) || byKey(a.measure, b.measure));
  const c = input.contract;
  return {
    engineVersion: ENGINE_VERSION,
    contract: {
      id: c.id,
      currency: c.currency,
      timezone: c.timezone,
      billingPeriod: c.billingPeriod,
      startDate: c.startDate,
      endDate: c.endDate,
      roundingMode: c.roundingMode,
      allowTrueDown: c.allowTrueDown,
    },
    versions: [...plan.versions]
      .sort((a, b) => a.version - b.version)
      .map((v) => ({
        version: v.version,
        effectiveFrom: formatInstant(v.effectiveMs),
        signedAt: v.source.signedAt ?? null,
        kind: v.source.kind,
        reason: v.source.reason ?? null,
        terms: v.source.terms,
      })),
    period: { start: formatInstant(span.startMs), end: formatInstant(span.endMs) },
    usage: usageRows,
    measured: measuredRows,
    alreadyBilled: formatDecimal(parseDecimalInput(input.alreadyBilled, "alreadyBilled")),
    creditBalances: input.creditBalances
      .map((b, i) => ({ grantId: b.grantId, available: formatDecimal(parseDecimalInput(b.available, `creditBalances[${i}].available`)) }))
      .sort((a, b) => byKey(a.grantId, b.grantId)),
    previousCreditsApplied: input.previousCreditsApplied
      .map((p, i) => ({ grantId: p.grantId, amount: formatDecimal(parseDecimalInput(p.amount, `previousCreditsApplied[${i}].amount`)) }))
      .filter((p) => p.amount !== "0")
      .sort((a, b) => byKey(a.grantId, b.grantId) || byKey(a.amount, b.amount)),
    issuedPeriods: input.issuedPeriods
      .map((p, i) => ({ startMs: parseInstantInput(p.start, `issuedPeriods[${i}].start`), endMs: parseInstantInput(p.end, `issuedPeriods[${i}].end`) }))
      .filter((p) => p.startMs < span.endMs && p.endMs > span.startMs)
      .sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs)
      .map((p) => ({ start: formatInstant(p.startMs), end: formatInstant(p.endMs) }))
      .filter((p, i, all) => i === 0 || p.start !== all[i - 1]?.start || p.end !== all[i - 1]?.end),
  };
}

export function inputsHashOfPlan(input: RatingInput, plan: RatingPlan, usage: UsageIndex, measured: MeasuredIndex): string {
  return sha256Hex(canonicalJson(normalizeInput(input, plan, usage, measured)));
}

/** sha256 hex of canonicalJson(normalized input + ENGINE_VERSION): what a calculation's inputsHash is. */
export function inputsHash(input: RatingInput): string {
  const plan = planRating(input);
  return inputsHashOfPlan(input, plan, indexUsage(input.usage, plan), indexMeasured(input.measured, plan));
}
