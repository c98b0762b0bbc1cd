// Usage routes: parse, call one use case, shape the response.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Clock } from "../../clock.js";
import type { Config } from "../../config.js";
import type { Database } from "../../db/client.js";
import { USAGE_RULES } from "../../domain/usage-rules.js";
import { ingestUsage } from "../../services/usage/ingest.js";
import { usageSummary } from "../../services/usage/summary.js";
import { voidUsage } from "../../services/usage/void.js";
import { actorOf } from "../plugins/auth.js";
import { IdParams } from "../schemas/common.js";
import { READ_ONE, WRITE, forbiddenUnless, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { IngestResult, UsageSummary, UsageSummaryQuery, VoidBody, VoidResult, usageBatchBody } from "../schemas/usage.js";

/** A full batch of 10,000 events with modest properties; larger bodies → 413. */
export const USAGE_BODY_LIMIT = 16 * 1024 * 1024;

export interface UsageRouteOptions {
  db: Database;
  config: Pick<Config, "USAGE_MAX_AGE_DAYS" | "USAGE_MAX_FUTURE_DAYS">;
  clock: Clock;
}

export const usageRoutes: FastifyPluginAsyncZod<UsageRouteOptions> = async (app, { db, config, clock }) => {
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
        operationId: "ingestUsage",
        tags: ["usage"],
        summary: "Ingest a batch of 1 to 10,000 usage events, exactly once",
        description:
          "All or nothing: if any event is invalid the answer is 400 `validation_failed` whose `errors` name every bad event " +
          "(`body.events.<index>.<field>`) and nothing is stored. Otherwise the whole batch is stored in one transaction and the " +
          "answer is 200 with integer counts. `(customerId, eventId)` is unique: a repeat with the same body (metric, quantity, " +
          "timestamp and properties, compared after normalising the decimal and the instant) counts as a duplicate and has no " +
          "effect; a repeat with another body is listed in `conflicts` and the stored event is kept. Repeats inside one batch " +
          "are treated the same way (the first occurrence wins).\n\n" +
          `Limits: \`quantity\` a non-negative decimal string fitting numeric(38,9); ids at most ${USAGE_RULES.eventId.maxLength} ` +
          `characters, \`metric\` at most ${USAGE_RULES.metric.maxLength} of [A-Za-z0-9_.:-]; \`properties\` an object of at most ` +
          `${USAGE_RULES.properties.maxBytes} bytes as JSON, nesting at most ${USAGE_RULES.properties.maxDepth} levels; \`timestamp\` no older than USAGE_MAX_AGE_DAYS (default 400) and no ` +
          `further ahead than USAGE_MAX_FUTURE_DAYS (default 1) days; the body at most ${USAGE_BODY_LIMIT / 1024 / 1024} MiB (413).\n\n` +
          "Events are mapped to a contract by customer or account id at their timestamp. Events mapping to none are stored and " +
          "raise one non-blocking `unmapped_usage` exception per customer id and UTC calendar month. Events falling in a billing " +
          "period that already has an issued document are stored with `late: true` and raise one blocking `late_usage` exception " +
          "per contract, period and latest document. Every batch writes one audit entry (`usage.ingested`: counts and a sha256 " +
          "digest of the batch).",
        body: usageBatchBody(window),
        response: {
          200: IngestResult.meta({ description: "Stored: the counts of accepted and duplicate events, and the conflicts", examples: [{ accepted: 2, duplicates: 0, conflicts: [] }] }),
          ...problems(WRITE, {
            400: {
              description: "`validation_failed`: at least one event is not valid; `errors` names every bad event and field; nothing was stored",
              examples: [
                {
                  summary: "A quantity sent as a JSON number",
                  code: "validation_failed",
                  detail: "1 event(s) are not valid; nothing was stored",
                  extra: {
                    errors: [
                      { path: "body.events.1.quantity", message: "must be a non-negative decimal string with at most 29 integer and 9 fraction digits (never a JSON number)" },
                    ],
                  },
                },
              ],
            },
            403: forbiddenUnless("writer"),
          }),
        },
      },
    },
    async (request) => ingestUsage(db, actorOf(request), request.body, window, clock.now()),
  );

  app.post(
    "/usage/void",
    {
      config: { role: "writer" },
      schema: {
        operationId: "voidUsage",
        tags: ["usage"],
        summary: "Void events (a correction; nothing is deleted)",
        description:
          "Marks the customer's events voided (who, when, why); a voided event stops counting toward usage and keeps its " +
          "history. Idempotent: already voided events are counted in `alreadyVoided`, unknown ids are listed in `notFound`; " +
          "the answer is 200 either way. Voiding an event of a period that already has an issued document raises a blocking " +
          "`late_usage` exception, like a late event. Every request writes one audit entry (`usage.voided`).",
        body: VoidBody,
        response: {
          200: VoidResult.meta({ description: "Voided: the counts, and the ids with no stored event", examples: [{ voided: 1, alreadyVoided: 0, notFound: [] }] }),
          ...problems(WRITE, { 400: invalid([{ path: "body.eventIds", message: "Too small: expected array to have >=1 items" }]), 403: forbiddenUnless("writer") }),
        },
      },
    },
    async (request) => voidUsage(db, actorOf(request), request.body),
  );

  app.get(
    "/contracts/:id/usage-summary",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getUsageSummary",
        tags: ["usage"],
        summary: "Usage against each meter for the billing period containing `at`, with a forecast for the current period",
        description:
          "For each meter of the version in force at `at` (default now): the non-voided usage of the whole billing period " +
          "containing `at`, over the contract's customer and account ids; the meter's included units as written (not prorated " +
          "for mid-period amendments or a clipped last period: the true-up does that); `remaining` = max(0, included − used); " +
          "`shareUsed` = used ÷ included (null when included is 0). Metrics used in the period without a meter are listed in " +
          "`unmetered`. `at` outside the contract term → 400.\n\n" +
          "Forecast: when the period is the current one (it contains now and has begun), each meter also has `projected` (sum and " +
          "count: used ÷ `elapsedShare`; levels: their current level, `used`) and the summary `elapsedShare` and `projectedTrueUp` (the " +
          "engine's delta for the period with the projected usage, as a preview would rate it; nothing is stored). A period that is over " +
          "(its usage is final: preview it) or not begun (nothing to project from) answers without these fields.",
        params: IdParams,
        querystring: UsageSummaryQuery,
        response: {
          200: UsageSummary.meta({ description: "Per meter: used, included, remaining and share used in the period containing `at`" }),
          ...problems([...READ_ONE, 409], {
            400: invalid(
              [{ path: "querystring.at", message: "must fall within the contract term (from 2026-01-01T00:00:00.000Z to 2027-01-01T00:00:00.000Z)" }],
              "the request is not valid",
            ),
            404: notFoundIn("contract"),
            409: {
              description: "`conflict`: no version of the contract is in force at `at`",
              examples: [{ summary: "No version in force", code: "conflict", detail: "no version of contract 0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b is in force at 2026-01-01T00:00:00.000Z" }],
            },
          }),
        },
      },
    },
    async (request) => usageSummary(db, request.params.id, request.query.at, clock.now(), { forecast: true }),
  );
};
