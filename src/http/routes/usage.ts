// Usage routes: parse, call one use case, shape the response.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Config } from "../../config.js";
import type { Database } from "../../db/client.js";
import { USAGE_LIMITS, ingestUsage, usageSummary, voidUsage } from "../../services/usage.js";
import { actorOf } from "../plugins/auth.js";
import { IdParams, problemResponses } from "../schemas/common.js";
import { IngestResult, UsageSummary, UsageSummaryQuery, VoidBody, VoidResult, usageBatchBody } from "../schemas/usage.js";

/** A full batch of 10,000 events with modest properties; larger bodies → 413. */
export const USAGE_BODY_LIMIT = 16 * 1024 * 1024;

export interface UsageRouteOptions {
  db: Database;
  config: Pick<Config, "USAGE_MAX_AGE_DAYS" | "USAGE_MAX_FUTURE_DAYS">;
}

export const usageRoutes: FastifyPluginAsyncZod<UsageRouteOptions> = async (app, { db, config }) => {
  const window = { maxAgeDays: config.USAGE_MAX_AGE_DAYS, maxFutureDays: config.USAGE_MAX_FUTURE_DAYS };

  app.post(
    "/usage",
    {
      config: { role: "writer", checksOwnText: true },
      bodyLimit: USAGE_BODY_LIMIT,
      // The service validates the batch itself in one pass (every bad index, and faster than a schema
      // library at 10,000 events); the zod schema below documents the same rules in the OpenAPI spec.
      validatorCompiler: () => (data: unknown) => ({ value: data }),
      schema: {
        tags: ["usage"],
        summary: "Ingest a batch of 1 to 10,000 usage events, exactly once",
        description:
          "All or nothing: if any event is invalid the answer is 400 `validation_failed` whose `errors` name every bad event " +
          "(`body.events.<index>.<field>`) and nothing is stored. Otherwise the whole batch is stored in one transaction and the " +
          "answer is 200 with integer counts. `(customerId, eventId)` is unique: a repeat with the same body (metric, quantity, " +
          "timestamp and properties, compared after normalising the decimal and the instant) counts as a duplicate and has no " +
          "effect; a repeat with another body is listed in `conflicts` and the stored event is kept. Repeats inside one batch " +
          "are treated the same way (the first occurrence wins).\n\n" +
          `Limits: \`quantity\` a non-negative decimal string fitting numeric(38,9); ids at most ${USAGE_LIMITS.maxIdLength} ` +
          `characters, \`metric\` at most ${USAGE_LIMITS.maxMetricLength} of [A-Za-z0-9_.:-]; \`properties\` an object of at most ` +
          `${USAGE_LIMITS.maxPropertiesBytes} bytes as JSON; \`timestamp\` no older than USAGE_MAX_AGE_DAYS (default 400) and no ` +
          `further ahead than USAGE_MAX_FUTURE_DAYS (default 1) days; the body at most ${USAGE_BODY_LIMIT / 1024 / 1024} MiB (413).\n\n` +
          "Events are mapped to a contract by customer or account id at their timestamp. Events mapping to none are stored and " +
          "raise one non-blocking `unmapped_usage` exception per customer id and UTC calendar month. Events falling in a billing " +
          "period that already has an issued document are stored with `late: true` and raise one blocking `late_usage` exception " +
          "per contract, period and latest document. Every batch writes one audit entry (`usage.ingested`: counts and a sha256 " +
          "digest of the batch).",
        body: usageBatchBody(window),
        response: { 200: IngestResult, ...problemResponses },
      },
    },
    async (request) => ingestUsage(db, actorOf(request), request.body, window),
  );

  app.post(
    "/usage/void",
    {
      config: { role: "writer" },
      schema: {
        tags: ["usage"],
        summary: "Void events (a correction; nothing is deleted)",
        description:
          "Marks the customer's events voided (who, when, why); a voided event stops counting toward usage and keeps its " +
          "history. Idempotent: already voided events are counted in `alreadyVoided`, unknown ids are listed in `notFound`; " +
          "the answer is 200 either way. Voiding an event of a period that already has an issued document raises a blocking " +
          "`late_usage` exception, like a late event. Every request writes one audit entry (`usage.voided`).",
        body: VoidBody,
        response: { 200: VoidResult, ...problemResponses },
      },
    },
    async (request) => voidUsage(db, actorOf(request), request.body),
  );

  app.get(
    "/contracts/:id/usage-summary",
    {
      config: { role: "reader" },
      schema: {
        tags: ["usage"],
        summary: "Usage against each meter for the billing period containing `at`",
        description:
          "For each meter of the version in force at `at` (default now): the non-voided usage of the whole billing period " +
          "containing `at`, over the contract's customer and account ids; the meter's included units as written (not prorated " +
          "for mid-period amendments or a clipped last period: the true-up does that); `remaining` = max(0, included − used); " +
          "`shareUsed` = used ÷ included (null when included is 0). Metrics used in the period without a meter are listed in " +
          "`unmetered`. `at` outside the contract term → 400.",
        params: IdParams,
        querystring: UsageSummaryQuery,
        response: { 200: UsageSummary, ...problemResponses },
      },
    },
    async (request) => usageSummary(db, request.params.id, request.query.at),
  );
};
