// Billing runs (DESIGN.md §10) through HTTP on a real PostgreSQL, the worker running inline: a run over 30
// contracts with 3 blocked, reruns, late usage and its delta, one run at a time, roles, the webhook.
import { describe, expect, it } from "vitest";
import { billContract } from "../../src/services/billing-runs/bill-contract.js";
import { billContracts } from "../../src/services/billing-runs/bill-contracts.js";
import { expectProblem, testClock, useTestApp } from "../helpers/app.js";
import { contractBody, events, meter, uniqueId } from "../helpers/factories.js";
import { eventually } from "../helpers/jobs.js";
import { startReceiver } from "../helpers/receiver.js";

const t = useTestApp();

// October 2026 is the one period that has ended by the test clock (2026-11-15).
const OCTOBER = "2026-10-01T00:00:00.000Z";
const body = (over: Record<string, unknown> = {}) => contractBody({ startDate: "2026-10-01", endDate: "2027-09-30", ...over });

const start = (payload: unknown, role: "approver" | "writer" | "reader" | "admin" = "approver") => t.post("/v1/billing-runs", payload, role);
async function finished(runId: string) {
  return eventually(async () => (await t.get(`/v1/billing-runs/${runId}`, "reader")).json(), (r) => r.status !== "running", 60_000);
}
async function itemsOf(runId: string) {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const page: any = (await t.get(`/v1/billing-runs/${runId}/items?limit=7${cursor ? `&cursor=${cursor}` : ""}`, "reader")).json();
    out.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

describe("a run over 30 contracts, 3 of them blocked", () => {
  const ids: string[] = [];
  const blocked: string[] = [];
  let firstRun: any;

  it("issues 27 documents and leaves 3 blocked items, with their exceptions", async () => {
    for (let i = 0; i < 30; i++) {
      const block = i % 10 === 0;
      const c = await t.createContract(body({ terms: { meters: [meter("api_calls", "0.5", "100")], ...(block ? { materialityThreshold: "10.00" } : {}) } }));
      ids.push(c.id);
      if (block) blocked.push(c.id);
      await t.ingest(events(c.customerId, "api_calls", String(200 + i), "2026-10-15T00:00:00Z"));
    }
    const res = await start({ autoIssue: true, contractIds: ids });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ status: "running", autoIssue: true, progress: { total: 30 } });
    firstRun = await finished(res.json().id);
    expect(firstRun).toMatchObject({ status: "completed", progress: { total: 30, done: 30 }, counts: { issued: 27, blocked: 3, previewed: 0, nothing_to_issue: 0, failed: 0 } });
    const items = await itemsOf(firstRun.id);
    expect(items).toHaveLength(30);
    expect(new Set(items.map((i) => `${i.contractId}|${i.periodStart}`)).size).toBe(30); // pages neither repeat nor skip
    for (const item of items) {
      expect(item.periodStart).toBe(OCTOBER);
      if (blocked.includes(item.contractId)) {
        expect(item).toMatchObject({ status: "blocked", documentId: null, blockingExceptionIds: [expect.any(String)] });
        const e = (await t.get(`/v1/exceptions/${item.blockingExceptionIds[0]}`, "reader")).json();
        expect(e).toMatchObject({ kind: "materiality", contractId: item.contractId, status: "open" });
      } else {
        expect(item).toMatchObject({ status: "issued", documentId: expect.any(String), blockingExceptionIds: [], error: null });
        const doc = (await t.get(`/v1/documents/${item.documentId}`, "reader")).json();
        // (200 + i) calls, 100 included, at 0.50.
        const i = ids.indexOf(item.contractId);
        expect(doc).toMatchObject({ contractId: item.contractId, kind: "invoice", amount: ((100 + i) * 0.5).toFixed(2), calculationId: item.calculationId });
      }
    }
  });

  it("a rerun issues nothing again: only the blocked periods are due, and still blocked", async () => {
    const res = await start({ autoIssue: true, contractIds: ids });
    const run = await finished(res.json().id);
    expect(run.counts).toEqual({ issued: 0, previewed: 0, blocked: 3, nothing_to_issue: 0, failed: 0 });
    expect((await itemsOf(run.id)).map((i) => i.contractId).sort()).toEqual([...blocked].sort());
    const docs = (await t.get("/v1/documents?limit=500", "reader")).json().data.filter((d: any) => ids.includes(d.contractId));
    expect(docs).toHaveLength(27);
  });

  it("once approved, the next run issues the blocked ones", async () => {
    const items = await itemsOf(firstRun.id);
    for (const item of items.filter((i) => i.status === "blocked"))
      expect((await t.post(`/v1/exceptions/${item.blockingExceptionIds[0]}/resolve`, { decision: "approve", note: "expected" }, "approver")).statusCode).toBe(200);
    const run = await finished((await start({ autoIssue: true, contractIds: ids })).json().id);
    expect(run.counts).toMatchObject({ issued: 3, blocked: 0 });
  });

  it("a late event: the next run raises late_usage (blocking); after approval the run after issues that contract's delta only", async () => {
    const contract = (await t.get(`/v1/contracts/${ids[5]}`, "reader")).json();
    await t.ingest(events(contract.customerId, "api_calls", "40", "2026-10-20T00:00:00Z"));
    const late = await finished((await start({ autoIssue: true, contractIds: ids })).json().id);
    expect(late.counts).toEqual({ issued: 0, previewed: 0, blocked: 1, nothing_to_issue: 0, failed: 0 });
    const [item] = await itemsOf(late.id);
    expect(item.contractId).toBe(ids[5]);
    const exception = (await t.get(`/v1/exceptions/${item.blockingExceptionIds[0]}`, "reader")).json();
    expect(exception.kind).toBe("late_usage");
    await t.post(`/v1/exceptions/${exception.id}/resolve`, { decision: "approve", note: "late file from the meter" }, "approver");
    const delta = await finished((await start({ autoIssue: true, contractIds: ids })).json().id);
    expect(delta.counts).toMatchObject({ issued: 1, blocked: 0 });
    const [issued] = await itemsOf(delta.id);
    const doc = (await t.get(`/v1/documents/${issued.documentId}`, "reader")).json();
    expect(doc).toMatchObject({ contractId: ids[5], kind: "invoice", amount: "20.00" }); // 40 late calls × 0.50
    // And then nothing is due.
    const quiet = await finished((await start({ autoIssue: true, contractIds: ids })).json().id);
    expect(quiet.progress.total).toBe(0);
  });
});

