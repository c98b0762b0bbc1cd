// Schemas of the alert, webhook endpoint and delivery routes (DESIGN.md §9).
import { z } from "zod";
import { ALERT_KINDS } from "../../domain/terms.js";
import { WEBHOOK_EVENT_TYPES } from "../../domain/webhooks.js";
import { Id, Period, page } from "./common.js";

export const Alert = z
  .object({
    id: Id,
    contractId: Id,
    alertId: z.string().describe("The alert's id in the contract terms"),
    kind: z.enum(ALERT_KINDS),
    metric: z.string().nullable().describe("The meter id, for included_share and quantity"),
    grantId: z.string().nullable().describe("The grant watched, for a credit_balance alert naming one"),
    threshold: z.string().describe("Decimal string, as in the terms"),
    value: z.string().describe("The measured figure when it fired: usage, usage charges (money) or a balance (money)"),
    share: z.string().nullable().describe("value ÷ included units or ÷ the period commitment, for the share kinds (9 decimals, half-up)"),
    period: Period.describe("The billing period it fired in (at most once per contract, alert id and period)"),
    version: z.number().int().describe("The contract version in force whose alert it is"),
    firedAt: z.string(),
  })
  .meta({ id: "Alert" });
export const AlertPage = page(Alert);

const EventType = z.enum(WEBHOOK_EVENT_TYPES);
const EventTypes = z.array(EventType).min(1).max(WEBHOOK_EVENT_TYPES.length).describe("The event types this endpoint receives");
const Url = z.string().min(1).max(2000).describe("http or https; private and loopback addresses are allowed unless WEBHOOK_DENY_PRIVATE=true");
const Description = z.string().max(500).nullable();

export const Endpoint = z
  .object({
    id: Id,
    url: z.string(),
    eventTypes: z.array(EventType),
    description: z.string().nullable(),
    status: z.enum(["enabled", "disabled"]),
    disabledReason: z.string().nullable().describe("Why it is disabled: a 410 from the receiver, or an admin"),
    createdAt: z.string(),
  })
  .meta({ id: "WebhookEndpoint" });
export const EndpointWithSecret = Endpoint.extend({
  secret: z.string().describe("whsec_ + base64 of 32 random bytes: verifies webhook-signature. Shown once, here; never again"),
});
export const EndpointPage = page(Endpoint);

export const CreateEndpointBody = z.object({ url: Url, eventTypes: EventTypes, description: Description.optional() }).strict();
export const PatchEndpointBody = z
  .object({ url: Url.optional(), eventTypes: EventTypes.optional(), description: Description.optional(), status: z.enum(["enabled", "disabled"]).optional() })
  .strict()
  .refine((b) => Object.keys(b).length > 0, "name at least one of url, eventTypes, description, status");

export const Delivery = z
  .object({
    id: Id,
    endpointId: Id,
    eventId: z.string().describe("The event id, sent as webhook-id: the same on every attempt"),
    eventType: EventType,
    attempt: z.number().int().describe("From 1"),
    manual: z.boolean().describe("Made by POST /v1/webhook-deliveries/{id}/retry: one attempt, nothing scheduled after it"),
    status: z.enum(["pending", "succeeded", "failed", "exhausted"]).describe("exhausted: the last attempt failed (or the endpoint is disabled)"),
    responseCode: z.number().int().nullable(),
    durationMs: z.number().int().nullable(),
    error: z.string().nullable(),
    attemptedAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable().describe("When the next attempt is due, after a failure"),
    createdAt: z.string(),
  })
  .meta({ id: "WebhookDelivery" });
export const DeliveryPage = page(Delivery);
