// Request and response schemas of the usage routes (ingestion: exactly once per customerId and eventId).
// The batch schema documents every rule the service's one-pass validation checks (format, precision, the
// accepted time window, property size): both read the domain's table, domain/usage-rules.ts.
import { z } from "zod";
import { AGGREGATIONS } from "../../domain/terms.js";
import {
  type TimeWindow,
  USAGE_RULES,
  checkProperties,
  normalizeQuantity,
  outsideWindow,
  parseEventTimestamp,
} from "../../domain/usage-rules.js";
import { Id, Instant } from "./common.js";

const { customerId, eventId, metric, quantity, properties, voidReason } = USAGE_RULES;

const CustomerId = z
  .string()
  .min(1)
  .max(customerId.maxLength)
  .regex(customerId.pattern, customerId.message)
  .describe("The contract's customerId or one of its accountIds");

const EventId = z
  .string()
  .min(1)
  .max(eventId.maxLength)
  .regex(eventId.pattern, eventId.message)
  .describe("The sender's id of the event, unique per customerId");

const Metric = z.string().min(1).max(metric.maxLength).regex(metric.pattern, metric.message);

function usageEvent(window: TimeWindow) {
  return z
    .object({
      eventId: EventId,
      customerId: CustomerId,
      metric: Metric,
      quantity: z
        .string(quantity.message)
        .refine((s) => normalizeQuantity(s) !== null, quantity.message)
        .describe('Decimal string, e.g. "1250" or "0.5"'),
      timestamp: z
        .string()
        .superRefine((s, ctx) => {
          const ts = parseEventTimestamp(s);
          const why = typeof ts === "string" ? ts : outsideWindow(ts.ms, window, Date.now());
          if (why) ctx.addIssue({ code: "custom", message: why });
        })
        .describe("ISO 8601 instant with an offset, at most microsecond precision, within the accepted window"),
      properties: z
        .record(z.string(), z.unknown())
        .nullable()
        .optional()
        .superRefine((p, ctx) => {
          const why = checkProperties(p);
          if (why) ctx.addIssue({ code: "custom", message: why });
        })
        .describe(
          `Free-form attributes, at most ${properties.maxBytes} bytes as JSON, objects and arrays nested at most ${properties.maxDepth} levels; part of the event's body`,
        ),
    })
    .strict();
}

export function usageBatchBody(window: TimeWindow) {
  return z
    .object({ events: z.array(usageEvent(window)).min(1).max(USAGE_RULES.maxEvents) })
    .strict()
    .meta({
      examples: [
        {
          events: [
            { eventId: "evt-0001", customerId: "acme", metric: "api_calls", quantity: "1250", timestamp: "2026-01-15T10:00:00Z" },
            { eventId: "evt-0002", customerId: "acme", metric: "storage_gb", quantity: "0.5", timestamp: "2026-01-15T10:00:00Z", properties: { region: "eu" } },
          ],
        },
      ],
    });
}

export const IngestResult = z.object({
  accepted: z.number().int().describe("Events stored by this request"),
  duplicates: z.number().int().describe("Events already stored with the same body (no effect)"),
  conflicts: z
    .array(z.object({ eventId: z.string(), customerId: z.string(), reason: z.string() }))
    .describe("Events whose id is already stored with another body; the stored event is kept"),
});

export const VoidBody = z
  .object({
    customerId: CustomerId,
    eventIds: z.array(EventId).min(1).max(USAGE_RULES.maxEvents),
    reason: z.string().min(1).max(voidReason.maxLength).regex(voidReason.pattern, voidReason.message),
  })
  .strict()
  .meta({ examples: [{ customerId: "acme", eventIds: ["evt-2026-01-31-0001"], reason: "meter double-counted during the 31 Jan incident" }] });

export const VoidResult = z.object({
  voided: z.number().int().describe("Events voided by this request"),
  alreadyVoided: z.number().int().describe("Events that were already voided (no effect)"),
  notFound: z.array(z.string()).describe("Event ids with no stored event for this customerId"),
});

export const UsageSummaryQuery = z.object({ at: Instant.optional().describe("Default: now") }).strict();

export const UsageSummary = z.object({
  contractId: Id,
  at: z.string(),
  period: z.object({ start: z.string(), end: z.string() }),
  version: z.number().int().describe("The contract version in force at `at`"),
  meters: z.array(
    z.object({
      meterId: z.string().describe("The meter's id (its metric unless the contract names one)"),
      metric: z.string(),
      aggregation: z.enum(AGGREGATIONS),
      filter: z.record(z.string(), z.array(z.union([z.string(), z.number(), z.boolean()]))).nullable(),
      unit: z.string().nullable(),
      used: z
        .string()
        .describe(
          "The meter's usage over the whole billing period by its aggregation and filter (non-voided events; a time_weighted level is carried to the period's end)",
        ),
      included: z.string().describe("The meter's included units as written (not prorated)"),
      remaining: z.string().describe("max(0, included − used)"),
      shareUsed: z.string().nullable().describe("used ÷ included, 9 decimals half-up; null when included is 0"),
      projected: z
        .string()
        .optional()
        .describe(
          "The current period only (absent otherwise): sum and count meters, used ÷ elapsedShare (exact, then 9 decimals half-up), the period's usage " +
            "if it goes on at the rate so far; max, latest, unique_count and time_weighted meters, their current level, which is `used` (the peak so far, " +
            "the last value reported, the distinct values so far, the time-weighted level with the level in force carried to the period's end)",
        ),
    }),
  ),
  unmetered: z
    .array(z.object({ metric: z.string(), used: z.string() }))
    .describe(
      "Usage in the period that no meter of this version prices: metrics without a meter, and the events of a metric whose meters' filters " +
        "match none of them (a true-up raises unpriced_metric)",
    ),
  elapsedShare: z
    .string()
    .optional()
    .describe("The current period only (absent otherwise): (now − period start) ÷ (period end − period start), 9 decimals half-up"),
  projectedTrueUp: z
    .string()
    .optional()
    .describe(
      "The current period only (absent otherwise): the true-up's delta (total − already billed, in the contract's currency) if usage goes on as so far: " +
        "the period rated as a preview would, with every sum and count projected (each segment keeps what it measured and gains the period's rate " +
        "over its part still ahead) and levels as they stand. Nothing is stored and no exception is raised",
    ),
});
