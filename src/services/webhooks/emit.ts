// Emitting a webhook event (DESIGN.md §9): on the transaction of the change that causes it, the event (its body
// as it will be sent, byte for byte) and a pending first attempt with its job per subscribed endpoint. A
// rolled-back change sends nothing; a committed one is delivered at least once, whatever crashes after.
import { newId } from "../../db/ids.js";
import { insertEventWithDeliveries, subscribedEndpoints } from "../../db/queries/webhooks.js";
import type { Sql } from "../../db/sql.js";
import type { WebhookEventType } from "../../domain/webhooks.js";

/** Emits an event to the enabled endpoints that take its type; nothing is stored when none does. Returns its id, or null. */
export async function emitWebhookEvent(sql: Sql, type: WebhookEventType, data: unknown): Promise<string | null> {
  const [id] = await emitWebhookEvents(sql, type, [data]);
  return id ?? null;
}

/** Events of one type (a billing run chunk's documents): the endpoints are looked up once. Returns their ids, none when no endpoint takes the type. */
export async function emitWebhookEvents(sql: Sql, type: WebhookEventType, datas: readonly unknown[]): Promise<string[]> {
  if (datas.length === 0) return [];
  const { ids, now } = await subscribedEndpoints(sql, type);
  if (ids.length === 0) return [];
  const eventIds: string[] = [];
  for (const data of datas) {
    // The id is the receiver's idempotency key (webhook-id), the same on every attempt.
    const id = `msg_${newId().replaceAll("-", "")}`;
    const body = JSON.stringify({ type, timestamp: now.toISOString(), data });
    await insertEventWithDeliveries(sql, { id, type, body }, ids.map((endpointId) => ({ id: newId(), endpointId })));
    eventIds.push(id);
  }
  return eventIds;
}
