// The problem+json responses a route documents (docs/openapi.md): only the statuses that route can give,
// each with a description and an example a client can read. The schema is the shared `Problem` component,
// served as application/problem+json (the errors plugin sends every error with that type, so Fastify picks
// this schema to serialize it).
import { PROBLEM_CODES, type ProblemCode } from "../problems.js";
import { Problem } from "./common.js";

export type ProblemStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 503;

export interface ProblemExample {
  /** Short name shown in Swagger UI's example picker. */
  summary: string;
  code: ProblemCode;
  detail: string;
  /** Extra members, e.g. `errors` of a validation failure or the `exceptions` blocking an issue. */
  extra?: Record<string, unknown>;
}

export interface ProblemDoc {
  description?: string;
  examples?: ProblemExample[];
}

const retryAfter = {
  "Retry-After": { type: "integer", minimum: 1, description: "Seconds to wait before retrying" },
};

/** What each status means on any route; a route may override the description or the examples. */
const DEFAULTS: Record<ProblemStatus, Required<ProblemDoc> & { headers?: Record<string, unknown> }> = {
  400: {
    description: "`validation_failed`: the request is not valid; `errors` lists every bad field as `{ path, message }`",
    examples: [
      {
        summary: "A field is not valid",
        code: "validation_failed",
        detail: "the request body is not valid",
        extra: { errors: [{ path: "body.currency", message: "must be an ISO 4217 code such as USD" }] },
      },
    ],
  },
  401: {
    description: "`unauthorized`: no `Authorization: Bearer <key>` header, or the key is not valid",
    examples: [{ summary: "No API key", code: "unauthorized", detail: "send Authorization: Bearer <api key>" }],
    headers: { "WWW-Authenticate": { type: "string", description: 'Bearer realm="rating"' } },
  },
  403: {
    description: "`forbidden`: the key's role may not do this (see the roles in the introduction)",
    examples: [{ summary: "A reader key", code: "forbidden", detail: 'the key "dashboard" has role reader; this needs writer' }],
  },
  404: {
    description: "`not_found`: nothing with this id",
    examples: [{ summary: "Unknown id", code: "not_found", detail: "contract 0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b does not exist" }],
  },
  409: {
    description: "`conflict`: the request contradicts what is stored",
    examples: [{ summary: "Conflict", code: "conflict", detail: "the request contradicts what is stored" }],
  },
  413: {
    description: "`payload_too_large`: the body is larger than the limit (BODY_LIMIT_BYTES)",
    examples: [{ summary: "Body too large", code: "payload_too_large", detail: "the request body is larger than the limit" }],
  },
  415: {
    description: "`unsupported_media_type`: the body is not `application/json`",
    examples: [{ summary: "Not JSON", code: "unsupported_media_type", detail: "send application/json" }],
  },
  429: {
    description:
      "`rate_limited`: more requests per minute than this API key may make, or too many failed authentications from this address (AUTH_FAILURES_PER_MINUTE); retry after `Retry-After` seconds",
    examples: [{ summary: "Rate limited", code: "rate_limited", detail: "more than 6000 requests in 1 minute; retry later" }],
    headers: retryAfter,
  },
  503: {
    description:
      "`unavailable`: the service is overloaded, or the database is unreachable or did not answer in time (DB_STATEMENT_TIMEOUT_MS); retry after `Retry-After` seconds",
    examples: [
      { summary: "Overloaded", code: "unavailable", detail: "the service is overloaded; retry shortly" },
      { summary: "Database unreachable", code: "unavailable", detail: "the database is unreachable; retry shortly" },
    ],
    headers: retryAfter,
  },
};

/** The problem+json body of an example, as the errors plugin writes it. */
export function problemExample({ code, detail, extra }: Omit<ProblemExample, "summary">) {
  const { status, title } = PROBLEM_CODES[code];
  return { type: `/problems/${code}`, title, status, detail, code, ...extra };
}

const exampleKey = (e: ProblemExample, i: number, all: ProblemExample[]) =>
  all.filter((x) => x.code === e.code).length > 1 ? `${e.code}_${i + 1}` : e.code;

/**
 * The route's problem responses: `problems([400, 401, 404, 429, 503], { 404: notFoundIn("contract") })`.
 * Spread into the route's `response` beside the 2xx schemas.
 */
export function problems<S extends ProblemStatus>(statuses: readonly S[], docs: Partial<Record<S, ProblemDoc>> = {}) {
  // String keys ("400"), as an object literal's would be: with numeric ones Fastify's types would only let
  // handlers reply.code() the listed literals.
  const out = {} as Record<
    `${S}`,
    { description: string; headers?: Record<string, unknown>; content: { "application/problem+json": { schema: typeof Problem; examples: Record<string, { summary: string; value: unknown }> } } }
  >;
  for (const status of statuses) {
    const base = DEFAULTS[status];
    const doc: ProblemDoc = docs[status] ?? {};
    const examples = doc.examples ?? base.examples;
    out[`${status}`] = {
      description: doc.description ?? base.description,
      ...(base.headers ? { headers: base.headers } : {}),
      content: {
        "application/problem+json": {
          schema: Problem,
          examples: Object.fromEntries(examples.map((e, i, all) => [exampleKey(e, i, all), { summary: e.summary, value: problemExample(e) }])),
        },
      },
    };
  }
  return out;
}

/** 404 of a route reading one `what` by id. */
export const notFoundIn = (what: string, id = "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b"): ProblemDoc => ({
  description: `\`not_found\`: no ${what} with this id`,
  examples: [{ summary: `Unknown ${what}`, code: "not_found", detail: `${what} ${id} does not exist` }],
});

/** 403 of a route that needs `role`. */
export const forbiddenUnless = (role: "writer" | "approver" | "admin"): ProblemDoc => ({
  description: role === "admin" ? "`forbidden`: only an admin key may do this" : `\`forbidden\`: the key's role is not ${role} or admin`,
  examples: [
    {
      summary: "A key without the role",
      code: "forbidden",
      detail: `the key "${role === "writer" ? "dashboard" : "billing-sync"}" has role ${role === "writer" ? "reader" : "writer"}; this needs ${role}`,
    },
  ],
});

/** 400 with the given field errors. */
export const invalid = (errors: { path: string; message: string }[], detail = "the request body is not valid"): ProblemDoc => ({
  examples: [{ summary: "A field is not valid", code: "validation_failed", detail, extra: { errors } }],
});

/** The statuses every route with a role can give, by what it takes. */
export const READ = [400, 401, 429, 503] as const;
export const READ_ONE = [400, 401, 404, 429, 503] as const;
export const WRITE = [400, 401, 403, 413, 415, 429, 503] as const;
