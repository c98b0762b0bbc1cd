// Changing a webhook endpoint (admin): its url, event types, description, or status. Re-enabling clears the
// reason it was disabled; attempts already exhausted are retried by hand (retry-delivery.ts).
import type { Database } from "../../db/client.js";
import { endpointById, updateEndpoint } from "../../db/queries/webhooks.js";
import { transaction } from "../../db/tx.js";
import { notFound } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { type EndpointView, toEndpointView } from "./read.js";
import { checkEndpointUrl } from "./url.js";

export interface EndpointPatch {
  url?: string | undefined;
  eventTypes?: string[] | undefined;
  description?: string | null | undefined;
  status?: "enabled" | "disabled" | undefined;
}

export async function patchEndpoint(db: Database, actor: string, id: string, patch: EndpointPatch, opts: { denyPrivate: boolean }): Promise<EndpointView> {
  if (patch.url !== undefined) checkEndpointUrl(patch.url, "url", opts.denyPrivate);
  return transaction(db, async (sql) => {
    const before = await endpointById(sql, id, true);
    if (!before) throw notFound("webhook endpoint", id);
    const statusChanges = patch.status !== undefined && patch.status !== before.status;
    const row = await updateEndpoint(sql, id, {
      url: patch.url,
      eventTypes: patch.eventTypes ? [...new Set(patch.eventTypes)] : undefined,
      description: patch.description,
      status: patch.status,
      disabledReason: statusChanges ? (patch.status === "disabled" ? `disabled by ${actor}` : null) : undefined,
    });
    const view = toEndpointView(row!);
    await appendAudit(sql, {
      actor,
      action: "webhook_endpoint.updated",
      entityType: "webhook_endpoint",
      entityId: id,
      payload: { before: toEndpointView(before), after: view },
    });
    return view;
  });
}
