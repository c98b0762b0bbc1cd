// Calendar months in a contract's timezone (DESIGN.md §7.2): what revenue is reported by.
import { localDate, startOfLocalDay } from "../periods.js";

export interface RevenueMonth {
  /** "YYYY-MM". */
  month: string;
  /** [startMs, endMs): the month's local midnights in the timezone. */
  startMs: number;
  endMs: number;
}

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** Index of "YYYY-MM" (year × 12 + month − 1), or null when it is not exactly that form. */
export function monthIndex(text: string): number | null {
  const m = MONTH.exec(text);
  return m ? Number(m[1]) * 12 + Number(m[2]) - 1 : null;
}

export const monthText = (index: number): string => `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`;

/** The month with this index in the timezone. */
export function monthAt(index: number, timezone: string): RevenueMonth {
  const start = startOfLocalDay({ year: Math.floor(index / 12), month: (index % 12) + 1, day: 1 }, timezone);
  const end = startOfLocalDay({ year: Math.floor((index + 1) / 12), month: ((index + 1) % 12) + 1, day: 1 }, timezone);
  return { month: monthText(index), startMs: start, endMs: end };
}

/** Months from `fromIndex` to `toIndex`, both included. */
export function monthsOf(fromIndex: number, toIndex: number, timezone: string): RevenueMonth[] {
  const out: RevenueMonth[] = [];
  for (let i = fromIndex; i <= toIndex; i++) out.push(monthAt(i, timezone));
  return out;
}

/** The index of the local month holding the instant. */
export function monthIndexAt(ms: number, timezone: string): number {
  const d = localDate(ms, timezone);
  return d.year * 12 + d.month - 1;
}

/** The months that overlap [startMs, endMs), in order. */
export function monthsOverlapping(startMs: number, endMs: number, timezone: string): RevenueMonth[] {
  if (endMs <= startMs) return [];
  return monthsOf(monthIndexAt(startMs, timezone), monthIndexAt(endMs - 1, timezone), timezone);
}
