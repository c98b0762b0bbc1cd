// Every kind of exception the service raises, and whether it blocks issuing until approved: the one list.
// The rating engine raises some kinds, ingestion and issuing the others; what blocks is decided here only.
export const EXCEPTION_KINDS = {
  missing_terms: { blocking: true },
  unpriced_metric: { blocking: true },
  unmapped_usage: { blocking: false },
  usage_spike: { blocking: true },
  materiality: { blocking: true },
  late_usage: { blocking: true },
  over_billed: { blocking: true },
  amendment_conflict: { blocking: true },
} as const satisfies Record<string, { blocking: boolean }>;

export type ExceptionKind = keyof typeof EXCEPTION_KINDS;

/** The kinds the rating engine raises by itself (the others come from ingestion and issuing). */
export type RatingExceptionKind = Extract<
  ExceptionKind,
  "missing_terms" | "unpriced_metric" | "usage_spike" | "amendment_conflict" | "materiality" | "over_billed"
>;

export const isBlocking = (kind: ExceptionKind): boolean => EXCEPTION_KINDS[kind].blocking;
