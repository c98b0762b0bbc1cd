// Billing runs across real processes (DESIGN.md §10, docs/billing-runs.md): the real app in child node
// processes on a test database, its job worker inline (WORKER_CONCURRENCY=2), a real HTTP receiver for the
// webhooks.
// - A SIGKILL mid-run, then a restart: the restarted worker releases the dead one's locked jobs and the run
//   completes with every item issued, exactly one document per contract and period, gapless numbers, one
//   document.issued event per document and one billing_run.completed, and an intact audit chain.
// - Two processes working one run in parallel (the run started on one, both workers claiming its jobs): the
//   same, and the run completes once.
import { describe, expect, it } from "vitest";
import { type Child, type ChildDb as Db, until, useChildApps } from "../helpers/child-app.js";
import type { Receiver, Received } from "../helpers/receiver.js";

const WRITER = "billing-run-crash-writer-secret";
const APPROVER = "billing-run-crash-approver-secret";
const ADMIN = "billing-run-crash-admin-secret";
const CONTRACTS = 60;
const OCTOBER = "2026-10-01T00:00:00.000Z";
// Short lock timeout: a dead worker's job is released by the next worker to start 5 s after it was locked.
const CONFIG = { JOB_LOCK_TIMEOUT_SECONDS: "5", WEBHOOK_TIMEOUT_MS: "2000", WORKER_CONCURRENCY: "2", WEBHOOK_RETRY_SCHEDULE: "0,1,1,2" };

const { freshDatabase, receiver, startChild, call, ok, kill } = useChildApps({
  name: "billing-run-crash",
  keys: [
    { name: "run-writer", role: "writer", secret: WRITER },
    { name: "run-approver", role: "approver", secret: APPROVER },
    { name: "run-admin", role: "admin", secret: ADMIN },
  ],
  defaultKey: WRITER,
  config: CONFIG,
});

/** A webhook endpoint for the documents and the run's completion. */
async function endpoint(c: Child, r: Receiver): Promise<string> {
  const e = await ok(c, "POST", "/v1/webhook-endpoints", { url: r.url, eventTypes: ["document.issued", "billing_run.completed"], description: "billing run crash test" }, ADMIN);
  return e.secret as string;
}

/**
 * CONTRACTS monthly contracts from 2026-10-01 (a platform fee and api_calls at 0.50), and one batch of
 * October usage: contract i used 11 + i calls. October is the one ended period (the clock is mid-November).
 */
async function book(c: Child, prefix: string): Promise<{ id: string; customerId: string; amount: string }[]> {
  const out: { id: string; customerId: string; amount: string }[] = [];
  for (let i = 0; i < CONTRACTS; i += 10) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(10, CONTRACTS - i) }, async (_, j) => {
          const n = i + j;
          const customerId = `${prefix}-${String(n).padStart(3, "0")}`;
          const contract = await ok(c, "POST", "/v1/contracts", {
            customerId,
            name: customerId,
            currency: "USD",
            billingPeriod: "monthly",
            startDate: "2026-10-01",
            endDate: "2027-09-30",
            terms: { platformFee: { amount: "100.00" }, meters: [{ metric: "api_calls", pricing: { model: "per_unit", unitPrice: "0.5" } }] },
          });
          return { id: contract.id as string, customerId, amount: (100 + (11 + n) * 0.5).toFixed(2) };
        }),
      )),
    );
  }
  const events = out.flatMap((k, n) =>
    [0, 1].map((part) => ({
      eventId: `${k.customerId}-${part}`,
      customerId: k.customerId,
      metric: "api_calls",
      quantity: String(part === 0 ? 10 : n + 1),
      timestamp: `2026-10-${String(3 + part * 10).padStart(2, "0")}T08:00:00.000Z`,
    })),
  );
  const res = await call(c, "POST", "/v1/usage", { events });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body).toMatchObject({ accepted: events.length, duplicates: 0 });
  return out;
}

async function itemsOf(c: Child, runId: string): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await ok(c, "GET", `/v1/billing-runs/${runId}/items?limit=25${cursor ? `&cursor=${cursor}` : ""}`);
    out.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

const select = (db: Db, sql: string, params: unknown[] = []) => db.admin.query(sql, params).then((r) => r.rows);

/** The jobs of the queue still to run (one given up on — attempts = max_attempts — is not waited for). */
const openJobs = (db: Db, task?: string) =>
  select(db, `SELECT task_identifier AS task, locked_by, locked_at FROM graphile_worker.jobs WHERE attempts < max_attempts AND ($1::text IS NULL OR task_identifier = $1)`, [task ?? null]);

