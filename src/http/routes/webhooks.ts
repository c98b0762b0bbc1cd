// Alerts that fired, webhook endpoints (admin) and the delivery log (DESIGN.md §9, docs/webhooks.md).
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { ALERT_KINDS } from "../../domain/terms.js";
import { WEBHOOK_EVENT_TYPES } from "../../domain/webhooks.js";
import { listAlerts } from "../../services/alerts/read.js";
import { createEndpoint } from "../../services/webhooks/create-endpoint.js";
import { getEndpoint, listDeliveries, listEndpoints } from "../../services/webhooks/read.js";
import { retryDelivery } from "../../services/webhooks/retry-delivery.js";
import { patchEndpoint } from "../../services/webhooks/update-endpoint.js";
import { actorOf } from "../plugins/auth.js";
import { Id, IdParams, Pagination, decodeCursor, pageOf } from "../schemas/common.js";
import { READ, READ_ONE, WRITE, forbiddenUnless, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { AlertPage, CreateEndpointBody, Delivery, DeliveryPage, Endpoint, EndpointPage, EndpointWithSecret, PatchEndpointBody } from "../schemas/webhooks.js";

const CONTRACT = "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b";
const alertExample = {
  id: "0196f6d5-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
  contractId: CONTRACT,
  alertId: "calls-80",
  kind: "included_share" as const,
  metric: "api_calls",
  grantId: null,
  threshold: "0.8",
  value: "812345",
  share: "0.81234500",
  period: { start: "2026-11-01T00:00:00.000Z", end: "2026-12-01T00:00:00.000Z" },
  version: 1,
  firedAt: "2026-11-20T14:03:11.204Z",
};
const endpointExample = {
  id: "0196f6d6-2b3c-7d4e-8f50-6b7c8d9e0f1a",
  url: "https://billing.internal.example.com/hooks/rating",
  eventTypes: ["document.issued" as const, "usage.threshold_crossed" as const],
  description: "Billing system",
  status: "enabled" as const,
  disabledReason: null,
  createdAt: "2026-11-20T09:00:00.000Z",
};
const deliveryExample = {
  id: "0196f6d7-3c4d-7e5f-8061-7c8d9e0f1a2b",
  endpointId: endpointExample.id,
  eventId: "msg_0196f6d73c4d7e5f80617c8d9e0f1a2c",
  eventType: "document.issued" as const,
  attempt: 2,
  manual: false,
  status: "failed" as const,
  responseCode: 503,
  durationMs: 84,
  error: "HTTP 503",
  attemptedAt: "2026-11-20T14:03:16.411Z",
  nextAttemptAt: "2026-11-20T14:08:02.000Z",
  createdAt: "2026-11-20T14:03:16.300Z",
};
const cursorIssue = invalid([{ path: "querystring.cursor", message: "is not a cursor this list returned" }], "the request querystring is not valid");

export const webhookRoutes: FastifyPluginAsyncZod<{ db: Database; denyPrivate: boolean }> = async (app, { db, denyPrivate }) => {
  app.get(
    "/alerts",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listAlerts",
        tags: ["alerts"],
        summary: "Alerts that fired, in firing order",
        description: "Each alert of a contract's terms fires at most once per billing period (DESIGN.md §9).",
        querystring: Pagination.extend({ contractId: Id.optional(), kind: z.enum(ALERT_KINDS).optional() }).strict(),
        response: {
          200: AlertPage.meta({ description: "One page of alerts", examples: [{ data: [alertExample], nextCursor: null }] }),
          ...problems(READ, { 400: cursorIssue }),
        },
      },
    },
    async (request) => {
      const { limit, cursor, ...filters } = request.query;
      const after = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listAlerts(db.sql, { ...filters, after, limit: limit + 1 }), limit, (a) => a.id);
    },
  );

  app.post(
    "/webhook-endpoints",
    {
      config: { role: "admin" },
      schema: {
        operationId: "createWebhookEndpoint",
        tags: ["webhooks"],
        summary: "Register a webhook endpoint; its secret is in this answer only",
        description:
          "Deliveries follow the Standard Webhooks specification: headers webhook-id, webhook-timestamp and webhook-signature " +
          "(v1, + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the secret's decoded bytes).",
        body: CreateEndpointBody.meta({ examples: [{ url: endpointExample.url, eventTypes: endpointExample.eventTypes, description: "Billing system" }] }),
        response: {
          201: EndpointWithSecret.meta({ description: "The endpoint and its secret (shown once)", examples: [{ ...endpointExample, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw6CWf3yH0uu0=" }] }),
          ...problems(WRITE, { 400: invalid([{ path: "body.url", message: "must be an http or https URL" }]), 403: forbiddenUnless("admin") }),
        },
      },
    },
    async (request, reply) => {
      reply.code(201);
      return createEndpoint(db, actorOf(request), request.body, { denyPrivate });
    },
  );

  app.get(
    "/webhook-endpoints",
    {
      config: { role: "admin" },
      schema: {
        operationId: "listWebhookEndpoints",
        tags: ["webhooks"],
        summary: "Webhook endpoints (without their secrets)",
        querystring: Pagination.strict(),
        response: {
          200: EndpointPage.meta({ description: "One page of endpoints", examples: [{ data: [endpointExample], nextCursor: null }] }),
          ...problems([...READ, 403], { 400: cursorIssue, 403: forbiddenUnless("admin") }),
        },
      },
    },
    async (request) => {
      const after = decodeCursor(request.query.cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listEndpoints(db.sql, { after, limit: request.query.limit + 1 }), request.query.limit, (e) => e.id);
    },
  );

  app.get(
    "/webhook-endpoints/:id",
    {
      config: { role: "admin" },
      schema: {
        operationId: "getWebhookEndpoint",
        tags: ["webhooks"],
        summary: "One webhook endpoint (without its secret)",
        params: IdParams,
        response: {
          200: Endpoint.meta({ description: "The endpoint", examples: [endpointExample] }),
          ...problems([...READ_ONE, 403], {
            400: invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid"),
            403: forbiddenUnless("admin"),
            404: notFoundIn("webhook endpoint", endpointExample.id),
          }),
        },
      },
    },
    async (request) => getEndpoint(db.sql, request.params.id),
  );

  app.patch(
    "/webhook-endpoints/:id",
    {
      config: { role: "admin" },
      schema: {
        operationId: "updateWebhookEndpoint",
        tags: ["webhooks"],
        summary: "Change an endpoint's url, event types, description or status (re-enabling too)",
        params: IdParams,
        body: PatchEndpointBody.meta({ examples: [{ status: "enabled" }] }),
        response: {
          200: Endpoint.meta({ description: "The endpoint as changed", examples: [endpointExample] }),
          ...problems([...WRITE, 404], {
            400: invalid([{ path: "body.status", message: 'Invalid option: expected one of "enabled"|"disabled"' }]),
            403: forbiddenUnless("admin"),
            404: notFoundIn("webhook endpoint", endpointExample.id),
          }),
        },
      },
    },
    async (request) => patchEndpoint(db, actorOf(request), request.params.id, request.body, { denyPrivate }),
  );

  app.get(
    "/webhook-deliveries",
    {
      config: { role: "admin" },
      schema: {
        operationId: "listWebhookDeliveries",
        tags: ["webhooks"],
        summary: "Every delivery attempt, newest first",
        querystring: Pagination.extend({
          endpointId: Id.optional(),
          eventId: z.string().max(100).optional(),
          eventType: z.enum(WEBHOOK_EVENT_TYPES).optional(),
          status: z.enum(["pending", "succeeded", "failed", "exhausted"]).optional(),
        }).strict(),
        response: {
          200: DeliveryPage.meta({ description: "One page of attempts", examples: [{ data: [deliveryExample], nextCursor: null }] }),
          ...problems([...READ, 403], { 400: cursorIssue, 403: forbiddenUnless("admin") }),
        },
      },
    },
    async (request) => {
      const { limit, cursor, ...filters } = request.query;
      const after = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listDeliveries(db.sql, { ...filters, after, limit: limit + 1 }), limit, (d) => d.id);
    },
  );

  app.post(
    "/webhook-deliveries/:id/retry",
    {
      config: { role: "admin" },
      schema: {
        operationId: "retryWebhookDelivery",
        tags: ["webhooks"],
        summary: "Attempt a delivery's event again, now",
        description: "A new attempt of the same event (same webhook-id) to the same endpoint: one attempt, nothing scheduled after it. The body is `{}`.",
        params: IdParams,
        body: z.object({}).strict().meta({ example: {} }),
        response: {
          202: Delivery.meta({ description: "The new attempt, pending", examples: [{ ...deliveryExample, attempt: 3, manual: true, status: "pending", responseCode: null, durationMs: null, error: null, attemptedAt: null, nextAttemptAt: null }] }),
          ...problems([...WRITE, 404, 409], {
            400: invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid"),
            403: forbiddenUnless("admin"),
            404: notFoundIn("webhook delivery", deliveryExample.id),
            409: {
              description: "`conflict`: the endpoint is disabled; enable it first",
              examples: [{ summary: "Disabled endpoint", code: "conflict", detail: `endpoint ${endpointExample.id} is disabled (410 Gone on delivery ${deliveryExample.id}): enable it first`, extra: { endpointId: endpointExample.id } }],
            },
          }),
        },
      },
    },
    async (request, reply) => {
      reply.code(202);
      return retryDelivery(db, actorOf(request), request.params.id);
    },
  );
};
