// The core's errors: what went wrong, in the service's own terms, with a stable code. Services and the
// domain throw these; the HTTP edge maps each to problem+json once (src/http/plugins/errors.ts). Nothing here
// knows about HTTP: a field is named by its path in the use case's input ("periodStart",
// "events.3.timestamp"); the edge says which part of the request (body, querystring) it came from.

/** The codes a use case can answer with; each has one HTTP status, chosen at the edge. */
export type DomainErrorCode =
  | "validation_failed"
  | "not_found"
  | "conflict"
  | "idempotency_conflict"
  | "stale_preview"
  | "blocking_exceptions"
  | "nothing_to_issue"
  | "period_open";

export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    /** Facts a caller can act on (the blocking exceptions, the conflicting document…), sent as they are. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface FieldIssue {
  /** Dot path in the use case's input; "" is the input as a whole. */
  field: string;
  message: string;
}

export class ValidationError extends DomainError {
  override name = "ValidationError";
  constructor(
    readonly issues: FieldIssue[],
    message = "the request is not valid",
  ) {
    super("validation_failed", message);
  }
}

export const notFound = (what: string, id: string) => new DomainError("not_found", `${what} ${id} does not exist`);
export const conflict = (message: string, details: Record<string, unknown> = {}) => new DomainError("conflict", message, details);
export const invalid = (issues: FieldIssue[], message?: string) => new ValidationError(issues, message);
