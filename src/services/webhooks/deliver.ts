// One delivery attempt (the deliver_webhook job): sign the stored body for this attempt, POST it, record
// the outcome once, and in the same transaction schedule the next attempt (a new row and its job, at the
// schedule's delay with jitter, or later if Retry-After asks) or, after the last, mark it exhausted. A 410
// disables the endpoint. At least once: if the process dies between the POST and the record, the job runs
// again and the receiver deduplicates on webhook-id.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { type AttemptResult, completeAttempt, pendingAttempt, scheduleAttempt, updateEndpoint } from "../../db/queries/webhooks.js";
import { transaction } from "../../db/tx.js";
import { isPrivateAddress, nextAttemptDelayMs, outcomeOf, webhookSignature } from "../../domain/webhooks.js";

export interface DeliveryOptions {
  /** Seconds before each attempt (DESIGN.md §9; WEBHOOK_RETRY_SCHEDULE). */
  schedule: readonly number[];
  timeoutMs: number;
  denyPrivate: boolean;
  /** For the jitter; tests may pin it. */
  random?: () => number;
  log?: (fields: Record<string, unknown>, message: string) => void;
}

/** The most of a response body read (and then dropped): enough to end the exchange cleanly. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export async function deliverWebhook(db: Database, deliveryId: string, opts: DeliveryOptions): Promise<void> {
  const attempt = await pendingAttempt(db.sql, deliveryId);
  if (!attempt) return; // completed by an earlier run of this job
  const attemptedAt = new Date();
  let result: AttemptResult;
  let gone = false;
  if (attempt.endpoint_status === "disabled") {
    result = { status: "exhausted", responseCode: null, durationMs: null, error: "the endpoint is disabled", attemptedAt, nextAttemptAt: null };
  } else {
    const sent = await send(attempt.url, attempt.event_id, attempt.body, attempt.secret, opts);
    const outcome = outcomeOf(sent.status, sent.retryAfter, Date.now());
    gone = outcome.kind === "gone";
    if (outcome.kind === "succeeded") {
      result = { status: "succeeded", responseCode: sent.status, durationMs: sent.durationMs, error: null, attemptedAt, nextAttemptAt: null };
    } else {
      const delay =
        outcome.kind === "gone" || attempt.manual
          ? null
          : nextAttemptDelayMs(attempt.attempt, opts.schedule, outcome.retryAfterSeconds, (opts.random ?? Math.random)());
      const error = gone ? "410 Gone: the endpoint is disabled" : sent.error ?? `HTTP ${sent.status}`;
      result = {
        status: delay === null && !attempt.manual ? "exhausted" : "failed",
        responseCode: sent.status,
        durationMs: sent.durationMs,
        error,
        attemptedAt,
        nextAttemptAt: delay === null ? null : new Date(Date.now() + delay),
      };
    }
  }
  await transaction(db, async (sql) => {
    if (!(await completeAttempt(sql, attempt.id, result))) return;
    if (result.nextAttemptAt)
      await scheduleAttempt(sql, {
        id: newId(),
        endpointId: attempt.endpoint_id,
        eventId: attempt.event_id,
        attempt: attempt.attempt + 1,
        manual: false,
        runAt: result.nextAttemptAt,
      });
    if (gone) await updateEndpoint(sql, attempt.endpoint_id, { status: "disabled", disabledReason: `410 Gone on delivery ${attempt.id}` });
  });
  opts.log?.(
    { deliveryId, endpointId: attempt.endpoint_id, eventId: attempt.event_id, attempt: attempt.attempt, status: result.status, responseCode: result.responseCode, durationMs: result.durationMs },
    `webhook attempt ${result.status}`,
  );
}

interface Sent {
  status: number | null;
  retryAfter: string | null;
  durationMs: number;
  error: string | null;
}

/** One POST, signed for this attempt over exactly the bytes sent; redirects are not followed (a 3xx is a failure). */
async function send(url: string, id: string, body: string, secret: string, opts: DeliveryOptions): Promise<Sent> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    if (opts.denyPrivate) await refusePrivate(new URL(url).hostname);
    const timestamp = Math.floor(Date.now() / 1000);
    const res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "contract-rating-service-webhooks/1",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": webhookSignature(secret, id, timestamp, body),
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    await drain(res);
    return { status: res.status, retryAfter: res.headers.get("retry-after"), durationMs: elapsed(), error: null };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === "TimeoutError" ? `timed out after ${opts.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
    return { status: null, retryAfter: null, durationMs: elapsed(), error: why };
  }
}

async function refusePrivate(hostname: string): Promise<void> {
  const host = hostname.replace(/^\[|\]$/g, "");
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  if (addresses.some(isPrivateAddress)) throw new Error(`${hostname} resolves to a private or loopback address (WEBHOOK_DENY_PRIVATE=true)`);
}

async function drain(res: Response): Promise<void> {
  if (!res.body) return;
  let read = 0;
  const reader = res.body.getReader();
  try {
    while (read < MAX_RESPONSE_BYTES) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
