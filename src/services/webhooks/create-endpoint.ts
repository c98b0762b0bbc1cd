// Registering a webhook endpoint (admin): its secret is made here and shown once, in this answer only.
import { randomBytes } from "node:crypto";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { insertEndpoint } from "../../db/queries/webhooks.js";
import { transaction } from "../../db/tx.js";
import { SECRET_PREFIX } from "../../domain/webhooks.js";
import { appendAudit } from "../audit/append.js";
import { type EndpointView, toEndpointView } from "./read.js";
import { checkEndpointUrl } from "./url.js";

export interface EndpointInput {
  url: string;
  eventTypes: string[];
  description?: string | null | undefined;
}

export async function createEndpoint(
  db: Database,
  actor: string,
  input: EndpointInput,
  opts: { denyPrivate: boolean },
): Promise<EndpointView & { secret: string }> {
  checkEndpointUrl(input.url, "url", opts.denyPrivate);
  // 32 random bytes: inside the specification's 24–64.
  const secret = `${SECRET_PREFIX}${randomBytes(32).toString("base64")}`;
  return transaction(db, async (sql) => {
    const row = await insertEndpoint(sql, {
      id: newId(),
      url: input.url,
      eventTypes: [...new Set(input.eventTypes)],
      description: input.description ?? null,
      secret,
    });
    const view = toEndpointView(row);
    // The audit names the endpoint, never its secret.
    await appendAudit(sql, { actor, action: "webhook_endpoint.created", entityType: "webhook_endpoint", entityId: view.id, payload: { endpoint: view } });
    return { ...view, secret };
  });
}
