// Money and quantities (docs/conventions.md): decimal.js only, never JavaScript `number`.
//
// decimal.js is configured here, once, for the whole process: 50 significant digits (the contract asks for at
// least 34 on fractions) and never exponential notation in toString(), so a Decimal always prints as a
// plain decimal string. Every domain module imports Decimal from this file so the configuration is applied
// before any arithmetic.
import { Decimal } from "decimal.js";

Decimal.set({
  precision: 50,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -9e15,
  toExpPos: 9e15,
});

export { Decimal };

export type RoundingMode = "half_up" | "half_even";

/**
 * Active ISO 4217 currency codes (list one) with their minor units, written out explicitly so the engine
 * does not depend on the ICU data of the Node build (CLDR's digits differ from ISO 4217 for a few
 * currencies, e.g. IQD, HUF). Codes whose minor unit is "N.A." in ISO 4217 (precious metals XAU, XAG, XPD,
 * XPT, bond-market units XBA..XBD, XDR, XSU, XUA, the test code XTS and XXX) are not money a contract can be
 * written in, and are deliberately absent.
 */
const MINOR_UNITS: Readonly<Record<string, number>> = Object.freeze({
  AED: 2, AFN: 2, ALL: 2, AMD: 2,
  ANG: 2, // Netherlands Antillean guilder: being replaced by XCG (2025); kept for contracts written in it.
  AOA: 2, ARS: 2, AUD: 2, AWG: 2, AZN: 2,
  BAM: 2, BBD: 2, BDT: 2, BGN: 2, BHD: 3, BIF: 0, BMD: 2, BND: 2, BOB: 2, BOV: 2, BRL: 2, BSD: 2, BTN: 2,
  BWP: 2, BYN: 2, BZD: 2,
  CAD: 2, CDF: 2, CHE: 2, CHF: 2, CHW: 2, CLF: 4, CLP: 0, CNY: 2, COP: 2, COU: 2, CRC: 2, CUC: 2, CUP: 2,
  CVE: 2, CZK: 2,
  DJF: 0, DKK: 2, DOP: 2, DZD: 2,
  EGP: 2, ERN: 2, ETB: 2, EUR: 2,
  FJD: 2, FKP: 2,
  GBP: 2, GEL: 2, GHS: 2, GIP: 2, GMD: 2, GNF: 0, GTQ: 2, GYD: 2,
  HKD: 2, HNL: 2, HTG: 2, HUF: 2,
  IDR: 2, ILS: 2, INR: 2, IQD: 3, IRR: 2, ISK: 0,
  JMD: 2, JOD: 3, JPY: 0,
  KES: 2, KGS: 2, KHR: 2, KMF: 0, KPW: 2, KRW: 0, KWD: 3, KYD: 2, KZT: 2,
  LAK: 2, LBP: 2, LKR: 2, LRD: 2, LSL: 2, LYD: 3,
  MAD: 2, MDL: 2, MGA: 2, MKD: 2, MMK: 2, MNT: 2, MOP: 2, MRU: 2, MUR: 2, MVR: 2, MWK: 2, MXN: 2, MXV: 2,
  MYR: 2, MZN: 2,
  NAD: 2, NGN: 2, NIO: 2, NOK: 2, NPR: 2, NZD: 2,
  OMR: 3,
  PAB: 2, PEN: 2, PGK: 2, PHP: 2, PKR: 2, PLN: 2, PYG: 0,
  QAR: 2,
  RON: 2, RSD: 2, RUB: 2, RWF: 0,
  SAR: 2, SBD: 2, SCR: 2, SDG: 2, SEK: 2, SGD: 2, SHP: 2, SLE: 2, SOS: 2, SRD: 2, SSP: 2, STN: 2, SVC: 2,
  SYP: 2, SZL: 2,
  THB: 2, TJS: 2, TMT: 2, TND: 3, TOP: 2, TRY: 2, TTD: 2, TWD: 2, TZS: 2,
  UAH: 2, UGX: 0, USD: 2, USN: 2, UYI: 0, UYU: 2, UYW: 4, UZS: 2,
  VED: 2, VES: 2, VND: 0, VUV: 0,
  WST: 2,
  XAF: 0, XCD: 2, XCG: 2, XOF: 0, XPF: 0,
  YER: 2,
  ZAR: 2, ZMW: 2, ZWG: 2,
});