describe("what a run takes, and who may start one", () => {
  it("a period with nothing to issue is recorded once and skipped by later runs until usage arrives", async () => {
    const c = await t.createContract(body({ terms: { meters: [meter("api_calls", "1")] } }));
    const first = await finished((await start({ autoIssue: true, contractIds: [c.id] })).json().id);
    expect(first.counts.nothing_to_issue).toBe(1);
    expect((await finished((await start({ autoIssue: true, contractIds: [c.id] })).json().id)).progress.total).toBe(0);
    await t.ingest(events(c.customerId, "api_calls", "3", "2026-10-03T00:00:00Z"));
    expect((await finished((await start({ autoIssue: true, contractIds: [c.id] })).json().id)).counts.issued).toBe(1);
  });

  it("without autoIssue a writer previews only; items carry their calculation", async () => {
    const c = await t.createContract(body());
    await t.ingest(events(c.customerId, "api_calls", "7", "2026-10-03T00:00:00Z"));
    const res = await start({ contractIds: [c.id] }, "writer");
    expect(res.statusCode, res.body).toBe(202);
    const run = await finished(res.json().id);
    expect(run.counts).toMatchObject({ previewed: 1, issued: 0 });
    const [item] = await itemsOf(run.id);
    const calc = (await t.get(`/v1/calculations/${item.calculationId}`, "reader")).json();
    expect(calc).toMatchObject({ contractId: c.id, delta: "7.00", action: "invoice" });
  });

  it("several periods of one contract are billed oldest first", async () => {
    const c = await t.createContract(body({ startDate: "2026-08-01", terms: { meters: [meter("api_calls", "1")] } }));
    for (const m of ["08", "09", "10"]) await t.ingest(events(c.customerId, "api_calls", "5", `2026-${m}-10T00:00:00Z`));
    const run = await finished((await start({ autoIssue: true, contractIds: [c.id] })).json().id);
    const items = await itemsOf(run.id);
    expect(items.map((i) => [i.periodStart.slice(0, 7), i.status])).toEqual([
      ["2026-08", "issued"],
      ["2026-09", "issued"],
      ["2026-10", "issued"],
    ]);
    const docs = await Promise.all(items.map(async (i) => (await t.get(`/v1/documents/${i.documentId}`, "reader")).json()));
    expect(docs.map((d) => d.number)).toEqual([...docs.map((d) => d.number)].sort());
  });

  it("one run at a time: of two concurrent starts one is 202, the other 409", async () => {
    const cs = [];
    for (let i = 0; i < 5; i++) cs.push((await t.createContract(body({ customerId: uniqueId("conc") }))).id);
    const [a, b] = await Promise.all([start({ contractIds: cs }, "writer"), start({ contractIds: cs }, "writer")]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([202, 409]);
    expectProblem(a.statusCode === 409 ? a : b, 409, "conflict");
    await finished((a.statusCode === 202 ? a : b).json().id);
  });

  it("a chunk's job running three times at once (a live lock taken for a dead one's), and its contracts billed one by one meanwhile, still give one document each, named by its item", async () => {
    const cs: string[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await t.createContract(body());
      cs.push(c.id);
      await t.ingest(events(c.customerId, "api_calls", String(10 + i), "2026-10-04T00:00:00Z"));
    }
    const run = (await start({ autoIssue: true, contractIds: cs })).json();
    // The worker runs the chunk's job; here, at the same time, two more copies of it and each contract billed one by one.
    await Promise.all([
      billContracts(t.db, run.id, cs, testClock.now()),
      billContracts(t.db, run.id, [...cs].reverse(), testClock.now()),
      ...cs.map((id) => billContract(t.db, run.id, id, testClock.now())),
    ]);
    const done = await finished(run.id);
    expect(done.counts).toMatchObject({ issued: 8, failed: 0 });
    for (const item of await itemsOf(run.id)) {
      const doc = (await t.get(`/v1/documents/${item.documentId}`, "reader")).json();
      expect(doc.calculationId).toBe(item.calculationId);
    }
    const [row] = await t.db.sql.query<{ n: number; contracts: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT contract_id)::int AS contracts FROM documents WHERE contract_id = ANY($1::uuid[])`,
      [cs],
    );
    expect(row).toEqual({ n: 8, contracts: 8 });
  });

  it("a contract that cannot be billed fails its own item; the others of its chunk are issued", async () => {
    const cs: string[] = [];
    for (let i = 0; i < 4; i++) {
      const huge = i === 2;
      const c = await t.createContract(body(huge ? { terms: { meters: [meter("api_calls", "99999999999999.999999999999")] } } : {}));
      cs.push(c.id);
      const quantity = huge ? "99999999999999999999999999999.999999999" : "10";
      await t.ingest([{ eventId: uniqueId("e"), customerId: c.customerId, metric: "api_calls", quantity, timestamp: "2026-10-04T00:00:00Z" }]);
    }
    const done = await finished((await start({ autoIssue: true, contractIds: cs })).json().id);
    expect(done.counts).toMatchObject({ issued: 3, failed: 1 });
    const failed = (await itemsOf(done.id)).filter((i) => i.status === "failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ contractId: cs[2], documentId: null });
    expect(failed[0].error).toMatch(/^conflict: .*largest amount/);
  });

  it("roles, bad input and unknown ids", async () => {
    expectProblem(await start({}, "reader"), 403, "forbidden");
    expectProblem(await start({ autoIssue: true }, "writer"), 403, "forbidden");
    const future = expectProblem(await start({ periodEnd: "2027-01-01T00:00:00Z" }), 400, "validation_failed");
    expect(future.errors[0].path).toBe("body.periodEnd");
    expectProblem(await start({ periodEnd: "yesterday" }), 400, "validation_failed");
    const unknown = expectProblem(await start({ contractIds: ["0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b"] }), 400, "validation_failed");
    expect(unknown.errors[0].path).toBe("body.contractIds.0");
    expectProblem(await t.get("/v1/billing-runs/0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b", "reader"), 404, "not_found");
    expectProblem(await t.get("/v1/billing-runs/0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b/items", "reader"), 404, "not_found");
    expectProblem(await t.get("/v1/billing-runs?cursor=nope", "reader"), 400, "validation_failed");
  });

  it("billing_run.completed is sent with the run", async () => {
    const rx = await startReceiver();
    const ep = (await t.post("/v1/webhook-endpoints", { url: rx.url, eventTypes: ["billing_run.completed"] })).json();
    const c = await t.createContract(body());
    await t.ingest(events(c.customerId, "api_calls", "2", "2026-10-03T00:00:00Z"));
    const run = await finished((await start({ autoIssue: true, contractIds: [c.id] })).json().id);
    const [r] = await rx.waitFor(1);
    expect(rx.verify(ep.secret, r!)).toEqual({ type: "billing_run.completed", timestamp: expect.any(String), data: run });
    await rx.close();
  });
});
