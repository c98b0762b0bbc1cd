// inputsHash (docs/rating.md: issuing refuses a preview whose inputs changed): sha256 (hex) of the canonical
// JSON of the normalized rating input and the engine version. Normalization keeps exactly what the result
// depends on, in one spelling: instants as UTC ISO strings with milliseconds, decimals in plain notation
// without trailing zeros, usage restricted to the windows the engine reads with duplicates added up and zero
// sums dropped, issued periods restricted to those overlapping the period, lists sorted. Two inputs that rate
// identically because they differ only in spelling or in irrelevant rows therefore hash identically.
import { CanonicalText, canonicalJson, jsonString } from "../canonical-json.js";
import { formatDecimal } from "../money.js";
import { formatInstant } from "../periods.js";
import { sha256Hex } from "../sha256.js";
import { type MeasuredIndex, indexMeasured, indexUsage, parseDecimalInput, parseInstantInput, planRating, type RatingPlan, type UsageIndex } from "./plan.js";
import { ENGINE_VERSION, type RatingInput } from "./types.js";

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Row {
  from: string;
  to: string;
  key: string;
  /** The row's canonical JSON. */
  text: string;
}

const byRow = (a: Row, b: Row) => byKey(a.from, b.from) || byKey(a.to, b.to) || byKey(a.key, b.key);

/** A window key's bounds as ISO instants (the plan has them for its windows). */
function windowTexts(plan: RatingPlan, key: string): { from: string; to: string } {
  const known = plan.windowsByKey.get(key);
  if (known !== undefined) return known;
  const [from, to] = key.split("|").map(Number) as [number, number];
  return { from: formatInstant(from), to: formatInstant(to) };
}

/**
 * The rows of a usage or measured index, sorted, as a canonical JSON array. The rows are most of what a
 * rating hashes, so each is written here directly (`row` puts its keys in canonical order) rather than built
 * as an object for canonicalJson to walk: instants and plain decimals need no escaping, names go through
 * jsonString.
 */
function rowsText(
  plan: RatingPlan,
  index: UsageIndex | MeasuredIndex,
  row: (from: string, to: string, key: string, amount: string) => string,
): CanonicalText {
  const rows: Row[] = [];
  for (const [window, byKey] of index) {
    const { from, to } = windowTexts(plan, window);
    for (const [key, amount] of byKey) {
      if (!amount.isZero()) rows.push({ from, to, key, text: row(from, to, key, formatDecimal(amount)) });
    }
  }
  rows.sort(byRow);
  return new CanonicalText(`[${rows.map((r) => r.text).join(",")}]`);
}

const usageRow = (from: string, to: string, metric: string, quantity: string) =>
  `{"from":"${from}","metric":${jsonString(metric)},"quantity":"${quantity}","to":"${to}"}`;

const measuredRow = (from: string, to: string, measure: string, value: string) =>
  `{"from":"${from}","measure":${jsonString(measure)},"to":"${to}","value":"${value}"}`;

function normalizeInput(input: RatingInput, plan: RatingPlan, usage: UsageIndex, measured: MeasuredIndex): unknown {
  const { span } = plan.current;
  const c = input.contract;
  const compiled = new Map(plan.versions.map((v) => [v.version, v.terms]));
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
    versions: [...input.versions]
      .sort((a, b) => a.version - b.version)
      .map((v) => {
        const terms = compiled.get(v.version);
        return {
          version: v.version,
          effectiveFrom: formatInstant(parseInstantInput(v.effectiveFrom, "effectiveFrom")),
          signedAt: v.signedAt ?? null,
          kind: v.kind,
          reason: v.reason ?? null,
          // Written once per compiled terms (plan.ts), not walked again by every rating.
          terms: terms === undefined || terms.canonical === null ? v.terms : new CanonicalText(terms.canonical),
        };
      }),
    period: { start: formatInstant(span.startMs), end: formatInstant(span.endMs) },
    usage: rowsText(plan, usage, usageRow),
    // The aggregated figures of every other meter (counts, peaks, levels, distinct values), keyed by measure.
    measured: rowsText(plan, measured, measuredRow),
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