/** Every currency code the engine accepts, sorted. */
export const CURRENCY_CODES: readonly string[] = Object.freeze(Object.keys(MINOR_UNITS).sort());

export function isKnownCurrency(code: string): boolean {
  return Object.prototype.hasOwnProperty.call(MINOR_UNITS, code);
}

/** The number of decimals of the currency's minor unit (USD 2, JPY 0, BHD 3). Throws for an unknown code. */
export function minorUnits(code: string): number {
  const units = isKnownCurrency(code) ? MINOR_UNITS[code] : undefined;
  if (units === undefined) throw new RangeError(`unknown ISO 4217 currency code "${code}"`);
  return units;
}

// Parsed decimals by text (valid ones only). Every rating parses the same terms and balances again (usage
// sums: plan.ts keeps its own, parseDecimal); Decimals are immutable ("not changed by their methods"), so one
// instance per text can be shared. Bounded. Each one's text is kept beside it (parsedTexts below), for
// formatDecimal: in a plain Map cleared with this one, not the WeakMap of long-lived values, whose entries
// cost the collector far more.
const parsedDecimals = new Map<string, Decimal>();
const parsedTexts = new Map<Decimal, string>();

/** A Decimal from a decimal string; throws a RangeError naming `what` if the string is not a decimal. */
export function toDecimal(value: string | Decimal, what = "value"): Decimal {
  if (typeof value === "string") {
    const cached = parsedDecimals.get(value);
    if (cached !== undefined) return cached;
  }
  if (Decimal.isDecimal(value)) return value as Decimal;
  const plain = plainDecimal(value);
  const parsed = plain ?? otherDecimal(value, what);
  if (parsedDecimals.size >= 20_000) {
    parsedDecimals.clear();
    parsedTexts.clear();
  }
  parsedDecimals.set(value, parsed);
  // The constructor keeps every digit, so a text already in plain form is the value's own text.
  parsedTexts.set(parsed, plain !== null ? value : plainText(parsed));
  return parsed;
}

/**
 * A Decimal from a decimal string as toDecimal parses it (and throws), a new instance not shared through
 * toDecimal's cache: for texts seldom read twice, which their caller keeps for itself (plan.ts).
 */
export function parseDecimal(value: string, what = "value"): Decimal {
  return plainDecimal(value) ?? otherDecimal(value, what);
}

const LOG_BASE = 7; // decimal.js keeps its digits in words of 7 decimal digits

/**
 * The Decimal of a text in toFixed's plain form (no "+", no leading zero but the units' one, no trailing zero
 * after the point, not "-0"), null for anything else. What
 * `new Decimal(text)` makes of it, digit for digit — sign, exponent and words of LOG_BASE digits, as
 * decimal.js's own parseDecimal lays them out (test/domain/money-and-hashing.test.ts compares the two) —
 * checked and built in one pass over the characters rather than by two regular expressions and a dozen
 * string operations: usage sums are parsed afresh by every rating whose usage changed.
 */
function plainDecimal(text: unknown): Decimal | null {
  if (typeof text !== "string") return null;
  const n = text.length;
  let start = 0;
  if (n > 0 && text.charCodeAt(0) === 45) start = 1; // "-"
  if (start === n) return null;
  // The integer digits: "0", or no leading zero.
  let i = start;
  const first = text.charCodeAt(i);
  if (first === 48) i++;
  else {
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
    }
    if (i === start) return null;
  }
  const dot = i;
  if (dot < n) {
    // A point, then at least one digit, the last not a zero.
    if (text.charCodeAt(dot) !== 46 || dot + 1 === n || text.charCodeAt(n - 1) === 48) return null;
    for (let j = dot + 1; j < n; j++) {
      const c = text.charCodeAt(j);
      if (c < 48 || c > 57) return null;
    }
  }
  // The significant digits: from the first non-zero one (the fraction's, after "0."), up to the last
  // non-zero one (an integer's trailing zeros are not digits of its words, its exponent holds them).
  const intZero = first === 48;
  let from = start;
  let exponent = dot - start - 1; // of the first digit
  let digits: string;
  if (intZero) {
    if (dot === n) {
      if (start === 1) return null; // "-0" (a negative zero is not plain)
      return new Decimal(0);
    }
    from = dot + 1;
    while (text.charCodeAt(from) === 48) from++;
    exponent = dot - from; // −1 for 0.1, −3 for 0.001
    digits = text.slice(from);
  } else if (dot === n) {
    let end = n;
    while (text.charCodeAt(end - 1) === 48) end--;
    digits = text.slice(from, end);
  } else {
    digits = text.slice(from, dot) + text.slice(dot + 1);
  }
  const words: number[] = [];
  const len = digits.length;
  let k = (exponent + 1) % LOG_BASE;
  if (exponent < 0) k += LOG_BASE;
  let rest: string;
  if (k < len) {
    if (k > 0) words.push(+digits.slice(0, k));
    for (; k < len - LOG_BASE; k += LOG_BASE) words.push(+digits.slice(k, k + LOG_BASE));
    rest = digits.slice(k);
    k = LOG_BASE - rest.length;
  } else {
    rest = digits;
    k -= len;
  }
  words.push(k === 0 ? +rest : +rest * 10 ** k);
  const x = new Decimal(0);
  (x as unknown as { s: number }).s = start === 1 ? -1 : 1;
  (x as unknown as { e: number }).e = exponent;
  (x as unknown as { d: number[] }).d = words;
  return x;
}