const webhookId = (r: Received) => String(r.headers["webhook-id"]);

/**
 * What a finished run must show, whatever crashed: every item issued with its document, exactly one
 * document per contract and period (in the database, not only through the API), the invoice numbers
 * 1…CONTRACTS without a gap, each document's webhook event once (distinct webhook-ids; at least once
 * delivery may repeat one), one billing_run.completed, and an audit chain that verifies.
 */
async function expectOneDocumentEach(db: Db, c: Child, runId: string, contracts: { id: string; amount: string }[], r: Receiver, secret: string) {
  const run = await ok(c, "GET", `/v1/billing-runs/${runId}`);
  expect(run).toMatchObject({
    status: "completed",
    autoIssue: true,
    progress: { total: CONTRACTS, done: CONTRACTS },
    counts: { issued: CONTRACTS, previewed: 0, blocked: 0, nothing_to_issue: 0, failed: 0 },
    finishedAt: expect.any(String),
  });

  const items = await itemsOf(c, runId);
  expect(items).toHaveLength(CONTRACTS);
  expect(items.filter((i) => i.status !== "issued" || !i.documentId || i.error !== null)).toEqual([]);
  expect(new Set(items.map((i) => i.contractId))).toEqual(new Set(contracts.map((k) => k.id)));
  expect(items.every((i) => i.periodStart === OCTOBER)).toBe(true);
  expect(new Set(items.map((i) => i.documentId)).size).toBe(CONTRACTS);

  const perPeriod = await select(db, "SELECT contract_id::text AS contract_id, period_start, count(*)::int AS n FROM documents GROUP BY 1, 2");
  expect(perPeriod).toHaveLength(CONTRACTS);
  expect(perPeriod.filter((p) => p.n !== 1)).toEqual([]);
  expect(new Set(perPeriod.map((p) => p.contract_id))).toEqual(new Set(contracts.map((k) => k.id)));
  expect(perPeriod.every((p) => (p.period_start as Date).toISOString() === OCTOBER)).toBe(true);

  // Each item names the one document of its contract, of the amount its usage makes.
  const docs = await select(db, "SELECT id::text AS id, contract_id::text AS contract_id, kind, kind_seq, number, amount::text AS amount, calculation_id::text AS calculation_id FROM documents");
  const byContract = new Map(docs.map((d) => [d.contract_id as string, d]));
  for (const item of items) {
    const d = byContract.get(item.contractId)!;
    expect(d.id).toBe(item.documentId);
    expect(d.calculation_id).toBe(item.calculationId);
    expect(Number(d.amount).toFixed(2)).toBe(contracts.find((k) => k.id === item.contractId)!.amount);
  }

  // Gapless: one series per kind, 1…n, its counter at n (a rolled-back or killed issue left no hole).
  const series = await select(db, "SELECT kind, count(*)::int AS n, min(kind_seq) AS lo, max(kind_seq) AS hi, count(DISTINCT number)::int AS numbers FROM documents GROUP BY kind");
  expect(series).toEqual([{ kind: "invoice", n: CONTRACTS, lo: 1, hi: CONTRACTS, numbers: CONTRACTS }]);
  expect(new Set(docs.map((d) => d.number))).toEqual(new Set(Array.from({ length: CONTRACTS }, (_, i) => `INV-${String(i + 1).padStart(6, "0")}`)));
  expect(await select(db, "SELECT kind, last_number FROM document_counters ORDER BY kind")).toEqual([
    { kind: "credit_memo", last_number: 0 },
    { kind: "invoice", last_number: CONTRACTS },
  ]);

  // The events: one document.issued per document and one billing_run.completed, each delivered (at least once).
  await until(
    "every webhook delivered",
    async () => (await openJobs(db, "deliver_webhook")).length === 0 && new Set(r.received.map(webhookId)).size >= CONTRACTS + 1,
    30_000,
    50,
  );
  const events = new Map<string, any>();
  for (const req of r.received) {
    const p = r.verify(secret, req);
    if (events.has(webhookId(req))) expect(p).toEqual(events.get(webhookId(req)));
    events.set(webhookId(req), p);
  }
  const issued = [...events.values()].filter((p) => p.type === "document.issued");
  const completed = [...events.values()].filter((p) => p.type === "billing_run.completed");
  expect(issued.map((p) => p.data.id).sort()).toEqual(docs.map((d) => d.id).sort());
  expect(completed).toHaveLength(1);
  expect(completed[0].data).toMatchObject({ id: runId, status: "completed", progress: { total: CONTRACTS, done: CONTRACTS }, counts: { issued: CONTRACTS } });
  expect(await select(db, "SELECT count(*)::int AS n FROM webhook_events WHERE type = 'billing_run.completed'")).toEqual([{ n: 1 }]);

  const verified = await ok(c, "GET", "/v1/audit/verify?deep=true", undefined, ADMIN);
  expect(verified, JSON.stringify(verified.problems)).toMatchObject({ ok: true, problems: [] });
}

