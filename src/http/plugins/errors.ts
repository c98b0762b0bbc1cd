// Every error leaves as problem+json. Known errors keep their code; anything unexpected is logged in full
// and answered with a bare 500 "internal", so no internal detail leaks. That includes what the router
// answers itself: unknown paths (404), known paths with another method (405 + Allow), a path parameter past
// maxParamLength (414) and a URL that does not decode (400), see frameworkErrors.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { isDatabaseTimeout, isDatabaseUnavailable, isUnstorableValue, sqlState } from "../../db/errors.js";
import { DomainError, ValidationError } from "../../errors.js";
import { type FieldError, type ProblemCode, ProblemError, problemBody } from "../problems.js";

function send(reply: FastifyReply, request: FastifyRequest, code: ProblemCode, detail: string, extra: Record<string, unknown> = {}) {
  // The instance is the URL as sent, cut short: a 414's URL can be 8 KiB.
  const instance = request.url.length > 1024 ? `${request.url.slice(0, 1024)}…` : request.url;
  const body = problemBody(code, detail, instance, extra);
  // Set here, not only in the app's onSend hook: frameworkErrors replies run no hooks.
  reply.header("x-request-id", request.id);
  return reply.code(body.status).type("application/problem+json").send(body);
}

/** Fastify's maxParamLength: no id of the API is longer (UUIDs are 36 characters). */
export const MAX_PARAM_LENGTH = 100;

/** Fastify's router's own refusals (the `frameworkErrors` option): a bad URL is 400, an over-long parameter 414. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.header("x-content-type-options", "nosniff"); // no hooks run here, helmet's included
  if (error.code === "FST_ERR_MAX_PARAM_LENGTH")
    return send(reply, request, "uri_too_long", `a path segment is longer than ${MAX_PARAM_LENGTH} characters`);
  if (error.code === "FST_ERR_BAD_URL") {
    const message = "is not valid percent-encoded UTF-8";
    return send(reply, request, "validation_failed", `the request path ${message}`, { errors: [{ path: "url", message }] });
  }
  request.log.error({ err: error }, "unhandled framework error");
  return send(reply, request, "internal", "internal error");
}

/** A matcher for one route's URL pattern ("/v1/contracts/:id/amendments", "/docs/static/*"). */
function routePattern(url: string): RegExp {
  const segments = url.split("/").map((seg) =>
    seg === "*" ? ".*" : seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
  );
  return new RegExp(`^${segments.join("/")}$`);
}

function zodPath(instancePath: string, params: Record<string, unknown> | undefined): string {
  // fastify-type-provider-zod reports JSON-pointer-ish paths ("/events/3/quantity"); give "events.3.quantity".
  const p = instancePath.replace(/^\//, "").split("/").filter(Boolean).join(".");
  const issue = params?.issue as { path?: (string | number)[] } | undefined;
  if (issue?.path?.length) return issue.path.join(".");
  return p;
}

/**
 * Where a field of a use case's input came from: the querystring or the path parameters when the request
 * carried it there, the body otherwise ("" is the whole body). Domain errors name fields in their own terms.
 * A field the route's querystring schema declares is a query field even when omitted: its default (the
 * usage summary's `at` = now) is what failed.
 */
export function requestPath(request: FastifyRequest, field: string): string {
  const top = field.split(".")[0] ?? "";
  const has = (part: unknown) => typeof part === "object" && part !== null && top !== "" && Object.hasOwn(part, top);
  const declared = (schema: unknown) => has((schema as { shape?: unknown } | undefined)?.shape);
  const where = has(request.query) || declared(request.routeOptions.schema?.querystring) ? "querystring" : has(request.params) ? "params" : "body";
  return field ? `${where}.${field}` : where;
}

export const errorsPlugin = fp(async function errors(app: FastifyInstance) {
  // Every route's pattern and methods, to tell "no such path" (404) from "not with this method" (405).
  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  app.addHook("onRoute", (route) => {
    const methods = [route.method].flat().map((m) => m.toUpperCase());
    const existing = routes.find((r) => r.pattern.source === routePattern(route.url).source);
    if (existing) for (const m of methods) existing.methods.add(m);
    else routes.push({ pattern: routePattern(route.url), methods: new Set(methods) });
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0]!;
    const allowed = new Set<string>();
    for (const r of routes) if (r.pattern.test(path)) for (const m of r.methods) allowed.add(m);
    if (allowed.size > 0) {
      if (allowed.has("GET")) allowed.add("HEAD");
      const allow = [...allowed].sort().join(", ");
      reply.header("Allow", allow);
      return send(reply, request, "method_not_allowed", `${request.method} is not allowed on ${path}; allowed: ${allow}`);
    }
    return send(reply, request, "not_found", `no route ${request.method} ${path}`);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ProblemError) {
      for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
      return send(reply, request, error.code, error.message, error.extra);
    }
    // The domain's refusals (RatingInputError, PeriodError, JsonDepthError) are among these: input the edge
    // should have caught, still the caller's, so a 400.
    if (error instanceof ValidationError) {
      const errors: FieldError[] = error.issues.map((i) => ({ path: requestPath(request, i.field), message: i.message }));
      return send(reply, request, "validation_failed", error.message, { ...error.details, errors });
    }
    if (error instanceof DomainError) return send(reply, request, error.code, error.message, error.details);
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = error.validationContext ?? "body";
      const errors: FieldError[] = error.validation.map((v) => {
        const p = zodPath(v.instancePath, v.params as Record<string, unknown>);
        return { path: p ? `${where}.${p}` : where, message: v.message ?? "invalid" };
      });
      return send(reply, request, "validation_failed", `the request ${where} is not valid`, { errors });
    }
    if (error.validation) {
      const where = error.validationContext ?? "body";
      const errors = error.validation.map((v) => ({
        path: `${where}${v.instancePath.replace(/\//g, ".")}`,
        message: v.message ?? "invalid",
      }));
      return send(reply, request, "validation_failed", `the request ${where} is not valid`, { errors });
    }
    if (isDatabaseTimeout(error)) {
      request.log.warn({ err: error }, "database statement timed out");
      reply.header("Retry-After", "5");
      return send(reply, request, "unavailable", "the database did not answer in time; retry shortly");
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, "database unavailable");
      reply.header("Retry-After", "5");
      return send(reply, request, "unavailable", "the database is unreachable; retry shortly");
    }
    if (isUnstorableValue(error)) {
      // A value past what a column holds (numeric overflow, a date out of range, a NUL in text): the input's
      // fault, so a 400 naming the limit, never a 500. The specific checks before storing name the field.
      request.log.warn({ err: error }, "value out of the storable range");
      const message = `a value is outside what the service can store (SQLSTATE ${sqlState(error)}): amounts at most 14 integer digits, dates 1970 to 2199, text without NUL characters`;
      return send(reply, request, "validation_failed", message, { errors: [{ path: "body", message }] });
    }
    const status = error.statusCode ?? 500;
    if (status === 413 || error.code === "FST_ERR_CTP_BODY_TOO_LARGE")
      return send(reply, request, "payload_too_large", "the request body is larger than the limit");
    if (status === 415 || error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
      return send(reply, request, "unsupported_media_type", "send application/json");
    if (status === 429) return send(reply, request, "rate_limited", error.message || "too many requests");
    if (status >= 400 && status < 500) {
      // Fastify's own 4xx (bad JSON, empty body with a JSON content type, bad header).
      return send(reply, request, "validation_failed", error.message, {
        errors: [{ path: "body", message: error.message }],
      });
    }
    request.log.error({ err: error }, "unhandled error");
    return send(reply, request, "internal", "internal error");
  });
});
