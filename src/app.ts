// buildApp: the application as a plugin tree. Infrastructure first (errors, protection, auth, docs),
// then the routes under /v1. server.ts only listens; tests build the app and use inject().
import { randomBytes, randomUUID } from "node:crypto";
import rateLimit from "@fastify/rate-limit";
import Fastify from "fastify";
import { type ZodTypeProvider, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import { type Clock, systemClock } from "./clock.js";
import type { Config } from "./config.js";
import type { Database } from "./db/client.js";
import { KeyRing, bearerToken } from "./http/plugins/auth.js";
import { authPlugin } from "./http/plugins/auth.js";
import { MAX_PARAM_LENGTH, errorsPlugin, frameworkErrors } from "./http/plugins/errors.js";
import { MAX_HEADER_BYTES, clientErrorHandler, hardeningPlugin } from "./http/plugins/hardening.js";
import { openapiPlugin } from "./http/plugins/openapi.js";
import { protectionPlugin } from "./http/plugins/protection.js";
import { storableTextPlugin } from "./http/plugins/storable-text.js";
import { ProblemError } from "./http/problems.js";
import { healthRoutes } from "./http/routes/health.js";
import { v1Routes } from "./http/routes/v1.js";
import { configureAuditSigning } from "./services/audit/checkpoints.js";
import { type WorkerConfig, startWorker } from "./worker.js";
import { STANDARD_RETRY_SCHEDULE } from "./domain/webhooks.js";

export interface AppOptions {
  config: Pick<
    Config,
    "BODY_LIMIT_BYTES" | "RATE_LIMIT_PER_MINUTE" | "AUTH_FAILURES_PER_MINUTE" | "REQUEST_TIMEOUT_MS" | "USAGE_MAX_AGE_DAYS" | "USAGE_MAX_FUTURE_DAYS"
  > &
    Partial<Pick<Config, "AUDIT_SIGNING_KEY" | "AUDIT_CHECKPOINT_EVERY" | "REVENUE_ACCOUNTS" | "WORKER" | "WEBHOOK_DENY_PRIVATE">> &
    Partial<WorkerConfig>;
  /** The audit checkpoints' signing key when it does not come from AUDIT_SIGNING_KEY (src/audit-key.ts). */
  auditSigningKey?: Buffer;
  db: Database;
  keys: KeyRing;
  /** "Now" for business rules (closed periods, usage windows); tests pass a fixed clock. */
  clock?: Clock;
  logger?: Logger | boolean;
  /** Shed load when the event loop's p99 delay passes this (ms). */
  maxEventLoopDelayMs?: number;
  /** Tests force the overloaded state through this. */
  isOverloaded?: () => boolean;
  /** The webhook retries' jitter (tests pin it). */
  random?: () => number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(opts: AppOptions) {
  // One key per process (services/audit/checkpoints.ts). Without one (scripts, some tests) a random key: its checkpoints
  // verify only in this process, which is all such a process needs.
  const { AUDIT_SIGNING_KEY, AUDIT_CHECKPOINT_EVERY } = opts.config;
  configureAuditSigning({
    key: opts.auditSigningKey ?? (AUDIT_SIGNING_KEY ? Buffer.from(AUDIT_SIGNING_KEY, "utf8") : randomBytes(32)),
    every: AUDIT_CHECKPOINT_EVERY ?? 1000,
  });
  const app = Fastify({
    loggerInstance: typeof opts.logger === "object" ? opts.logger : undefined,
    logger: typeof opts.logger === "object" ? undefined : (opts.logger ?? false),
    bodyLimit: opts.config.BODY_LIMIT_BYTES,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { coerceTypes: false } },
    // Slow or hostile clients (docs/http-hardening.md). The whole request, headers and body, must arrive
    // within REQUEST_TIMEOUT_MS (→ 408; node checks every connectionsCheckingInterval, 30 s by default, so
    // once a second here); a socket silent both ways for 4× that is closed.
    requestTimeout: opts.config.REQUEST_TIMEOUT_MS,
    connectionTimeout: 4 * opts.config.REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: opts.config.REQUEST_TIMEOUT_MS,
      requestTimeout: opts.config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(1000, opts.config.REQUEST_TIMEOUT_MS),
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // What the router and node refuse on their own also leaves as problem+json.
    frameworkErrors,
    clientErrorHandler: clientErrorHandler(opts.config.REQUEST_TIMEOUT_MS),
  }).withTypeProvider<ZodTypeProvider>();

  // The API speaks JSON only: a text/plain body is a 415, not a string that fails validation.
  app.removeContentTypeParser("text/plain");
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook("onSend", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });

  await app.register(errorsPlugin);
  await app.register(hardeningPlugin);
  await app.register(protectionPlugin, {
    maxEventLoopDelayMs: opts.maxEventLoopDelayMs ?? 1000,
    ...(opts.isOverloaded ? { isOverloaded: opts.isOverloaded } : {}),
  });
  await app.register(rateLimit, {
    global: true,
    max: opts.config.RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    // Keyed on the API key, so one noisy integration cannot starve the others (kept in memory only).
    keyGenerator: (request) => {
      const token = bearerToken(request);
      return token ? `key:${token}` : `ip:${request.ip}`;
    },
    allowList: (request) => !request.routeOptions.config?.role,
    errorResponseBuilder: (_request, context) =>
      new ProblemError("rate_limited", `more than ${context.max} requests in ${context.after}; retry later`, {}, {
        "Retry-After": String(Math.ceil(context.ttl / 1000)),
      }),
  });
  await app.register(authPlugin, { keys: opts.keys, maxFailuresPerMinute: opts.config.AUTH_FAILURES_PER_MINUTE });
  await app.register(openapiPlugin);
  await app.register(storableTextPlugin);

  await app.register(healthRoutes, { db: opts.db });
  await app.register(v1Routes, { prefix: "/v1", db: opts.db, config: opts.config, clock: opts.clock ?? systemClock });

  // The job worker runs beside the routes unless WORKER=off (then `npm run worker` processes run the jobs).
  if ((opts.config.WORKER ?? "inline") === "inline") {
    let runner: Awaited<ReturnType<typeof startWorker>> | undefined;
    const c = opts.config;
    app.addHook("onReady", async () => {
      runner = await startWorker({
        db: opts.db,
        clock: opts.clock ?? systemClock,
        logger: typeof opts.logger === "object" ? opts.logger : undefined,
        config: {
          WORKER_CONCURRENCY: c.WORKER_CONCURRENCY ?? 4,
          WEBHOOK_RETRY_SCHEDULE: c.WEBHOOK_RETRY_SCHEDULE ?? [...STANDARD_RETRY_SCHEDULE],
          WEBHOOK_TIMEOUT_MS: c.WEBHOOK_TIMEOUT_MS ?? 15_000,
          WEBHOOK_DENY_PRIVATE: c.WEBHOOK_DENY_PRIVATE ?? false,
          JOB_LOCK_TIMEOUT_SECONDS: c.JOB_LOCK_TIMEOUT_SECONDS ?? 120,
        },
        ...(opts.random ? { random: opts.random } : {}),
      });
    });
    app.addHook("onClose", async () => {
      await runner?.stop();
    });
  }
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
