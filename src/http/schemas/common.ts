// Schemas shared by routes: problem+json, pagination, ids, instants, decimal strings.
import { z } from "zod";
import { UUID_PATTERN } from "../../db/ids.js";
import { MAX_FRACTION_DIGITS, NANOSECONDS_MESSAGE, hasAtMostNanoseconds } from "../../domain/terms.js";
import { validationFailed } from "../problems.js";

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .passthrough()
  // A named component: every route's error responses refer to it instead of repeating it.
  .meta({ id: "Problem", description: "RFC 9457 problem details" });

/** The error responses every authenticated route can give. */
export const problemResponses = {
  400: Problem,
  401: Problem,
  403: Problem,
  404: Problem,
  409: Problem,
  413: Problem,
  429: Problem,
  503: Problem,
};

export const Id = z.string().regex(UUID_PATTERN, "must be a UUID");
export const IdParams = z.object({ id: Id }).strict();
/** A half-open [start, end) period as instants. */
export const Period = z.object({ start: z.string(), end: z.string() });

/**
 * The years the service accepts in instants and calendar dates. PostgreSQL has no year 0, billing periods
 * computed past year 9999 cannot be written as ISO 8601, and JavaScript reads years below 100 as 19xx: a
 * contract, a period or a signature outside 1970..2199 is a typo (or a "9999-12-31" meaning "no end", which
 * is endDate null), not a date to bill on.
 */
export const FIRST_YEAR = 1970;
export const LAST_YEAR = 2199;
const yearInRange = (s: string) => {
  const year = Number(s.slice(0, 4));
  return year >= FIRST_YEAR && year <= LAST_YEAR;
};
const yearMessage = `the year must be between ${FIRST_YEAR} and ${LAST_YEAR}`;

/**
 * An ISO 8601 instant with an explicit offset ("2026-01-01T00:00:00Z"), in the years 1970 to 2199, with at
 * most 9 fraction digits. Every instant of the API (bodies and query strings) is this schema.
 */
export const Instant = z.iso
  .datetime({ offset: true })
  .refine(yearInRange, yearMessage)
  .refine(hasAtMostNanoseconds, NANOSECONDS_MESSAGE)
  .meta({
    id: "Instant",
    description: `ISO 8601 instant with offset, in the years ${FIRST_YEAR} to ${LAST_YEAR}, at most ${MAX_FRACTION_DIGITS} fraction digits`,
  });

export const CalendarDateString = z.iso
  .date()
  .refine(yearInRange, yearMessage)
  .describe(`Calendar date YYYY-MM-DD, read in the contract's timezone, in the years ${FIRST_YEAR} to ${LAST_YEAR}`);

export const Pagination = z.object({
  // Digits only: z.coerce.number would also take "0x10" or "1e2".
  limit: z
    .string()
    .regex(/^\d{1,3}$/, "must be a whole number from 1 to 500")
    .transform(Number)
    .pipe(z.number().int().min(1).max(500))
    .default(50)
    .describe("Page size, 1 to 500 (default 50)"),
  cursor: z.string().max(200).optional(),
});

export const page = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), nextCursor: z.string().nullable() });

/**
 * One page of a list: list queries fetch one row more than the page holds, which tells whether there is a
 * next page without counting.
 */
export function pageOf<T>(rows: T[], limit: number, sortKey: (row: T) => string) {
  const data = rows.slice(0, limit);
  return { data, nextCursor: rows.length > limit ? encodeCursor(sortKey(data[data.length - 1]!)) : null };
}

/** Opaque cursors: base64url of the last item's sort key. */
export const encodeCursor = (key: string) => Buffer.from(key, "utf8").toString("base64url");
export function decodeCursor(cursor: string | undefined, valid: (s: string) => boolean): string | undefined {
  if (cursor === undefined) return undefined;
  const s = Buffer.from(cursor, "base64url").toString("utf8");
  if (!valid(s)) throw validationFailed([{ path: "querystring.cursor", message: "is not a cursor this list returned" }]);
  return s;
}