describe("a SIGKILL mid-run, then a restart", () => {
  it("completes the run with exactly one document per contract and period, numbered without gaps", async () => {
    const db = await freshDatabase();
    const r = await receiver();
    const a = await startChild(db);
    const secret = await endpoint(a, r);
    const contracts = await book(a, "crash");

    const started = await call(a, "POST", "/v1/billing-runs", { autoIssue: true, periodEnd: "2026-11-01T00:00:00Z" }, APPROVER);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect(started.body).toMatchObject({ status: "running", progress: { total: CONTRACTS, done: 0 } });
    const runId = started.body.id as string;

    // Some but not all items done, and a contract's job in flight (locked by A's worker): kill.
    let seen: any;
    await until("a few items done and a job in flight", async () => {
      seen = await ok(a, "GET", `/v1/billing-runs/${runId}`);
      return seen.progress.done >= 5 && (await openJobs(db, "bill_contracts")).some((j) => j.locked_by !== null);
    }, 60_000, 10);
    expect(seen.status).toBe("running");
    await kill(db, a);

    const [{ pending }] = await select(db, "SELECT count(*)::int AS pending FROM billing_run_items WHERE run_id = $1 AND status = 'pending'", [runId]);
    expect(pending).toBeGreaterThan(0);
    expect(pending).toBeLessThan(CONTRACTS);
    // The dead worker still holds the jobs it was running (their locks outlive it).
    const locked = (await openJobs(db, "bill_contracts")).filter((j) => j.locked_by !== null);
    expect(locked.length).toBeGreaterThan(0);
    const [{ status }] = await select(db, "SELECT status FROM billing_runs WHERE id = $1", [runId]);
    expect(status).toBe("running");

    // The locks must be older than JOB_LOCK_TIMEOUT_SECONDS when the new worker starts (which releases them
    // then; otherwise its per-minute sweep would, up to a minute later).
    await until(
      "the dead worker's locks to grow stale",
      async () => (await select(db, "SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE locked_by IS NOT NULL AND locked_at > now() - interval '5.5 seconds'"))[0].n === 0,
      15_000,
      100,
    );
    const b = await startChild(db);
    await until("the run to complete", async () => (await ok(b, "GET", `/v1/billing-runs/${runId}`)).status !== "running", 60_000, 100);
    await expectOneDocumentEach(db, b, runId, contracts, r, secret);
    expect(await openJobs(db, "bill_contracts")).toEqual([]);
    await kill(db, b);
  }, 120_000); // two real server processes started, one killed, a 5 s wait for its locks: 20–30 s on a loaded machine
});

describe("two processes working one run", () => {
  it("share its jobs and finish with one document each; the run completes once", async () => {
    const db = await freshDatabase();
    const r = await receiver();
    // One job at a time in each: the run's 60 contracts are 3 chunk jobs, which one worker of 4 slots could take alone.
    const single = { ...CONFIG, WORKER_CONCURRENCY: "1" };
    const [a, b] = await Promise.all([startChild(db, single), startChild(db, single)]);
    const secret = await endpoint(b, r);
    const contracts = await book(a, "pair");

    const started = await call(a, "POST", "/v1/billing-runs", { autoIssue: true }, APPROVER);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const runId = started.body.id as string;
    // A second start while it runs, on the other process: 409.
    const second = await call(b, "POST", "/v1/billing-runs", { autoIssue: true }, APPROVER);
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ code: "conflict" });

    // Which workers hold the run's jobs while it runs: both processes' (each worker names itself in locked_by).
    const lockers = new Set<string>();
    await until("the run to complete", async () => {
      for (const j of await openJobs(db, "bill_contracts")) if (j.locked_by) lockers.add(j.locked_by);
      return (await ok(b, "GET", `/v1/billing-runs/${runId}`)).status !== "running";
    }, 60_000, 10);
    expect(lockers.size, `workers seen holding jobs: ${[...lockers].join(", ")}`).toBeGreaterThanOrEqual(2);
    await expectOneDocumentEach(db, a, runId, contracts, r, secret);
    await kill(db, a, 1);
    await kill(db, b);
  }, 120_000);
});
