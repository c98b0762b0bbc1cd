// Webhooks (DESIGN.md §9) against real HTTP receivers on 127.0.0.1, verified with the Standard Webhooks
// reference library (standardwebhooks), not only with our own code: endpoints, payloads, retries, 410,
// Retry-After, manual retries, and nothing sent for a change that rolled back.
import { Writable } from "node:stream";
import pg from "pg";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { transaction } from "../../src/db/tx.js";
import { emitWebhookEvent } from "../../src/services/webhooks/emit.js";
import { expectProblem, useTestApp } from "../helpers/app.js";
import { contractBody, events, meter, uniqueId } from "../helpers/factories.js";
import { eventually, jobsDrained } from "../helpers/jobs.js";
import { type Receiver, startReceiver } from "../helpers/receiver.js";

// Three attempts, a second apart; the jitter pinned to none (random 0.5 → ×1.0).
const t = useTestApp({ WEBHOOK_RETRY_SCHEDULE: "0,1,1" }, { random: () => 0.5 });

const receivers: Receiver[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
});

/** A receiver and an endpoint subscribed to `eventTypes`; the endpoint is disabled when the test ends, so later tests' events do not reach it. */
async function endpoint(eventTypes: string[]) {
  const rx = await startReceiver();
  receivers.push(rx);
  const res = await t.post("/v1/webhook-endpoints", { url: rx.url, eventTypes, description: "test receiver" });
  expect(res.statusCode, res.body).toBe(201);
  const ep = res.json();
  return {
    rx,
    ep,
    secret: ep.secret as string,
    deliveries: async (query = "") => (await t.get(`/v1/webhook-deliveries?endpointId=${ep.id}${query}`)).json().data as any[],
    disable: () => t.app.inject({ method: "PATCH", url: `/v1/webhook-endpoints/${ep.id}`, payload: { status: "disabled" }, headers: { authorization: "Bearer test-admin-secret" } }),
  };
}
const patch = (id: string, payload: unknown, role = "admin") =>
  t.app.inject({ method: "PATCH", url: `/v1/webhook-endpoints/${id}`, payload: payload as object, headers: { authorization: `Bearer test-${role}-secret` } });

/** Usage of a customer no contract has: raises an unmapped_usage exception, and with it exception.raised. */
const raiseException = () => t.ingest(events(uniqueId("nobody"), "api_calls", "5", "2026-11-02T00:00:00Z"));

describe("endpoints (admin)", () => {
  it("creation shows a whsec_ secret once; reads and the audit log never show it again", async () => {
    const { ep, secret, disable } = await endpoint(["document.issued"]);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(secret.slice(6), "base64")).toHaveLength(32);
    expect(ep).toMatchObject({ eventTypes: ["document.issued"], description: "test receiver", status: "enabled", disabledReason: null });
    const one = await t.get(`/v1/webhook-endpoints/${ep.id}`);
    expect(one.statusCode).toBe(200);
    expect(one.json()).toEqual({ ...ep, secret: undefined });
    const list = await t.get("/v1/webhook-endpoints?limit=500");
    expect(list.body).not.toContain(secret);
    const audit = await t.get(`/v1/audit?entityId=${ep.id}`);
    expect(audit.json().data.map((e: any) => e.action)).toEqual(["webhook_endpoint.created"]);
    expect(audit.body).not.toContain(secret.slice(6));
    await disable();
  });

  it("PATCH changes the url, event types, description and status; re-enabling clears the reason", async () => {
    const { ep, rx } = await endpoint(["document.issued"]);
    const disabled = await patch(ep.id, { status: "disabled" });
    expect(disabled.statusCode, disabled.body).toBe(200);
    expect(disabled.json()).toMatchObject({ status: "disabled", disabledReason: "disabled by admin-key" });
    const changed = await patch(ep.id, { status: "enabled", eventTypes: ["exception.raised", "exception.resolved"], description: null, url: `${rx.url}/v2` });
    expect(changed.json()).toMatchObject({ status: "enabled", disabledReason: null, eventTypes: ["exception.raised", "exception.resolved"], description: null, url: `${rx.url}/v2` });
    await patch(ep.id, { status: "disabled" });
  });

  it("bad input is a 400 naming the field; other roles get 403; an unknown id 404", async () => {
    expect(expectProblem(await t.post("/v1/webhook-endpoints", { url: "ftp://example.com/x", eventTypes: ["document.issued"] }), 400, "validation_failed").errors).toContainEqual({
      path: "body.url",
      message: "must be an http or https URL",
    });
    expect(expectProblem(await t.post("/v1/webhook-endpoints", { url: "not a url", eventTypes: ["document.issued"] }), 400, "validation_failed").errors[0].path).toBe("body.url");
    expect(expectProblem(await t.post("/v1/webhook-endpoints", { url: "https://x.example", eventTypes: ["invoice.paid"] }), 400, "validation_failed").errors[0].path).toBe("body.eventTypes.0");
    expect(expectProblem(await t.post("/v1/webhook-endpoints", { url: "https://x.example", eventTypes: [] }), 400, "validation_failed").errors[0].path).toBe("body.eventTypes");
    expectProblem(await patch("0196f6d6-2b3c-7d4e-8f50-6b7c8d9e0f1a", {}), 400, "validation_failed");
    for (const role of ["writer", "approver", "reader"] as const) {
      expectProblem(await t.post("/v1/webhook-endpoints", { url: "https://x.example", eventTypes: ["document.issued"] }, role), 403, "forbidden");
      expectProblem(await t.get("/v1/webhook-deliveries", role), 403, "forbidden");
    }
    expectProblem(await t.get("/v1/webhook-endpoints/0196f6d6-2b3c-7d4e-8f50-6b7c8d9e0f1a"), 404, "not_found");
    expectProblem(await patch("0196f6d6-2b3c-7d4e-8f50-6b7c8d9e0f1a", { status: "enabled" }), 404, "not_found");
    expectProblem(await t.post("/v1/webhook-deliveries/0196f6d6-2b3c-7d4e-8f50-6b7c8d9e0f1a/retry", {}), 404, "not_found");
  });
});

