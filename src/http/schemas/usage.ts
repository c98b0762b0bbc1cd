// Request and response schemas of the usage routes (ingestion: exactly once per customerId and eventId).
// The batch schema checks every event fully (format, precision, the accepted time window, property size),
// so one 400 names every bad index and why; it uses the service's own parsing functions.
import { z } from "zod";
import { MAX_JSON_DEPTH } from "../../domain/canonical-json.js";
import {
  type TimeWindow,
  USAGE_LIMITS,
  checkProperties,
  normalizeQuantity,
  outsideWindow,
  parseEventTimestamp,
} from "../../services/usage.js";
import { Id, Instant } from "./common.js";

const NO_CONTROL = /^[^\u0000-\u001f\u007f]+$/;

export const CustomerId = z
  .string()
  .min(1)
  .max(USAGE_LIMITS.maxIdLength)
  .regex(/^[^\s,\u0000-\u001f\u007f]+$/, "must be non-empty without spaces, commas or control characters")
  .describe("The contract's customerId or one of its accountIds");

export const EventId = z
  .string()
  .min(1)
  .max(USAGE_LIMITS.maxIdLength)
  .regex(NO_CONTROL, "must not contain control characters")
  .describe("The sender's id of the event, unique per customerId");

const Metric = z
  .string()
  .min(1)
  .max(USAGE_LIMITS.maxMetricLength)
  .regex(/^[A-Za-z0-9_.:-]+$/, "may contain only letters, digits and _ . : -");

const quantityMessage = "must be a non-negative decimal string with at most 29 integer and 9 fraction digits (never a JSON number)";

export function usageEvent(window: TimeWindow) {
  return z
    .object({
      eventId: EventId,
      customerId: CustomerId,
      metric: Metric,
      quantity: z
        .string(quantityMessage)
        .refine((s) => normalizeQuantity(s) !== null, quantityMessage)
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
          `Free-form attributes, at most ${USAGE_LIMITS.maxPropertiesBytes} bytes as JSON, objects and arrays nested at most ${MAX_JSON_DEPTH} levels; part of the event's body`,
        ),
    })
    .strict();
}

export function usageBatchBody(window: TimeWindow) {
  return z
    .object({ events: z.array(usageEvent(window)).min(1).max(USAGE_LIMITS.maxEvents) })
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
    eventIds: z.array(EventId).min(1).max(USAGE_LIMITS.maxEvents),
    reason: z.string().min(1).max(USAGE_LIMITS.maxReasonLength).regex(/^[^\u0000]+$/, "must not contain NUL characters"),
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
      metric: z.string(),
      unit: z.string().nullable(),
      used: z.string().describe("Non-voided usage in the whole billing period"),
      included: z.string().describe("The meter's included units as written (not prorated)"),
      remaining: z.string().describe("max(0, included − used)"),
      shareUsed: z.string().nullable().describe("used ÷ included, 9 decimals half-up; null when included is 0"),
    }),
  ),
  unmetered: z
    .array(z.object({ metric: z.string(), used: z.string() }))
    .describe("Metrics used in the period that no meter of this version prices (a true-up raises unpriced_metric)"),
});
