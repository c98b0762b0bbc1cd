// Retrying a delivery by hand (admin): a new attempt of the same event to the same endpoint, now. It is one
// attempt: if it fails, it is recorded as failed and nothing further is scheduled for it.
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { deliveryById, endpointById, lastAttemptNumber, scheduleAttempt } from "../../db/queries/webhooks.js";
import { transaction } from "../../db/tx.js";
import { conflict, notFound } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { type DeliveryView, toDeliveryView } from "./read.js";

export async function retryDelivery(db: Database, actor: string, deliveryId: string): Promise<DeliveryView> {
  return transaction(db, async (sql) => {
    const delivery = await deliveryById(sql, deliveryId);
    if (!delivery) throw notFound("webhook delivery", deliveryId);
    // Locked, so a concurrent disable and this retry are ordered; two retries get consecutive attempt numbers.
    const endpoint = await endpointById(sql, delivery.endpoint_id, true);
    if (!endpoint || endpoint.status === "disabled")
      throw conflict(`endpoint ${delivery.endpoint_id} is disabled${endpoint?.disabled_reason ? ` (${endpoint.disabled_reason})` : ""}: enable it first`, {
        endpointId: delivery.endpoint_id,
      });
    const id = newId();
    const attempt = (await lastAttemptNumber(sql, delivery.endpoint_id, delivery.event_id)) + 1;
    await scheduleAttempt(sql, { id, endpointId: delivery.endpoint_id, eventId: delivery.event_id, attempt, manual: true, inMs: 0 });
    await appendAudit(sql, {
      actor,
      action: "webhook_delivery.retried",
      entityType: "webhook_delivery",
      entityId: id,
      payload: { retryOf: deliveryId, endpointId: delivery.endpoint_id, eventId: delivery.event_id, attempt },
    });
    return toDeliveryView((await deliveryById(sql, id))!);
  });
}
