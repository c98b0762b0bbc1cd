// Billing periods in the contract's IANA timezone (docs/conventions.md, "Time"). Pure: Intl only, no clock.
//
// - The term is [local midnight of startDate, local midnight of the day after endDate), or open-ended when
//   endDate is null (an evergreen contract).
// - Periods are aligned to startDate: period k starts at local midnight of startDate + k × (1, 3 or 12)
//   months. The day of the month is anchored to startDate's day and clamped to the month's length, without
//   drifting: a contract starting Jan 31 has periods starting Jan 31, Feb 28 (29), Mar 31, Apr 30, ...
// - "Local midnight" is the first instant of that calendar day in the timezone, so a day whose midnight is
//   skipped by a DST change starts at the first wall time that exists (e.g. 01:00).
// - A period cut short by the term end is clipped (`end` = term end) but keeps its `nominalEnd`: its segments
//   are prorated against the nominal period length, exactly like a mid-period amendment.
// Milliseconds since the epoch are plain integers (`number`); they never carry money or quantities.

import { ValidationError } from "../errors.js";

export type BillingPeriodUnit = "monthly" | "quarterly" | "annual";

/** What periods depend on: a subset of the contract. */
export interface PeriodContract {
  startDate: string;
  endDate: string | null;
  timezone: string;
  billingPeriod: BillingPeriodUnit;
}

/** A billing period of a contract, half-open [start, end), as ISO 8601 instants (UTC, milliseconds). */
export interface BillingPeriod {
  /** 0 for the period starting on startDate. */
  index: number;
  start: string;
  end: string;
  /** Where the period would end had the term not ended first; equal to `end` unless `clipped`. */
  nominalEnd: string;
  clipped: boolean;
}

/** The same period in epoch milliseconds, for arithmetic inside the domain. */
export interface PeriodSpan {
  index: number;
  startMs: number;
  endMs: number;
  nominalEndMs: number;
}

const MONTHS_PER_PERIOD: Record<BillingPeriodUnit, number> = { monthly: 1, quarterly: 3, annual: 12 };