/** A decimal string not in plain form (a sign, zeros, spaces to trim); throws a RangeError naming `what` for anything else. */
function otherDecimal(value: unknown, what: string): Decimal {
  if (typeof value !== "string" || !/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(value.trim())) {
    throw new RangeError(`${what} must be a decimal string, got ${JSON.stringify(value)}`);
  }
  return new Decimal(value.trim());
}

/** /^-0(\.0*)?$/ without a regex: a zero that toFixed wrote with a minus sign ("-0", "-0.00"). */
function isNegativeZeroText(text: string): boolean {
  if (text.charCodeAt(0) !== 45 || text.charCodeAt(1) !== 48) return false; // "-0"
  if (text.length === 2) return true;
  if (text.charCodeAt(2) !== 46) return false; // "."
  for (let i = 3; i < text.length; i++) if (text.charCodeAt(i) !== 48) return false;
  return true;
}

/** A toFixed text without the minus sign of a negative zero. */
export function unsignedZero(text: string): string {
  return isNegativeZeroText(text) ? text.slice(1) : text;
}

function decimalRounding(mode: RoundingMode): Decimal.Rounding {
  return mode === "half_even" ? Decimal.ROUND_HALF_EVEN : Decimal.ROUND_HALF_UP;
}

/**
 * Rounds an amount to the currency's minor unit (docs/conventions.md, "Rounding"; docs/rating.md, rule 9). `half_up` rounds a tie
 * away from zero (so a negative line rounds like its positive counterpart); `half_even` to the even digit.
 */
export function roundMoney(amount: Decimal, currency: string, mode: RoundingMode): Decimal {
  const digits = minorUnits(currency);
  if (amount.decimalPlaces() <= digits) return amount.isZero() ? ZERO : amount; // nothing to round (nor copy)
  const rounded = amount.toDecimalPlaces(digits, decimalRounding(mode));
  return rounded.isZero() ? ZERO : rounded;
}

/** Rounds an amount towards zero to the currency's minor unit (used for balances that must not be exceeded). */
export function truncateMoney(amount: Decimal, currency: string): Decimal {
  const digits = minorUnits(currency);
  if (amount.decimalPlaces() <= digits) return amount.isZero() ? ZERO : amount; // nothing to truncate
  const truncated = amount.toDecimalPlaces(digits, Decimal.ROUND_DOWN);
  return truncated.isZero() ? ZERO : truncated;
}

/** Formats an amount with exactly the currency's number of decimals: "32000.00", JPY "1234", BHD "1.500". */
export function formatMoney(amount: Decimal, currency: string): string {
  const digits = minorUnits(currency);
  // A rounded amount (most are) has no digit to round away: its plain text padded with zeros is toFixed's,
  // without the rounding toFixed(digits) always does, several times the cost of writing the text.
  if (amount.isFinite() && amount.decimalPlaces() <= digits) return withDecimals(formatDecimal(amount), digits);
  return unsignedZero(amount.toFixed(digits));
}

