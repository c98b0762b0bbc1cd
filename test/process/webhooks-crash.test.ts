// Durable webhooks across real processes (DESIGN.md §9): the real app in child node processes on a test
// database, its job worker inline, real HTTP receivers on 127.0.0.1 verified with the `standardwebhooks`
// reference library.
// - A SIGKILL with an undelivered event, then a restart: the event arrives, with the same webhook-id —
//   whether the dead process had scheduled a retry (a 500 first) or was killed with the attempt in flight
//   (the receiver hangs; the restarted worker releases the dead worker's lock).
// - Two service processes on one queue lose no event and fire each alert once, also under concurrent batches.
// - WORKER=off serves without running jobs; `npm run worker` (src/worker-process.ts) runs them as its own process.
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Child, type ChildDb as Db, until, useChildApps } from "../helpers/child-app.js";
import type { Receiver, Received } from "../helpers/receiver.js";

const WRITER = "webhooks-crash-writer-secret";
const ADMIN = "webhooks-crash-admin-secret";

const { freshDatabase, receiver, track, startChild, call, ok, kill } = useChildApps({
  name: "webhooks-crash",
  keys: [
    { name: "crash-writer", role: "writer", secret: WRITER },
    { name: "crash-admin", role: "admin", secret: ADMIN },
  ],
  defaultKey: WRITER,
});

/** The alert and webhook jobs still to run (a job given up on — attempts = max_attempts — is not waited for). */
async function openJobs(db: Db): Promise<{ task: string; locked_by: string | null; locked_at: Date | null; last_error: string | null }[]> {
  return (
    await db.admin.query(
      `SELECT task_identifier AS task, locked_by, locked_at, last_error FROM graphile_worker.jobs
       WHERE task_identifier IN ('evaluate_alerts', 'deliver_webhook') AND attempts < max_attempts`,
    )
  ).rows;
}

const settled = (db: Db) => until("the alert and webhook jobs to finish", async () => (await openJobs(db)).length === 0, 45_000, 50);

async function attempts(db: Db) {
  return (
    await db.admin.query<{ event_id: string; attempt: number; status: string; response_code: number | null }>(
      "SELECT event_id, attempt, status, response_code FROM webhook_deliveries ORDER BY event_id, attempt",
    )
  ).rows;
}

const terms = {
  meters: [{ metric: "api_calls", included: "100", pricing: { model: "per_unit", unitPrice: "1" } }],
  alerts: [{ id: "q", kind: "quantity", metric: "api_calls", threshold: "50" }],
};

let seq = 0;
/** A monthly contract from 2026-01-01 whose alert "q" fires at 50 api_calls in the period. */
async function contract(c: Child, customerId: string) {
  return ok(c, "POST", "/v1/contracts", {
    customerId,
    name: customerId,
    currency: "USD",
    billingPeriod: "monthly",
    startDate: "2026-01-01",
    terms,
  });
}

/** One batch of 60 api_calls in November 2026 (the clock's period): it crosses the threshold on its own. */
async function crossingBatch(c: Child, customerId: string) {
  const events = [0, 1, 2].map((i) => ({
    eventId: `wc-${process.pid}-${++seq}`,
    customerId,
    metric: "api_calls",
    quantity: "20",
    timestamp: `2026-11-0${2 + i}T10:00:00.000Z`,
  }));
  const res = await call(c, "POST", "/v1/usage", { events });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body).toMatchObject({ accepted: 3, duplicates: 0 });
}

async function endpoint(c: Child, r: Receiver): Promise<{ id: string; secret: string }> {
  const e = await ok(c, "POST", "/v1/webhook-endpoints", { url: r.url, eventTypes: ["usage.threshold_crossed"], description: "crash test" }, ADMIN);
  expect(e.secret).toMatch(/^whsec_/);
  return e;
}

const webhookId = (r: Received) => String(r.headers["webhook-id"]);
const distinctIds = (rs: Received[]) => new Set(rs.map(webhookId));

