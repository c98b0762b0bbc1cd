// One delivery attempt (the deliver_webhook job): sign the stored body for this attempt, POST it, record
// the outcome once, and in the same transaction schedule the next attempt (a new row and its job, at the
// schedule's delay with jitter, or later if Retry-After asks) or, after the last, mark it exhausted. A 410
// disables the endpoint. At least once: if the process dies between the POST and the record, the job runs
// again and the receiver deduplicates on webhook-id.
import { type LookupAddress, lookup } from "node:dns";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { type LookupFunction, isIP } from "node:net";
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
  let result: AttemptResult;
  let gone = false;
  if (attempt.endpoint_status === "disabled") {
    result = { status: "exhausted", responseCode: null, durationMs: null, error: "the endpoint is disabled", nextAttemptInMs: null };
  } else {
    const sent = await send(attempt.url, attempt.event_id, attempt.body, attempt.secret, opts);
    const outcome = outcomeOf(sent.status, sent.retryAfter, Date.now());
    gone = outcome.kind === "gone";
    if (outcome.kind === "succeeded") {
      result = { status: "succeeded", responseCode: sent.status, durationMs: sent.durationMs, error: null, nextAttemptInMs: null };
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
        nextAttemptInMs: delay,
      };
    }
  }
  await transaction(db, async (sql) => {
    if (!(await completeAttempt(sql, attempt.id, result))) return;
    if (result.nextAttemptInMs !== null)
      await scheduleAttempt(sql, {
        id: newId(),
        endpointId: attempt.endpoint_id,
        eventId: attempt.event_id,
        attempt: attempt.attempt + 1,
        manual: false,
        inMs: result.nextAttemptInMs,
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

/**
 * One POST, signed for this attempt over exactly the bytes sent. Redirects are not followed (a 3xx is a
 * failure). With WEBHOOK_DENY_PRIVATE the address checked is the one connected to (the request's own DNS
 * lookup refuses private addresses), so a name cannot resolve to a public address for a check and to a
 * private one for the connection. The timeout covers the lookup too.
 */
async function send(url: string, id: string, body: string, secret: string, opts: DeliveryOptions): Promise<Sent> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const timestamp = Math.floor(Date.now() / 1000);
  const target = new URL(url);
  // A literal address is connected to without a lookup: checked here (creation refuses it too).
  if (opts.denyPrivate && isIP(target.hostname.replace(/^\[|\]$/g, "")) && isPrivateAddress(target.hostname))
    return { status: null, retryAfter: null, durationMs: 0, error: `${target.hostname} is a private or loopback address (WEBHOOK_DENY_PRIVATE=true)` };
  const request = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<Sent>((resolve) => {
    const req = request(
      target,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "user-agent": "contract-rating-service-webhooks/1",
          "webhook-id": id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": webhookSignature(secret, id, timestamp, body),
        },
        signal: AbortSignal.timeout(opts.timeoutMs),
        ...(opts.denyPrivate ? { lookup: publicOnlyLookup } : {}),
      },
      (res) => {
        // Read (and drop) up to MAX_RESPONSE_BYTES, so the exchange ends cleanly.
        let read = 0;
        const done = () => {
          const retryAfter = res.headers["retry-after"];
          resolve({ status: res.statusCode ?? null, retryAfter: typeof retryAfter === "string" ? retryAfter : null, durationMs: elapsed(), error: null });
        };
        res.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        res.on("end", done);
        res.on("close", done);
        res.on("error", done);
      },
    );
    req.on("error", (e: Error & { code?: string }) => {
      const why = e.name === "AbortError" || e.name === "TimeoutError" ? `timed out after ${opts.timeoutMs} ms` : e.code === "EPRIVATE" ? e.message : (e.code ?? e.message);
      resolve({ status: null, retryAfter: null, durationMs: elapsed(), error: why });
    });
    req.end(body);
  });
}

/** dns.lookup, refusing private, loopback and link-local answers (WEBHOOK_DENY_PRIVATE). */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "", 0);
    const list = addresses as LookupAddress[];
    const refused = list.find((a) => isPrivateAddress(a.address));
    if (refused) return callback(Object.assign(new Error(`${hostname} resolves to a private or loopback address (WEBHOOK_DENY_PRIVATE=true)`), { code: "EPRIVATE" }), "", 0);
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
    const first = list[0]!;
    callback(null, first.address, first.family);
  });
};
