// Domain errors are typed and mapped in one place to RFC 9457 problem+json with a stable `code`.
export const PROBLEM_CODES = {
  validation_failed: { status: 400, title: "Validation failed" },
  unauthorized: { status: 401, title: "Unauthorized" },
  forbidden: { status: 403, title: "Forbidden" },
  not_found: { status: 404, title: "Not found" },
  conflict: { status: 409, title: "Conflict" },
  idempotency_conflict: { status: 409, title: "Idempotency key reused with a different request" },
  stale_preview: { status: 409, title: "The preview is stale" },
  blocking_exceptions: { status: 409, title: "Open blocking exceptions" },
  nothing_to_issue: { status: 409, title: "Nothing to issue" },
  period_open: { status: 409, title: "The period has not ended" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  request_timeout: { status: 408, title: "Request timeout" },
  payload_too_large: { status: 413, title: "Payload too large" },
  uri_too_long: { status: 414, title: "URI too long" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  rate_limited: { status: 429, title: "Too many requests" },
  headers_too_large: { status: 431, title: "Request header fields too large" },
  unavailable: { status: 503, title: "Service unavailable" },
  internal: { status: 500, title: "Internal error" },
} as const;

export type ProblemCode = keyof typeof PROBLEM_CODES;

export interface FieldError {
  path: string;
  message: string;
}

export class ProblemError extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(code: ProblemCode, detail: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    super(detail);
    this.code = code;
    this.status = PROBLEM_CODES[code].status;
    this.extra = extra;
    this.headers = headers;
  }
}

export const notFound = (what: string, id: string) => new ProblemError("not_found", `${what} ${id} does not exist`);
export const conflict = (detail: string, extra: Record<string, unknown> = {}) => new ProblemError("conflict", detail, extra);
export const validationFailed = (errors: FieldError[], detail = "the request is not valid") =>
  new ProblemError("validation_failed", detail, { errors });

export function problemBody(code: ProblemCode, detail: string, instance: string | undefined, extra: Record<string, unknown> = {}) {
  const { status, title } = PROBLEM_CODES[code];
  return { type: `/problems/${code}`, title, status, detail, code, ...(instance ? { instance } : {}), ...extra };
}
