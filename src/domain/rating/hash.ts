// inputsHash (docs/rating.md: issuing refuses a preview whose inputs changed): sha256 (hex) of the canonical
// JSON of the normalized rating input and the engine version. Normalization keeps exactly what the result
// depends on, in one spelling: instants as UTC ISO strings with milliseconds, decimals in plain notation
// without trailing zeros, usage restricted to the windows the engine reads with duplicates added up and zero
// sums dropped, issued periods restricted to those overlapping the period, lists sorted. Two inputs that rate
// identically because they differ only in spelling or in irrelevant rows therefore hash identically.
import { CanonicalText, canonicalMember, jsonString } from "../canonical-json.js";
import { type Decimal, formatDecimal } from "../money.js";
import { formatInstant } from "../periods.js";
import { sha256Hex } from "../sha256.js";
import { type CompiledTerms, type MeasuredIndex, indexMeasured, indexUsage, parseDecimalInput, parseInstantInput, planRating, type RatingPlan, type UsageIndex } from "./plan.js";
import { KeptByInputs } from "./memo.js";
import { ENGINE_VERSION, type RatingInput } from "./types.js";

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A window key's bounds as ISO instants (the plan has them for its windows). */
function windowTexts(plan: RatingPlan, key: string): { from: string; to: string } {
  const known = plan.windowsByKey.get(key);
  if (known !== undefined) return known;
  const [from, to] = key.split("|").map(Number) as [number, number];
  return { from: formatInstant(from), to: formatInstant(to) };
}

type RowWriter = (from: string, to: string, key: string, amount: string) => string;

/**
 * The rows of a usage or measured index, sorted by bounds then key, as a canonical JSON array; kept by plan
 * with the windows, keys and amounts they were written from (memo.ts).
 */
function rowsText(plan: RatingPlan, index: UsageIndex | MeasuredIndex, kept: KeptByInputs<RatingPlan, CanonicalText>, row: RowWriter): CanonicalText {
  const entries: unknown[] = [];
  for (const [window, amounts] of index) {
    entries.push(window, amounts.size);
    for (const [key, amount] of amounts) entries.push(key, amount);
  }
  return kept.get(plan, entries, () => writeRows(plan, index, row));
}

const keptUsageRows = new KeptByInputs<RatingPlan, CanonicalText>();
const keptMeasuredRows = new KeptByInputs<RatingPlan, CanonicalText>();

/**
 * The rows are most of what a rating hashes, so each is written here directly (`row` puts its keys in
 * canonical order) rather than built as an object for canonicalJson to walk: instants and plain decimals need
 * no escaping, names go through jsonString. Windows are distinct bounds and keys are distinct within a window,
 * so sorting the windows, then each window's keys, is the order of sorting every row by (from, to, key).
 */
function writeRows(plan: RatingPlan, index: UsageIndex | MeasuredIndex, row: RowWriter): CanonicalText {
  const windows: Array<{ from: string; to: string; amounts: ReadonlyMap<string, Decimal> }> = [];
  for (const [window, amounts] of index) windows.push({ ...windowTexts(plan, window), amounts });
  if (windows.length > 1) windows.sort((a, b) => byKey(a.from, b.from) || byKey(a.to, b.to));
  const rows: string[] = [];
  for (const { from, to, amounts } of windows) {
    const keys = [...amounts.keys()];
    if (keys.length > 1) keys.sort(byKey);
    for (const key of keys) {
      const amount = amounts.get(key) as Decimal;
      if (!amount.isZero()) rows.push(row(from, to, key, formatDecimal(amount)));
    }
  }
  return new CanonicalText(`[${rows.join(",")}]`);
}

const usageRow: RowWriter = (from, to, metric, quantity) =>
  `{"from":"${from}","metric":${jsonString(metric)},"quantity":"${quantity}","to":"${to}"}`;

const measuredRow: RowWriter = (from, to, measure, value) =>
  `{"from":"${from}","measure":${jsonString(measure)},"to":"${to}","value":"${value}"}`;

/** The normalized input: canonicalJson of this object is what the inputsHash hashes. */
interface NormalizedInput {
  engineVersion: string;
  contract: CanonicalText | Record<string, unknown>;
  versions: CanonicalText | Array<Record<string, unknown>>;
  period: CanonicalText;
  usage: CanonicalText;
  measured: CanonicalText;
  alreadyBilled: string;
  creditBalances: Array<{ grantId: string; available: string }>;
  previousCreditsApplied: Array<{ grantId: string; amount: string }>;
  issuedPeriods: Array<{ start: string; end: string }>;
}

/** NormalizedInput's members in canonical order (sorted by UTF-16 code units, as canonicalJson sorts keys). */
const MEMBERS = [
  "alreadyBilled",
  "contract",
  "creditBalances",
  "engineVersion",
  "issuedPeriods",
  "measured",
  "period",
  "previousCreditsApplied",
  "usage",
  "versions",
] as const satisfies ReadonlyArray<keyof NormalizedInput>;

