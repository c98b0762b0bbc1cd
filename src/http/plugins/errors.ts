// Every error leaves as problem+json. Known errors keep their code; anything unexpected is logged in full
// and answered with a bare 500 "internal", so no internal detail leaks.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { isDatabaseUnavailable, isUnstorableValue, sqlState } from "../../db/errors.js";
import { PeriodError, RatingInputError } from "../../domain/index.js";
import { type FieldError, type ProblemCode, ProblemError, problemBody } from "../problems.js";

function send(reply: FastifyReply, request: FastifyRequest, code: ProblemCode, detail: string, extra: Record<string, unknown> = {}) {
  const body = problemBody(code, detail, request.url, extra);
  return reply.code(body.status).type("application/problem+json").send(body);
}

function zodPath(instancePath: string, params: Record<string, unknown> | undefined): string {
  // fastify-type-provider-zod reports JSON-pointer-ish paths ("/events/3/quantity"); give "events.3.quantity".
  const p = instancePath.replace(/^\//, "").split("/").filter(Boolean).join(".");
  const issue = params?.issue as { path?: (string | number)[] } | undefined;
  if (issue?.path?.length) return issue.path.join(".");
  return p;
}

export const errorsPlugin = fp(async function errors(app: FastifyInstance) {
  app.setNotFoundHandler((request, reply) =>
    send(reply, request, "not_found", `no route ${request.method} ${request.url.split("?")[0]}`),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ProblemError) {
      for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
      return send(reply, request, error.code, error.message, error.extra);
    }
    if (error instanceof RatingInputError || error instanceof PeriodError) {
      // The engine refuses input the edge should have caught; still the caller's input, so a 400.
      const path = error instanceof RatingInputError ? error.path : "body";
      return send(reply, request, "validation_failed", error.message, { errors: [{ path, message: error.message }] });
    }
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
