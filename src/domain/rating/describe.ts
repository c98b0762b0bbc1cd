// The words of a line's `description`: what a customer reads to check the number (docs/rating.md,
// "Explanations"). Pure: dates are read in the contract's timezone, never from a clock.
//
// Decisions:
//  - Figures are never rounded for display: money shows at least the currency's decimals ("20,000.00"), more
//    when the exact value has them. A value with more than 6 decimals (a prorated bound, 1,000 × 50/90 =
//    555.5555…) shows its first 6, truncated, and "…": every digit shown is a true digit, and the line's
//    fields (`included`, `tiers`, `gross`, `unroundedAmount`) carry the exact value. Digits are grouped by
//    thousands for reading; the JSON fields keep plain decimal strings.
//  - A segment is named by its inclusive local dates ("Jan 1–Feb 9, 2026") when it starts and ends at local
//    midnights, else by its local start and (exclusive) end times ("Jan 10, 2026 12:00 to Feb 1, 2026 00:00").
//  - Proration is stated in whole time units, the largest unit that measures both the segment and the nominal
//    period exactly: "10 of 31 days", else hours (a DST month is 743 or 745 hours, a mid-day amendment),
//    minutes or seconds — the same ratio as `fraction`, which is computed in seconds. A segment covering the
//    whole nominal period says nothing about proration.
import { type Decimal, formatDecimal, minorUnits, withDecimals } from "../money.js";
import { localDate, startOfLocalDay } from "../periods.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const SHOWN_DECIMALS = 6;

/**
 * Digits grouped by thousands, at most SHOWN_DECIMALS decimals (truncated, "…"). A plain decimal text (what
 * toFixed writes: [-]digits[.digits]) is grouped by hand, several times faster than the regex below, which
 * stays for anything else (it is the definition).
 */
function group(text: string): string {
  const n = text.length;
  let start = 0;
  let sign = "";
  if (text.charCodeAt(0) === 45) {
    sign = "-";
    start = 1;
  }
  let dot = n;
  for (let i = start; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 && dot === n) dot = i;
    else if (c < 48 || c > 57) return groupByRegex(text);
  }
  const intDigits = dot - start;
  const shortFraction = n - dot <= SHOWN_DECIMALS + 1;
  if (intDigits <= 3 && shortFraction) return text; // no comma, nothing cut: the text itself
  const head = start + (intDigits % 3 || Math.min(3, intDigits)); // end of the digits before the first comma
  let int = sign + text.slice(start, head);
  for (let i = head; i < dot; i += 3) int += `,${text.slice(i, i + 3)}`;
  if (dot === n) return int;
  return shortFraction ? int + text.slice(dot) : `${int}${text.slice(dot, dot + SHOWN_DECIMALS + 1)}…`;
}

function groupByRegex(text: string): string {
  const [sign, digits] = text.startsWith("-") ? ["-", text.slice(1)] : ["", text];
  const [int = "0", frac] = digits.split(".");
  const shown = frac === undefined ? "" : frac.length > SHOWN_DECIMALS ? `.${frac.slice(0, SHOWN_DECIMALS)}…` : `.${frac}`;
  return `${sign}${int.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${shown}`;
}

/** A quantity, digits grouped: "1,400,000", "322,580.645161…" (at most 6 decimals shown, truncated). */
export function quantityText(value: Decimal): string {
  return group(formatDecimal(value));
}

/** quantityText of a value from its formatDecimal text, when the caller has it. */
export function quantityTextOf(text: string): string {
  return group(text);
}

/** Money with at least the currency's decimals: "20,000.00", "3,225.806451…" (at most 6 decimals shown, truncated). */
export function moneyText(value: Decimal, currency: string): string {
  // toFixed(max(minor units, decimalPlaces)) is the plain text padded with zeros to the minor units: written
  // from formatDecimal's text, which money.ts often has already (the same amount is in the line's fields).
  return group(withDecimals(formatDecimal(value), minorUnits(currency)));
}

/** A percentage as written in the terms: "10%". */
export function percentText(value: Decimal): string {
  return `${formatDecimal(value)}%`;
}

const isLocalMidnight = (ms: number, timezone: string) => startOfLocalDay(localDate(ms, timezone), timezone) === ms;

/** A local calendar date as an ISO date, "2026-03-31". */
function isoLocalDate(ms: number, timezone: string): string {
  const d = localDate(ms, timezone);
  return `${String(d.year).padStart(4, "0")}-${String(d.month).padStart(2, "0")}-${String(d.day).padStart(2, "0")}`;
}

/**
 * A half-open span [fromMs, toMs) as inclusive local dates, "2026-01-01 to 2026-03-31" (the backup CSV's
 * period): the last day is the one holding the span's last instant.
 */
export function inclusiveDates(fromMs: number, toMs: number, timezone: string): string {
  return `${isoLocalDate(fromMs, timezone)} to ${isoLocalDate(Math.max(fromMs, toMs - 1), timezone)}`;
}

function dayText(ms: number, timezone: string, withYear: boolean): string {
  const d = localDate(ms, timezone);
  return `${MONTHS[d.month - 1]} ${d.day}${withYear ? `, ${d.year}` : ""}`;
}

// One "HH:mm" formatter per timezone: constructing an Intl.DateTimeFormat costs far more than formatting.
const clockFormatters = new Map<string, Intl.DateTimeFormat>();

function timeText(ms: number, timezone: string): string {
  let clock = clockFormatters.get(timezone);
  if (clock === undefined) {
    clock = new Intl.DateTimeFormat("en-GB", { timeZone: timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    clockFormatters.set(timezone, clock);
  }
  return `${dayText(ms, timezone, true)} ${clock.format(new Date(ms))}`;
}

/** A segment's dates in the contract's timezone: "Jan 1–Feb 9, 2026", "Dec 15, 2026–Jan 14, 2027". */
export function spanText(fromMs: number, toMs: number, timezone: string): string {
  if (!isLocalMidnight(fromMs, timezone) || !isLocalMidnight(toMs, timezone))
    return `${timeText(fromMs, timezone)} to ${timeText(toMs, timezone)}`;
  const first = localDate(fromMs, timezone);
  const lastMs = toMs - 1;
  const last = localDate(lastMs, timezone);
  if (first.year === last.year && first.month === last.month && first.day === last.day) return dayText(fromMs, timezone, true);
  if (first.year === last.year) return `${dayText(fromMs, timezone, false)}–${dayText(lastMs, timezone, true)}`;
  return `${dayText(fromMs, timezone, true)}–${dayText(lastMs, timezone, true)}`;
}

const UNITS: Array<[ms: number, name: string]> = [
  [86_400_000, "days"],
  [3_600_000, "hours"],
  [60_000, "minutes"],
  [1_000, "seconds"],
];

/**
 * The share of the nominal period a segment covers, in whole units: "10 of 31 days", "239 of 743 hours";
 * null when it covers the whole period. Falls back to the fraction itself for sub-second spans.
 */
export function shareText(segmentMs: number, nominalPeriodMs: number, fraction: Decimal): string | null {
  if (segmentMs === nominalPeriodMs) return null;
  for (const [unit, name] of UNITS)
    if (segmentMs % unit === 0 && nominalPeriodMs % unit === 0) return `${segmentMs / unit} of ${nominalPeriodMs / unit} ${name}`;
  return `${formatDecimal(fraction)} of the period`;
}

/** "×" a share, or nothing for a whole period: "10,000.00 × 10 of 31 days". */
export function timesShare(text: string, share: string | null): string {
  return share === null ? text : `${text} × ${share}`;
}
