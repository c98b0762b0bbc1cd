// Reading webhook endpoints (never their secrets) and the delivery log.
import type { DeliveryRow, DeliveryFilter, EndpointRow } from "../../db/queries/webhooks.js";
import { deliveryById, endpointById, listDeliveries as listDeliveryRows, listEndpoints as listEndpointRows } from "../../db/queries/webhooks.js";
import type { Sql } from "../../db/sql.js";
import type { WebhookEventType } from "../../domain/webhooks.js";
import { notFound } from "../../errors.js";

export interface EndpointView {
  id: string;
  url: string;
  eventTypes: WebhookEventType[];
  description: string | null;
  status: "enabled" | "disabled";
  disabledReason: string | null;
  createdAt: string;
}

export const toEndpointView = (r: EndpointRow): EndpointView => ({
  id: r.id,
  url: r.url,
  eventTypes: r.event_types as WebhookEventType[],
  description: r.description,
  status: r.status,
  disabledReason: r.disabled_reason,
  createdAt: r.created_at.toISOString(),
});

export interface DeliveryView {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: WebhookEventType;
  attempt: number;
  manual: boolean;
  status: DeliveryRow["status"];
  responseCode: number | null;
  durationMs: number | null;
  error: string | null;
  attemptedAt: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
}

export const toDeliveryView = (r: DeliveryRow): DeliveryView => ({
  id: r.id,
  endpointId: r.endpoint_id,
  eventId: r.event_id,
  eventType: r.event_type as WebhookEventType,
  attempt: r.attempt,
  manual: r.manual,
  status: r.status,
  responseCode: r.response_code,
  durationMs: r.duration_ms,
  error: r.error,
  attemptedAt: r.attempted_at?.toISOString() ?? null,
  nextAttemptAt: r.next_attempt_at?.toISOString() ?? null,
  createdAt: r.created_at.toISOString(),
});

export async function getEndpoint(sql: Sql, id: string): Promise<EndpointView> {
  const row = await endpointById(sql, id);
  if (!row) throw notFound("webhook endpoint", id);
  return toEndpointView(row);
}

export async function listEndpoints(sql: Sql, q: { after?: string | undefined; limit: number }): Promise<EndpointView[]> {
  return (await listEndpointRows(sql, q.after, q.limit)).map(toEndpointView);
}

export async function getDelivery(sql: Sql, id: string): Promise<DeliveryView> {
  const row = await deliveryById(sql, id);
  if (!row) throw notFound("webhook delivery", id);
  return toDeliveryView(row);
}

export async function listDeliveries(sql: Sql, q: DeliveryFilter): Promise<DeliveryView[]> {
  return (await listDeliveryRows(sql, q)).map(toDeliveryView);
}