/** A contract's calendar or an instant the periods cannot be laid out from: the input as a whole is invalid. */
export class PeriodError extends ValidationError {
  override name = "PeriodError";
  constructor(message: string) {
    super([{ field: "", message }], message);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Calendar dates

export interface CalendarDate {
  year: number;
  month: number; // 1..12
  day: number; // 1..31
}

// Parsed calendar dates by text (valid ones only): periods are laid out from the same few dates over and
// over. Callers get a copy, so the cached object is never shared.
const calendarDates = new Map<string, CalendarDate>();

function parseCalendarDate(text: string, what = "date"): CalendarDate {
  const cached = typeof text === "string" ? calendarDates.get(text) : undefined;
  if (cached !== undefined) return { year: cached.year, month: cached.month, day: cached.day };
  const date = parseCalendarDateUncached(text, what);
  if (calendarDates.size >= 10_000) calendarDates.clear();
  calendarDates.set(text, date);
  return { year: date.year, month: date.month, day: date.day };
}

function parseCalendarDateUncached(text: string, what: string): CalendarDate {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) throw new PeriodError(`${what} must be a calendar date YYYY-MM-DD, got ${JSON.stringify(text)}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw new PeriodError(`${what} is not a real calendar date: ${text}`);
  }
  return { year, month, day };
}

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  // Arithmetic instead of a Date per call. Date.UTC reads years 0..99 as 1900..1999 (so year 0 is not a leap
  // year here): kept, and anything unusual is left to Date.
  if (!Number.isInteger(year) || !Number.isInteger(month) || month < 1 || month > 12 || year < 0 || year > 200_000) {
    return new Date(Date.UTC(year, month, 0)).getUTCDate();
  }
  if (month !== 2) return DAYS_IN_MONTH[month] as number;
  const y = year <= 99 ? year + 1900 : year;
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
}

function addDays(date: CalendarDate, days: number): CalendarDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** startDate + n months, the day anchored to `anchorDay` and clamped to the month's length. */
function addMonthsAnchored(date: CalendarDate, months: number, anchorDay: number): CalendarDate {
  const total = date.year * 12 + (date.month - 1) + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12 + 1;
  return { year, month, day: Math.min(anchorDay, daysInMonth(year, month)) };
}

function dateKey(d: CalendarDate): number {
  return d.year * 10000 + d.month * 100 + d.day;
}

// ---------------------------------------------------------------------------------------------------------
// Time zones (Intl only)

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone: timezone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch {
      throw new PeriodError(`unknown IANA timezone "${timezone}"`);
    }
    formatters.set(timezone, f);
  }
  return f;
}

export function isValidTimezone(timezone: string): boolean {
  try {
    formatterFor(timezone);
    return true;
  } catch {
    return false;
  }
}

interface WallTime extends CalendarDate {
  hour: number;
  minute: number;
  second: number;
}

// Wall times by timezone, then instant. Intl's formatToParts costs microseconds per call and the engine asks
// for the same few instants (period bounds, amendment instants) again and again, within a rating and across
// ratings. Bounded per timezone; the objects are private and never mutated.
const wallTimes = new Map<string, Map<number, WallTime>>();
const WALL_TIMES_PER_ZONE = 20_000;

function wallTime(ms: number, timezone: string): WallTime {
  let byMs = wallTimes.get(timezone);
  if (byMs === undefined) {
    formatterFor(timezone); // an unknown timezone throws here, before anything is cached
    byMs = new Map();
    wallTimes.set(timezone, byMs);
  }
  let w = byMs.get(ms);
  if (w === undefined) {
    w = wallTimeUncached(ms, timezone);
    if (byMs.size >= WALL_TIMES_PER_ZONE) byMs.clear();
    byMs.set(ms, w);
  }
  return w;
}

function wallTimeUncached(ms: number, timezone: string): WallTime {
  const w: WallTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const p of formatterFor(timezone).formatToParts(new Date(ms))) {
    switch (p.type) {
      case "year": w.year = Number(p.value); break;
      case "month": w.month = Number(p.value); break;
      case "day": w.day = Number(p.value); break;
      case "hour": w.hour = Number(p.value) % 24; break;
      case "minute": w.minute = Number(p.value); break;
      case "second": w.second = Number(p.value); break;
      default: break;
    }
  }
  return w;
}

/** The calendar date of an instant in the timezone. */
export function localDate(ms: number, timezone: string): CalendarDate {
  const w = wallTime(ms, timezone);
  return { year: w.year, month: w.month, day: w.day };
}

/** UTC offset (local − UTC) in ms at an instant. */
function offsetAt(ms: number, timezone: string): number {
  const w = wallTime(ms, timezone);
  const wallMs = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  const wholeSecond = ms - (((ms % 1000) + 1000) % 1000);
  return wallMs - wholeSecond;
}

// Midnights by timezone, then dateKey (a number: no key string to build and hash on every lookup).
const midnightCache = new Map<string, Map<number, number>>();

/** The first instant of a calendar day in the timezone (its local midnight, or the first wall time after a skipped midnight). */
export function startOfLocalDay(date: CalendarDate, timezone: string): number {
  const key = dateKey(date);
  let byDay = midnightCache.get(timezone);
  const cached = byDay?.get(key);
  if (cached !== undefined) return cached;

  const wall = Date.UTC(date.year, date.month - 1, date.day);
  // Fast path: wall time minus the offset, corrected once if the offset changes between guess and answer.
  let t = wall - offsetAt(wall, timezone);
  const o2 = offsetAt(t, timezone);
  if (wall - o2 !== t && offsetAt(wall - o2, timezone) === o2) t = wall - o2;
  const isStart = (ms: number) =>
    dateKey(localDate(ms, timezone)) >= key && dateKey(localDate(ms - 1, timezone)) < key;
  if (!isStart(t)) {
    // Fallback (a midnight inside a DST gap that the fast path missed): binary search for the first instant
    // whose local date is on or after `date`. Offsets are within ±18 h.
    let lo = wall - 19 * 3_600_000; // local date before `date`
    let hi = wall + 19 * 3_600_000; // local date on or after `date`
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (dateKey(localDate(mid, timezone)) >= key) hi = mid;
      else lo = mid;
    }
    t = hi;
  }
  if (byDay === undefined) midnightCache.set(timezone, (byDay = new Map()));
  if (byDay.size > 50_000) byDay.clear();
  byDay.set(key, t);
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// Instants

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

// Parsed instants by text (valid ones only): usage windows, period bounds and effective dates repeat in every
// rating input. Bounded.
const parsedInstants = new Map<string, number>();

/** Parses an ISO 8601 instant with an explicit offset ("Z" or ±hh:mm) into epoch ms. */
export function parseInstant(text: string, what = "instant"): number {
  if (typeof text === "string") {
    const cached = parsedInstants.get(text);
    if (cached !== undefined) return cached;
  }
  const ms = typeof text === "string" && ISO_INSTANT.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new PeriodError(`${what} must be an ISO 8601 instant with an offset, got ${JSON.stringify(text)}`);
  if (parsedInstants.size >= 50_000) parsedInstants.clear();
  parsedInstants.set(text, ms);
  return ms;
}

/** "00".."99": two-digit fields of an ISO instant. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : String(i)));
const MS_PER_DAY = 86_400_000;
/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the range toISOString writes with a 4-digit year. */
const FOUR_DIGIT_YEAR_MIN = -62_167_219_200_000;
const FOUR_DIGIT_YEAR_MAX = 253_402_300_799_999;

/** toISOString of the instant: "2026-04-01T04:00:00.000Z". */
export function formatInstant(ms: number): string {
  // Date#toISOString allocates a Date and is slow; integer instants with a 4-digit year (every real one) are
  // written directly: the date part from the proleptic Gregorian calendar (memoised by day), then the time.
  // Anything else (fractional, extended years, invalid) keeps toISOString's exact output or RangeError.
  if (!Number.isInteger(ms) || ms < FOUR_DIGIT_YEAR_MIN || ms > FOUR_DIGIT_YEAR_MAX) return new Date(ms).toISOString();
  const days = Math.floor(ms / MS_PER_DAY);
  let rest = ms - days * MS_PER_DAY;
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const milli = rest - second * 1000;
  const millis = milli < 10 ? `00${milli}` : milli < 100 ? `0${milli}` : String(milli);
  return `${isoDatePrefix(days)}${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[second]}.${millis}Z`;
}

const datePrefixes = new Map<number, string>();

/** "2026-04-01T" for a day number (days since 1970-01-01). */
function isoDatePrefix(days: number): string {
  let text = datePrefixes.get(days);
  if (text !== undefined) return text;
  // Days to a civil date (H. Hinnant, "chrono-compatible low-level date algorithms").
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  text = `${TWO_DIGITS[Math.floor(year / 100)]}${TWO_DIGITS[year % 100]}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T`;
  if (datePrefixes.size >= 10_000) datePrefixes.clear();
  datePrefixes.set(days, text);
  return text;
}

// ---------------------------------------------------------------------------------------------------------
// The term and its periods

export interface Term {
  startMs: number;
  /** null for an evergreen contract. */
  endMs: number | null;
}

// Terms by timezone, startDate, then endDate (null for evergreen), each with the periods laid out so far
// (by billingPeriod, then index): every period lookup starts from the term, and a rating looks up the same
// few periods. Only string fields are cached (a value of another type takes the uncached path, and its
// errors). Callers always get copies.
interface CalendarEntry {
  term: Term;
  spans: Map<unknown, Map<number, PeriodSpan | null>>;
}
const calendars = new Map<string, Map<string, Map<string | null, CalendarEntry>>>();

/** The contract's cache entry (computing its term, which throws as contractTerm does), or null if not cacheable. */
function calendarOf(contract: PeriodContract): CalendarEntry | null {
  const { timezone, startDate, endDate } = contract;
  if (typeof timezone !== "string" || typeof startDate !== "string" || (endDate !== null && typeof endDate !== "string")) return null;
  let byStart = calendars.get(timezone);
  let byEnd = byStart?.get(startDate);
  let entry = byEnd?.get(endDate);
  if (entry === undefined) {
    entry = { term: contractTermUncached(contract), spans: new Map() };
    if (byStart === undefined) calendars.set(timezone, (byStart = new Map()));
    if (byStart.size > 10_000) byStart.clear();
    if (byEnd === undefined) byStart.set(startDate, (byEnd = new Map()));
    byEnd.set(endDate, entry);
  }
  return entry;
}

export function contractTerm(contract: PeriodContract): Term {
  const term = calendarOf(contract)?.term ?? contractTermUncached(contract);
  return { startMs: term.startMs, endMs: term.endMs };
}

function contractTermUncached(contract: PeriodContract): Term {
  const start = parseCalendarDate(contract.startDate, "startDate");
  const startMs = startOfLocalDay(start, contract.timezone);
  if (contract.endDate === null) return { startMs, endMs: null };
  const end = parseCalendarDate(contract.endDate, "endDate");
  if (dateKey(end) < dateKey(start)) throw new PeriodError("endDate must not be before startDate");
  return { startMs, endMs: startOfLocalDay(addDays(end, 1), contract.timezone) };
}

/** Period `index` of the contract in ms, or null when it would start at or after the term end (or index < 0). */
export function periodSpanAt(contract: PeriodContract, index: number): PeriodSpan | null {
  if (index < 0 || !Number.isInteger(index)) return null;
  const entry = calendarOf(contract);
  if (entry === null) return periodSpanAtUncached(contract, index);
  let byIndex = entry.spans.get(contract.billingPeriod);
  let span = byIndex?.get(index);
  if (span === undefined) {
    span = periodSpanAtUncached(contract, index);
    if (byIndex === undefined) entry.spans.set(contract.billingPeriod, (byIndex = new Map()));
    if (byIndex.size > 10_000) byIndex.clear();
    byIndex.set(index, span);
  }
  return span === null ? null : { index: span.index, startMs: span.startMs, endMs: span.endMs, nominalEndMs: span.nominalEndMs };
}

function periodSpanAtUncached(contract: PeriodContract, index: number): PeriodSpan | null {
  const term = contractTerm(contract);
  const start = parseCalendarDate(contract.startDate, "startDate");
  const step = MONTHS_PER_PERIOD[contract.billingPeriod];
  if (step === undefined) throw new PeriodError(`unknown billingPeriod "${String(contract.billingPeriod)}"`);
  const startMs = startOfLocalDay(addMonthsAnchored(start, index * step, start.day), contract.timezone);
  if (term.endMs !== null && startMs >= term.endMs) return null;
  const nominalEndMs = startOfLocalDay(addMonthsAnchored(start, (index + 1) * step, start.day), contract.timezone);
  const endMs = term.endMs !== null && term.endMs < nominalEndMs ? term.endMs : nominalEndMs;
  return { index, startMs, endMs, nominalEndMs };
}

function toBillingPeriod(span: PeriodSpan): BillingPeriod {
  return {
    index: span.index,
    start: formatInstant(span.startMs),
    end: formatInstant(span.endMs),
    nominalEnd: formatInstant(span.nominalEndMs),
    clipped: span.endMs !== span.nominalEndMs,
  };
}

/** The span of the period containing the instant (ms), or null outside the term. */
export function periodSpanContaining(contract: PeriodContract, ms: number): PeriodSpan | null {
  const term = contractTerm(contract);
  if (ms < term.startMs || (term.endMs !== null && ms >= term.endMs)) return null;
  const start = parseCalendarDate(contract.startDate, "startDate");
  const step = MONTHS_PER_PERIOD[contract.billingPeriod];
  const local = localDate(ms, contract.timezone);
  const months = local.year * 12 + local.month - (start.year * 12 + start.month);
  let index = Math.max(0, Math.floor(months / step));
  let span = periodSpanAt(contract, index);
  while (span !== null && span.startMs > ms && index > 0) span = periodSpanAt(contract, --index);
  while (span !== null && span.nominalEndMs <= ms) span = periodSpanAt(contract, ++index);
  return span !== null && span.startMs <= ms && ms < span.endMs ? span : null;
}

/** The period containing `instant`, or null when the instant is outside the term. */
export function periodContaining(contract: PeriodContract, instant: string): BillingPeriod | null {
  const span = periodSpanContaining(contract, parseInstant(instant));
  return span ? toBillingPeriod(span) : null;
}

/** The period of the contract starting exactly at `start`, or null when no period starts there. */
export function periodStartingAt(contract: PeriodContract, start: string): BillingPeriod | null {
  const ms = parseInstant(start, "period start");
  const span = periodSpanContaining(contract, ms);
  return span && span.startMs === ms ? toBillingPeriod(span) : null;
}

/** The latest period whose end is at or before `now` (passed in: the domain never reads a clock), or null. */
export function lastClosedPeriod(contract: PeriodContract, now: string): BillingPeriod | null {
  const nowMs = parseInstant(now, "now");
  const term = contractTerm(contract);
  if (term.endMs !== null && nowMs >= term.endMs) {
    const periods = termPeriodSpans(contract);
    const last = periods?.[periods.length - 1];
    return last ? toBillingPeriod(last) : null;
  }
  const current = periodSpanContaining(contract, nowMs);
  if (current === null || current.index === 0) return null;
  const previous = periodSpanAt(contract, current.index - 1);
  return previous ? toBillingPeriod(previous) : null;
}

/** Every period of the term in ms, or null for an evergreen contract (its term has no end). */
export function termPeriodSpans(contract: PeriodContract): PeriodSpan[] | null {
  const term = contractTerm(contract);
  if (term.endMs === null) return null;
  const spans: PeriodSpan[] = [];
  for (let i = 0; ; i++) {
    const span = periodSpanAt(contract, i);
    if (span === null) break;
    spans.push(span);
  }
  return spans;
}

/** Every period of the term, or null for an evergreen contract. */
export function termPeriods(contract: PeriodContract): BillingPeriod[] | null {
  return termPeriodSpans(contract)?.map(toBillingPeriod) ?? null;
}

/** True when the period is the term's last one (never for an evergreen contract). */
export function isLastPeriodOfTerm(contract: PeriodContract, span: PeriodSpan): boolean {
  const term = contractTerm(contract);
  return term.endMs !== null && span.endMs === term.endMs;
}