describe("a SIGKILL with an undelivered event, then a restart", () => {
  it("delivers the retry the dead process had scheduled (500 first), with the same webhook-id", async () => {
    const db = await freshDatabase();
    const r = await receiver();
    r.script([{ status: 500 }], { status: 204 });
    const config = { WEBHOOK_RETRY_SCHEDULE: "0,3" };
    const first = await startChild(db, config);
    const { secret } = await endpoint(first, r);
    await contract(first, "crash-retry");
    await crossingBatch(first, "crash-retry");

    const [one] = await r.waitFor(1);
    // The 500 is recorded and attempt 2 scheduled (≈ 3 s on) before the process dies.
    await until("attempt 1 recorded as failed", async () => (await attempts(db)).length === 2, 10_000, 5);
    await kill(db, first);
    expect(r.received).toHaveLength(1);
    const log = await attempts(db);
    expect(log).toMatchObject([
      { attempt: 1, status: "failed", response_code: 500 },
      { attempt: 2, status: "pending" },
    ]);

    const restartedAt = Date.now();
    const second = await startChild(db, config);
    const [, two] = await r.waitFor(2, 30_000);
    expect(two!.at).toBeGreaterThanOrEqual(restartedAt);
    expect(two!.at - one!.at).toBeGreaterThanOrEqual(2_700); // the schedule's 3 s, less its 10% jitter
    expect(webhookId(two!)).toBe(webhookId(one!));
    expect(webhookId(one!)).toMatch(/^msg_/);
    const p1 = r.verify(secret, one!);
    const p2 = r.verify(secret, two!);
    expect(p2).toEqual(p1);
    expect(p2).toMatchObject({ type: "usage.threshold_crossed", data: { alertId: "q", kind: "quantity", metric: "api_calls", value: "60", threshold: "50" } });

    await settled(db);
    const deliveries = await ok(second, "GET", `/v1/webhook-deliveries?eventId=${webhookId(one!)}`, undefined, ADMIN);
    expect(deliveries.data).toMatchObject([
      { attempt: 2, status: "succeeded", responseCode: 204, eventId: webhookId(one!) },
      { attempt: 1, status: "failed", responseCode: 500, eventId: webhookId(one!) },
    ]);
    expect(r.received).toHaveLength(2);
    await kill(db, second);
  }, 90_000); // two real server processes started and one killed: about 10 s alone, far more on a loaded machine

  it("delivers an attempt that was in flight when the process died (the new worker releases the dead one's lock)", async () => {
    const db = await freshDatabase();
    const r = await receiver();
    r.script(["hang"], { status: 204 });
    const config = { JOB_LOCK_TIMEOUT_SECONDS: "5", WEBHOOK_TIMEOUT_MS: "2000" };
    const first = await startChild(db, config);
    const { secret } = await endpoint(first, r);
    await contract(first, "crash-hang");
    await crossingBatch(first, "crash-hang");

    const [one] = await r.waitFor(1);
    await kill(db, first); // the receiver still holds the request: no answer, no timeout yet
    expect(await attempts(db)).toMatchObject([{ attempt: 1, status: "pending" }]);
    const [job] = await openJobs(db);
    expect(job).toMatchObject({ task: "deliver_webhook", locked_by: expect.any(String) });

    // The dead worker's lock must be older than JOB_LOCK_TIMEOUT_SECONDS when the new worker starts (which
    // releases it then; otherwise its per-minute sweep would, up to a minute later).
    await until(
      "the dead worker's lock to grow stale",
      async () => (await db.admin.query("SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE locked_at < now() - interval '5.2 seconds'")).rows[0].n > 0,
      15_000,
      100,
    );
    const second = await startChild(db, config);
    const [, two] = await r.waitFor(2, 30_000);
    expect(webhookId(two!)).toBe(webhookId(one!));
    expect(r.verify(secret, two!)).toMatchObject({ type: "usage.threshold_crossed", data: { alertId: "q", contractId: expect.any(String) } });
    expect(r.verify(secret, two!)).toEqual(r.verify(secret, one!));

    await settled(db);
    // The same attempt, made again and recorded once.
    expect(await attempts(db)).toMatchObject([{ attempt: 1, status: "succeeded", response_code: 204 }]);
    expect(r.received).toHaveLength(2);
    await kill(db, second);
  }, 90_000); // two real server processes started and one killed: about 10 s alone, far more on a loaded machine
});