/** A plain decimal text with at least `digits` decimals (zeros appended): toFixed(digits) of a value with no more. */
export function withDecimals(text: string, digits: number): string {
  const dot = text.indexOf(".");
  const has = dot < 0 ? 0 : text.length - dot - 1;
  if (has >= digits) return text;
  return `${dot < 0 ? `${text}.` : text}${"0".repeat(digits - has)}`;
}

// formatDecimal is called hundreds of times per rating, often on the same instances: the Decimals toDecimal
// hands out (parsedTexts), those kept with keepText (the terms, compiled once; terms × a segment's fraction,
// kept with the plan), ZERO, and a value written into several fields of one line. Decimals are immutable, so
// an instance's text never changes; toFixed is the expensive part.
const keptTexts = new WeakMap<Decimal, string>();

/** Remembers a long-lived Decimal's text (a WeakMap: kept as long as the value), for formatDecimal. */
export function keepText(value: Decimal): Decimal {
  if (!keptTexts.has(value)) keptTexts.set(value, parsedTexts.get(value) ?? plainText(value));
  return value;
}
const RECENT = 8; // a power of two
const recentValues: Array<Decimal | null> = new Array<Decimal | null>(RECENT).fill(null);
const recentTexts: string[] = new Array<string>(RECENT).fill("");
let recentNext = 0;

function plainText(value: Decimal): string {
  const text = value.toFixed();
  return text === "-0" ? "0" : text;
}

/** A quantity or fraction at full precision, in plain notation, without trailing zeros ("400000", "0.5"). */
export function formatDecimal(value: Decimal): string {
  if (value === ZERO) return "0";
  const kept = keptTexts.get(value);
  if (kept !== undefined) return kept;
  const parsed = parsedTexts.get(value);
  if (parsed !== undefined) return parsed;
  for (let i = 0; i < RECENT; i++) if (recentValues[i] === value) return recentTexts[i] as string;
  const text = plainText(value);
  recentValues[recentNext] = value;
  recentTexts[recentNext] = text;
  recentNext = (recentNext + 1) & (RECENT - 1);
  return text;
}

/**
 * Money columns are numeric(20,6): 14 integer digits. Every stored amount (a document line, a total, an
 * already-billed sum, a delta, an external billing) must be smaller than this in magnitude.
 */
const MONEY_LIMIT = new Decimal("1e14");

export function fitsMoneyColumn(amount: Decimal): boolean {
  return amount.abs().lessThan(MONEY_LIMIT);
}

/** The largest storable amount in the currency: "99999999999999.99" (USD), "99999999999999" (JPY). */
export function largestMoney(currency: string): string {
  return formatMoney(MONEY_LIMIT.minus(new Decimal(10).pow(-minorUnits(currency))), currency);
}

export const ZERO = new Decimal(0);
export const HUNDRED = new Decimal(100);

/**
 * The value rounded to the precision, as every operation's result is: itself, unless it has more significant
 * digits (a parsed input can). What 0 + value is for a non-zero value.
 */
export function atPrecision(value: Decimal): Decimal {
  return value.precision() <= Decimal.precision ? value : value.toSignificantDigits(Decimal.precision);
}

export function sum(values: readonly Decimal[]): Decimal {
  // Adding 0 to a total (at the precision) leaves it as it is, and 0 + v is v at the precision: only the
  // additions that change something are made. Many summed lines are 0, and every sum starts from 0.
  let total = ZERO;
  for (const v of values) {
    if (v.isZero()) continue;
    total = total === ZERO ? atPrecision(v) : total.plus(v);
  }
  return total;
}

/**
 * Whether every sum of these values, in any order, is exact at the precision (so that sums of them may be
 * regrouped without changing a digit): finite values of at most 4 decimals (amounts rounded to a minor unit)
 * below 10^41, fewer than 10^5 of them, add up to less than 10^46 with at most 4 decimals, which is at most
 * 50 significant digits.
 */
export function addsExactly(values: readonly Decimal[]): boolean {
  if (values.length >= 100_000) return false;
  for (const v of values) if (!v.isZero() && (!v.isFinite() || v.e > 40 || v.decimalPlaces() > 4)) return false;
  return true;
}

export function max(a: Decimal, b: Decimal): Decimal {
  return a.greaterThanOrEqualTo(b) ? a : b;
}

export function min(a: Decimal, b: Decimal): Decimal {
  return a.lessThanOrEqualTo(b) ? a : b;
}