function normalizeInput(input: RatingInput, plan: RatingPlan, usage: UsageIndex, measured: MeasuredIndex): NormalizedInput {
  const { span } = plan.current;
  const c = input.contract;
  return {
    engineVersion: ENGINE_VERSION,
    contract: normalizedContract(c, plan),
    versions: normalizedVersions(input, plan),
    period: periodText(plan),
    usage: rowsText(plan, usage, keptUsageRows, usageRow),
    // The aggregated figures of every other meter (counts, peaks, levels, distinct values), keyed by measure.
    measured: rowsText(plan, measured, keptMeasuredRows, measuredRow),
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

// The contract's text, kept by plan with the members it was written from (memo.ts).
const keptContracts = new KeptByInputs<RatingPlan, CanonicalText>();

/** The contract's members the result depends on; written directly (keys in canonical order) when they are of their types. */
function normalizedContract(c: RatingInput["contract"], plan: RatingPlan): NormalizedInput["contract"] {
  const { id, currency, timezone, billingPeriod, startDate, endDate, roundingMode, allowTrueDown } = c;
  const strings = [billingPeriod, currency, id, roundingMode, startDate, timezone];
  if (typeof allowTrueDown !== "boolean" || (endDate !== null && typeof endDate !== "string") || !strings.every((x) => typeof x === "string")) {
    return { id, currency, timezone, billingPeriod, startDate, endDate, roundingMode, allowTrueDown };
  }
  return keptContracts.get(
    plan,
    [...strings, endDate, allowTrueDown],
    () =>
      new CanonicalText(
        `{"allowTrueDown":${allowTrueDown},"billingPeriod":${jsonString(billingPeriod)},"currency":${jsonString(currency)},` +
          `"endDate":${endDate === null ? "null" : jsonString(endDate)},"id":${jsonString(id)},"roundingMode":${jsonString(roundingMode)},` +
          `"startDate":${jsonString(startDate)},"timezone":${jsonString(timezone)}}`,
      ),
  );
}

const periodTexts = new WeakMap<RatingPlan, CanonicalText>();

/** The period's text (ISO instants need no escaping), by plan. */
function periodText(plan: RatingPlan): CanonicalText {
  let text = periodTexts.get(plan);
  if (text === undefined) {
    const { span } = plan.current;
    text = new CanonicalText(`{"end":"${formatInstant(span.endMs)}","start":"${formatInstant(span.startMs)}"}`);
    periodTexts.set(plan, text);
  }
  return text;
}

// The versions' text, kept by plan (memo.ts) with what it was written from: the versions' numbers, effective
// dates, signing and kinds, and their compiled terms (whose canonical text is written once, plan.ts). Only
// when every part is a plain value and every version's terms have a canonical text, so that writing them
// cannot fail (nor fail differently for being written apart from the rest of the input).
const keptVersions = new KeptByInputs<RatingPlan, CanonicalText>();

const compiledByNumber = new WeakMap<RatingPlan, Map<number, CompiledTerms>>();

/** The plan's compiled terms by version number, by plan. */
function compiledTermsOf(plan: RatingPlan): Map<number, CompiledTerms> {
  let compiled = compiledByNumber.get(plan);
  if (compiled === undefined) compiledByNumber.set(plan, (compiled = new Map(plan.versions.map((v) => [v.version, v.terms]))));
  return compiled;
}

function normalizedVersions(input: RatingInput, plan: RatingPlan): NormalizedInput["versions"] {
  const compiled = compiledTermsOf(plan);
  const sorted = [...input.versions].sort((a, b) => a.version - b.version);
  const parts: unknown[] = [];
  let plain = true;
  for (const v of sorted) {
    const terms = compiled.get(v.version);
    parts.push(v.version, v.effectiveFrom, v.signedAt, v.kind, v.reason, terms);
    if (terms === undefined || terms.canonical === null || !Number.isFinite(v.version) || typeof v.effectiveFrom !== "string") plain = false;
    for (const x of [v.signedAt, v.kind, v.reason]) if (x !== undefined && x !== null && typeof x !== "string") plain = false;
  }
  const normalized = () =>
    sorted.map((v) => {
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
    });
  return plain ? keptVersions.get(plan, parts, () => new CanonicalText(canonicalMember(normalized(), "versions"))) : normalized();
}

// The hash, kept by plan with the members' texts it was computed from (memo.ts): the members that did not
// change are the same texts (those kept above), and comparing them costs far less than hashing the input.
const keptHashes = new KeptByInputs<RatingPlan, string>();

export function inputsHashOfPlan(input: RatingInput, plan: RatingPlan, usage: UsageIndex, measured: MeasuredIndex): string {
  const normalized = normalizeInput(input, plan, usage, measured);
  // canonicalJson(normalized), written member by member (every member is defined, so none is left out).
  const members = MEMBERS.map((key) => canonicalMember(normalized[key], key));
  return keptHashes.get(plan, members, () => {
    let text = "{";
    for (let i = 0; i < MEMBERS.length; i++) text += `${i === 0 ? "" : ","}${jsonString(MEMBERS[i] as string)}:${members[i]}`;
    return sha256Hex(`${text}}`);
  });
}

/** sha256 hex of canonicalJson(normalized input + ENGINE_VERSION): what a calculation's inputsHash is. */
export function inputsHash(input: RatingInput): string {
  const plan = planRating(input);
  return inputsHashOfPlan(input, plan, indexUsage(input.usage, plan), indexMeasured(input.measured, plan));
}