describe("two service processes sharing the queue", () => {
  let db: Db;
  let r: Receiver;
  let secret: string;
  let pair: Child[];

  beforeAll(async () => {
    db = await freshDatabase();
    r = await receiver();
    const config = { WEBHOOK_RETRY_SCHEDULE: "0,1,1" };
    pair = await Promise.all([startChild(db, config), startChild(db, config)]);
    ({ secret } = await endpoint(pair[0]!, r));
  }, 90_000);

  afterAll(async () => {
    for (const c of pair ?? []) c.child.kill("SIGKILL");
  });

  it("lose no event: 40 batches alternating between them, 40 alerts crossed, 40 distinct webhook-ids", async () => {
    const customers = Array.from({ length: 40 }, (_, i) => `pair-${String(i).padStart(2, "0")}`);
    const contracts = await Promise.all(customers.map((c, i) => contract(pair[i % 2]!, c)));
    await Promise.all(customers.map((c, i) => crossingBatch(pair[(i + 1) % 2]!, c)));

    await until("40 distinct webhook-ids", () => distinctIds(r.received).size >= 40, 45_000, 50);
    await settled(db);
    const ids = distinctIds(r.received);
    expect(ids.size).toBe(40);
    const payloads = new Map<string, any>();
    for (const req of r.received) {
      const p = r.verify(secret, req); // every request, duplicates too, verifies
      expect(p.type).toBe("usage.threshold_crossed");
      if (payloads.has(webhookId(req))) expect(p).toEqual(payloads.get(webhookId(req)));
      payloads.set(webhookId(req), p);
    }
    expect(new Set([...payloads.values()].map((p) => p.data.contractId))).toEqual(new Set(contracts.map((c) => c.id)));

    const alerts = await ok(pair[1]!, "GET", "/v1/alerts?limit=500", undefined, ADMIN);
    expect(alerts.data).toHaveLength(40);
    expect(new Set(alerts.data.map((a: any) => a.contractId))).toEqual(new Set(contracts.map((c) => c.id)));
    expect(alerts.data.every((a: any) => a.alertId === "q" && a.value === "60" && a.period.start === "2026-11-01T00:00:00.000Z")).toBe(true);
    // Each event's first attempt succeeded; nothing is pending or failed.
    const log = await attempts(db);
    expect(log.filter((d) => d.status !== "succeeded")).toEqual([]);
    expect(new Set(log.map((d) => d.event_id))).toEqual(ids);
  }, 60_000);

  it("fire a contract's alert once under 10 concurrent batches", async () => {
    const c = await contract(pair[0]!, "pair-concurrent");
    const before = r.received.length;
    await Promise.all(Array.from({ length: 10 }, (_, i) => crossingBatch(pair[i % 2]!, "pair-concurrent")));

    await until("its webhook", () => r.received.length > before, 30_000, 50);
    await settled(db);
    // A late evaluation (a successor job, or one on the other process) would have fired by now.
    await new Promise((res) => setTimeout(res, 1_500));
    await settled(db);
    const alerts = await ok(pair[1]!, "GET", `/v1/alerts?contractId=${c.id}`, undefined, ADMIN);
    expect(alerts.data).toHaveLength(1);
    expect(alerts.data[0]).toMatchObject({ alertId: "q", contractId: c.id });
    const mine = r.received.slice(before).filter((req) => r.verify(secret, req).data.contractId === c.id);
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(distinctIds(mine).size).toBe(1);
    expect(r.received.slice(before).every((req) => r.verify(secret, req).data.contractId === c.id)).toBe(true);
    expect(r.verify(secret, mine[0]!).data).toEqual(alerts.data[0]);
  }, 60_000);
});

describe("WORKER=off and `npm run worker` as its own process", () => {
  it("a service without a worker delivers nothing; a worker process started beside it delivers what was queued", { timeout: 90_000 }, async () => {
    const db = await freshDatabase();
    const rx = await receiver();
    const service = await startChild(db, { WORKER: "off" });
    const ep = await ok(service, "POST", "/v1/webhook-endpoints", { url: rx.url, eventTypes: ["exception.raised"] }, ADMIN);
    // Usage of no contract raises unmapped_usage, and with it exception.raised (no clock involved).
    await ok(service, "POST", "/v1/usage", { events: [{ eventId: "w-1", customerId: "nobody", metric: "api_calls", quantity: "1", timestamp: "2026-11-02T00:00:00Z" }] }, WRITER, 200);
    await new Promise((r) => setTimeout(r, 1500));
    expect(rx.received).toHaveLength(0);
    expect((await openJobs(db)).map((j) => j.task)).toEqual(["deliver_webhook"]);
    // src/worker-process.ts is what `npm run worker` runs (tsx src/worker-process.ts).
    const worker = spawn(process.execPath, ["--import", "tsx", "src/worker-process.ts"], {
      cwd: resolve("."),
      env: { ...process.env, DATABASE_URL: db.runtime, LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    track(worker);
    const [r] = await rx.waitFor(1, 60_000);
    expect(rx.verify(ep.secret, r!)).toMatchObject({ type: "exception.raised", data: { kind: "unmapped_usage", customerId: "nobody" } });
    // It stops cleanly on SIGTERM.
    worker.kill("SIGTERM");
    const code = await new Promise((res) => worker.once("exit", (c) => res(c)));
    expect(code).toBe(0);
    await kill(db, service);
  });
});