describe("what is sent", () => {
  it("document.issued carries the document as GET /v1/documents/{id} shows it, signed over exactly the bytes sent", async () => {
    const { rx, secret, disable } = await endpoint(["document.issued"]);
    const c = await t.createContract(contractBody({ terms: { meters: [meter("api_calls", "0.25", "100")] } }));
    await t.ingest(events(c.customerId, "api_calls", "500", "2026-10-10T00:00:00Z"));
    const calc = await t.preview(c.id, "2026-10-01T00:00:00.000Z");
    const issued = await t.issue(c.id, calc.id);
    expect(issued.statusCode, issued.body).toBe(201);
    const [r] = await rx.waitFor(1);
    const payload = rx.verify(secret, r!); // throws unless the signature verifies (and the timestamp is recent)
    const shown = (await t.get(`/v1/documents/${issued.json().id}`, "reader")).json();
    expect(payload).toEqual({ type: "document.issued", timestamp: expect.any(String), data: shown });
    expect(JSON.parse(r!.body).data.amount).toBe("100.00");
    expect(r!.headers["content-type"]).toBe("application/json");
    expect(r!.headers["webhook-id"]).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(Math.abs(Number(r!.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    // A tampered body fails the reference verification.
    expect(() => rx.verify(secret, { ...r!, body: r!.body.replace("100.00", "1.00") })).toThrow();
    await disable();
  });

  it("exception.raised and exception.resolved carry the exception; an endpoint receives only its event types", async () => {
    const both = await endpoint(["exception.raised", "exception.resolved"]);
    const onlyDocuments = await endpoint(["document.issued"]);
    await raiseException();
    const [raised] = await both.rx.waitFor(1);
    const event = both.rx.verify(both.secret, raised!);
    expect(event.type).toBe("exception.raised");
    expect(event.data).toMatchObject({ kind: "unmapped_usage", status: "open", blocking: false });
    expect(event.data).toEqual((await t.get(`/v1/exceptions/${event.data.id}`, "reader")).json());
    // Raised again (the same subject refreshed) is not raised anew.
    const resolved = await t.post(`/v1/exceptions/${event.data.id}/resolve`, { decision: "reject", note: "not ours" }, "approver");
    expect(resolved.statusCode, resolved.body).toBe(200);
    const [, second] = await both.rx.waitFor(2);
    const after = both.rx.verify(both.secret, second!);
    expect(after).toMatchObject({ type: "exception.resolved", data: { id: event.data.id, status: "rejected", resolution: { decision: "reject", note: "not ours" } } });
    await jobsDrained(t.db);
    expect(onlyDocuments.rx.received).toEqual([]);
    await both.disable();
    await onlyDocuments.disable();
  });

  it("a change that rolls back sends nothing; a committed one is sent", async () => {
    const { rx, ep, disable } = await endpoint(["billing_run.completed"]);
    await transaction(t.db, async (sql) => {
      await emitWebhookEvent(sql, "billing_run.completed", { id: "rolled-back" });
      throw new Error("the change fails after its event was emitted");
    }).catch(() => undefined);
    await transaction(t.db, (sql) => emitWebhookEvent(sql, "billing_run.completed", { id: "committed" }));
    const [r] = await rx.waitFor(1);
    expect(JSON.parse(r!.body).data).toEqual({ id: "committed" });
    await jobsDrained(t.db);
    expect(rx.received).toHaveLength(1);
    const [row] = await t.db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = $1::uuid`, [ep.id]);
    expect(row!.n).toBe(1);
    await disable();
  });
});

describe("retries and their log", () => {
  it("500, 500, 200: three attempts a second apart, one webhook-id, each signed for its own timestamp", async () => {
    const { rx, secret, deliveries, disable } = await endpoint(["exception.raised"]);
    rx.script([{ status: 500 }, { status: 500 }], { status: 200 });
    await raiseException();
    const got = await rx.waitFor(3);
    expect(new Set(got.map((r) => r.headers["webhook-id"])).size).toBe(1);
    for (const r of got) rx.verify(secret, r);
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    expect(got[1]!.at - got[0]!.at).toBeGreaterThanOrEqual(900);
    const log = await eventually(() => deliveries(), (d) => d.some((x) => x.status === "succeeded"));
    expect(log.map((d) => [d.attempt, d.status, d.responseCode])).toEqual([
      [3, "succeeded", 200],
      [2, "failed", 500],
      [1, "failed", 500],
    ]);
    expect(log[2]).toMatchObject({ eventType: "exception.raised", error: "HTTP 500", manual: false, nextAttemptAt: expect.any(String) });
    expect(log[0].nextAttemptAt).toBeNull();
    expect((await deliveries("&status=failed")).map((d) => d.attempt)).toEqual([2, 1]);
    const page = (await t.get(`/v1/webhook-deliveries?eventId=${log[0].eventId}&limit=2`)).json();
    expect(page.data.map((d: any) => d.attempt)).toEqual([3, 2]);
    const rest = (await t.get(`/v1/webhook-deliveries?eventId=${log[0].eventId}&limit=2&cursor=${page.nextCursor}`)).json();
    expect(rest).toEqual({ data: [expect.objectContaining({ attempt: 1 })], nextCursor: null });
    await disable();
  });

  it("after the last failed attempt the delivery is exhausted; a manual retry is one new attempt now", async () => {
    const { rx, deliveries, disable } = await endpoint(["exception.raised"]);
    rx.script([], { status: 500 });
    await raiseException();
    const log = await eventually(() => deliveries(), (d) => d.some((x) => x.status === "exhausted"));
    expect(log.map((d) => [d.attempt, d.status])).toEqual([
      [3, "exhausted"],
      [2, "failed"],
      [1, "failed"],
    ]);
    rx.script([], { status: 204 });
    const retried = await t.post(`/v1/webhook-deliveries/${log[0].id}/retry`, {});
    expect(retried.statusCode, retried.body).toBe(202);
    expect(retried.json()).toMatchObject({ attempt: 4, manual: true, status: "pending", eventId: log[0].eventId });
    await rx.waitFor(4);
    expect(new Set(rx.received.map((r) => r.headers["webhook-id"])).size).toBe(1);
    const done = await eventually(() => deliveries(), (d) => d[0].status === "succeeded");
    expect(done[0]).toMatchObject({ attempt: 4, manual: true, responseCode: 204 });
    await disable();
  });

  it("a 410 disables the endpoint; a retry is then a 409 until it is enabled again", async () => {
    const { rx, ep, deliveries } = await endpoint(["exception.raised"]);
    rx.script([{ status: 410 }], { status: 200 });
    await raiseException();
    const [gone] = await eventually(() => deliveries(), (d) => d.length > 0 && d[0].status !== "pending");
    expect(gone).toMatchObject({ attempt: 1, status: "exhausted", responseCode: 410, nextAttemptAt: null });
    const after = (await t.get(`/v1/webhook-endpoints/${ep.id}`)).json();
    expect(after).toMatchObject({ status: "disabled", disabledReason: `410 Gone on delivery ${gone.id}` });
    // A disabled endpoint receives nothing further.
    await raiseException();
    await jobsDrained(t.db);
    expect(rx.received).toHaveLength(1);
    const refused = expectProblem(await t.post(`/v1/webhook-deliveries/${gone.id}/retry`, {}), 409, "conflict");
    expect(refused.endpointId).toBe(ep.id);
    expect((await patch(ep.id, { status: "enabled" })).statusCode).toBe(200);
    expect((await t.post(`/v1/webhook-deliveries/${gone.id}/retry`, {})).statusCode).toBe(202);
    await rx.waitFor(2);
    await patch(ep.id, { status: "disabled" });
  });

  it("a 503 with Retry-After waits at least that long (up to an hour) before the next attempt", async () => {
    const { rx, deliveries, disable } = await endpoint(["exception.raised"]);
    rx.script([{ status: 503, headers: { "retry-after": "3" } }], { status: 200 });
    await raiseException();
    const [first, second] = await rx.waitFor(2);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(2900);
    const log = await eventually(() => deliveries(), (d) => d[0]?.status === "succeeded");
    expect(Date.parse(log[1].nextAttemptAt) - Date.parse(log[1].attemptedAt)).toBeGreaterThanOrEqual(3000);
    await disable();
  });

  it("an unreachable receiver is a failed attempt with the network error, retried", async () => {
    const { rx, ep, deliveries, disable } = await endpoint(["exception.raised"]);
    await rx.close(); // nothing listens on its port any more
    await raiseException();
    const log = await eventually(() => deliveries(), (d) => d.some((x) => x.status === "exhausted"));
    expect(log).toHaveLength(3);
    expect(log[2]).toMatchObject({ status: "failed", responseCode: null, error: "ECONNREFUSED", endpointId: ep.id });
    await disable();
  });
});

describe("with WEBHOOK_DENY_PRIVATE=true", () => {
  const lines: string[] = [];
  const logged = pino({ level: "debug" }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
  const strict = useTestApp({ WEBHOOK_DENY_PRIVATE: "true", WEBHOOK_RETRY_SCHEDULE: "0" }, { logger: logged });

  it("refuses private and loopback endpoints at creation; a public name is stored", async () => {
    for (const url of ["http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x", "http://localhost:8080/x", "http://192.168.0.10/x", "http://169.254.169.254/latest"]) {
      const body = expectProblem(await strict.post("/v1/webhook-endpoints", { url, eventTypes: ["exception.raised"] }), 400, "validation_failed");
      expect(body.errors[0]).toEqual({ path: "body.url", message: "must not be a private or loopback address (WEBHOOK_DENY_PRIVATE=true)" });
    }
    const ok = await strict.post("/v1/webhook-endpoints", { url: "https://hooks.example.com/rating", eventTypes: ["exception.raised"] });
    expect(ok.statusCode, ok.body).toBe(201);
    // Its secret is in no log line, whatever was logged.
    expect(lines.join("")).not.toContain(ok.json().secret.slice(6));
    expect(lines.length).toBeGreaterThan(0);
  });

  it("refuses to send to a private address that got in anyway (an endpoint stored before the setting was turned on)", async () => {
    const rx = await startReceiver();
    receivers.push(rx);
    const owner = new pg.Client({ connectionString: strict.url });
    await owner.connect();
    const id = "0196f6d6-2b3c-7d4e-8f50-6b7c8d9e0f99";
    await owner.query(`INSERT INTO webhook_endpoints (id, url, event_types, secret) VALUES ($1, $2, '{billing_run.completed}', 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')`, [id, rx.url]);
    await owner.end();
    await transaction(strict.db, (sql) => emitWebhookEvent(sql, "billing_run.completed", { id: "x" }));
    const [d] = await eventually(async () => (await strict.get(`/v1/webhook-deliveries?endpointId=${id}`)).json().data, (d: any[]) => d[0]?.status === "exhausted");
    expect(d.error).toBe("127.0.0.1 is a private or loopback address (WEBHOOK_DENY_PRIVATE=true)");
    expect(rx.received).toEqual([]);
  });
});
