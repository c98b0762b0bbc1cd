// Usage ingestion, voids and the usage summary, end to end through the HTTP stack on a real PostgreSQL.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/domain/money.js";
import { verifyAudit } from "../../src/services/audit/verify.js";
import { lateActivity, sumUsage } from "../../src/db/queries/usage.js";
import { TEST_NOW, auth, startTestApp, useTestApp } from "../helpers/app.js";
import { contractBody, uniqueId } from "../helpers/factories.js";

const t = useTestApp();

const { post } = t.as("writer");
const { get } = t.as("reader");

interface Ev {
  eventId: string;
  customerId: string;
  metric: string;
  quantity: string;
  timestamp: string;
  properties?: Record<string, unknown> | null;
}
const ev = (customerId: string, i: number, over: Partial<Ev> = {}): Ev => ({
  eventId: `e-${i}`,
  customerId,
  metric: "api_calls",
  quantity: "1",
  timestamp: "2026-03-10T12:00:00Z",
  ...over,
});

async function ingestOk(events: unknown[]) {
  const res = await t.sendUsage(events);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { accepted: number; duplicates: number; conflicts: { eventId: string; customerId: string; reason: string }[] };
}

/** A monthly 2026 contract metering api_calls (1,000 included) and storage_gb. */
async function usageContract(over: Record<string, unknown> = {}): Promise<{ id: string; customerId: string; accountIds: string[] }> {
  return t.createContract(contractBody({
    customerId: uniqueId("cust"),
    name: "Usage contract",
    terms: {
      meters: [
        { metric: "api_calls", unit: "call", included: "1000", pricing: { model: "per_unit", unitPrice: "0.08" } },
        { metric: "storage_gb", pricing: { model: "per_unit", unitPrice: "1" } },
      ],
    },
    ...over,
  }));
}

/** A document issued for a period (issue 5 writes these; here straight into the tables). */
async function issueDocument(contractId: string, period: { start: string; end: string }, issuedAt?: string) {
  const calc = randomUUID();
  const doc = randomUUID();
  const seqNo = 100_000 + Math.floor(Math.random() * 800_000);
  await t.db.pool.query(
    `INSERT INTO calculations (id, contract_id, period_start, period_end, engine_version, inputs_hash, inputs, result, total,
                               already_billed, delta, action, currency, created_by)
     VALUES ($1, $2, $3, $4, 'test', 'h', '{}', '{}', 0, 0, 0, 'invoice', 'USD', 'test')`,
    [calc, contractId, period.start, period.end],
  );
  await t.db.pool.query(
    `INSERT INTO documents (id, number, kind, kind_seq, contract_id, period_start, period_end, currency, subtotal, already_billed,
                            amount, credits_applied, calculation_id, inputs_hash, issued_at, issued_by)
     VALUES ($1, $2, 'invoice', $3, $4, $5, $6, 'USD', 0, 0, 0, '[]', $7, 'h', COALESCE($8::timestamptz, now()), 'test')`,
    [doc, `INV-T${seqNo}`, seqNo, contractId, period.start, period.end, calc, issuedAt ?? null],
  );
  return doc;
}

async function storedEvents(customerId: string) {
  const r = await t.db.pool.query<{
    event_id: string;
    metric: string;
    quantity: string;
    occurred_at: Date;
    properties: unknown;
    late: boolean;
    voided_at: Date | null;
    void_reason: string | null;
    voided_by: string | null;
    received_at: Date;
  }>("SELECT * FROM usage_events WHERE customer_id = $1 ORDER BY event_id", [customerId]);
  return r.rows;
}

async function rollups(customerId: string) {
  const r = await t.db.pool.query<{ metric: string; hour: Date; quantity: string; events: string }>(
    "SELECT metric, hour, quantity::text, events::text FROM usage_rollups WHERE customer_id = $1 ORDER BY metric, hour",
    [customerId],
  );
  return r.rows;
}

async function exceptionsOf(where: { customerId?: string; contractId?: string; kind: string }) {
  const r = await t.db.pool.query<any>(
    `SELECT kind, blocking, status, contract_id::text AS contract_id, customer_id, period_start, period_end, subject, details
     FROM exceptions WHERE kind = $1 AND ($2::text IS NULL OR customer_id = $2) AND ($3::uuid IS NULL OR contract_id = $3::uuid)
     ORDER BY period_start, subject`,
    [where.kind, where.customerId ?? null, where.contractId ?? null],
  );
  return r.rows;
}

async function auditCount(action: string) {
  const r = await t.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log WHERE action = $1", [action]);
  return r.rows[0]!.n;
}

const paths = (res: { json(): any }): string[] => res.json().errors.map((e: { path: string }) => e.path);

describe("POST /v1/usage", () => {
  it("stores a batch and answers integer counts; one audit entry with counts and a digest", async () => {
    const c = uniqueId("c");
    const before = await auditCount("usage.ingested");
    const out = await ingestOk([
      ev(c, 1, { quantity: "0010.500", properties: { region: "eu", tags: ["a"] } }),
      ev(c, 2, { metric: "storage_gb", quantity: "0.000000001", timestamp: "2026-03-10T14:30:00.123456+02:00" }),
      ev(c, 3, { quantity: "99999999999999999999999999999.999999999" }),
    ]);
    expect(out).toEqual({ accepted: 3, duplicates: 0, conflicts: [] });
    const rows = await storedEvents(c);
    expect(rows.map((r) => [r.event_id, r.metric, r.quantity])).toEqual([
      ["e-1", "api_calls", "10.500000000"],
      ["e-2", "storage_gb", "0.000000001"],
      ["e-3", "api_calls", "99999999999999999999999999999.999999999"],
    ]);
    expect(rows[1]!.occurred_at.toISOString()).toBe("2026-03-10T12:30:00.123Z");
    expect(rows[0]!.properties).toEqual({ region: "eu", tags: ["a"] });
    expect(rows.every((r) => !r.late && r.voided_at === null)).toBe(true);
    const micro = await t.db.pool.query("SELECT extract(microseconds FROM occurred_at)::text AS us FROM usage_events WHERE customer_id = $1 AND event_id = 'e-2'", [c]);
    expect(micro.rows[0].us).toBe("123456");

    expect(await rollups(c)).toEqual([
      { metric: "api_calls", hour: new Date("2026-03-10T12:00:00Z"), quantity: "100000000000000000000000000010.499999999", events: "2" },
      { metric: "storage_gb", hour: new Date("2026-03-10T12:00:00Z"), quantity: "0.000000001", events: "1" },
    ]);

    expect(await auditCount("usage.ingested")).toBe(before + 1);
    const a = await t.db.pool.query<any>("SELECT actor, entity_type, entity_id, payload FROM audit_log WHERE action = 'usage.ingested' ORDER BY seq DESC LIMIT 1");
    expect(a.rows[0]).toMatchObject({ actor: "writer-key", entity_type: "usage_batch" });
    expect(a.rows[0].payload).toMatchObject({ events: 3, accepted: 3, duplicates: 0, conflicts: 0, unmapped: 3 });
    expect(a.rows[0].payload.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(a.rows[0].entity_id).toBe(a.rows[0].payload.digest);
    // Counts and a digest, not the events: no event id appears as a JSON string (ids and digests may contain "e-1").
    expect(JSON.stringify(a.rows[0].payload)).not.toContain('"e-1"');
    expect(await verifyAudit(t.db.sql)).toMatchObject({ ok: true });
  });

  it("stores ids and properties with quotes, backslashes, braces and non-ASCII exactly, and recognises them on resend", async () => {
    const c = `${uniqueId("q")}"\\{x}`;
    const odd = [
      ev(c, 0, { eventId: 'say "hi" \\ {a,b} NULL é 🚀', properties: { 'k"ey': 'v\\"al{ue}', nested: { a: [1, "NULL", null] }, emoji: "🚀" } }),
      ev(c, 1, { eventId: "NULL" }),
      ev(c, 2, { eventId: "" + "x".repeat(200) }),
    ];
    expect(await ingestOk(odd)).toEqual({ accepted: 3, duplicates: 0, conflicts: [] });
    const rows = await storedEvents(c);
    expect(rows.map((r) => r.event_id).sort()).toEqual(odd.map((e) => e.eventId).sort());
    expect(rows.find((r) => r.event_id === odd[0]!.eventId)!.properties).toEqual(odd[0]!.properties);
    expect(await ingestOk(odd)).toEqual({ accepted: 0, duplicates: 3, conflicts: [] });
  });

  it("rejects the whole batch, naming every bad index and why, and stores nothing", async () => {
    const c = uniqueId("bad");
    const before = await auditCount("usage.ingested");
    const old = new Date(Date.parse(TEST_NOW) - 401 * 86_400_000).toISOString();
    const future = new Date(Date.parse(TEST_NOW) + 2 * 86_400_000).toISOString();
    const events: unknown[] = [
      ev(c, 0),
      ev(c, 1, { quantity: 5 as unknown as string }),
      ev(c, 2, { quantity: "-1" }),
      ev(c, 3, { quantity: "1.0000000001" }),
      ev(c, 4, { timestamp: "2026-03-10 12:00:00" }),
      ev(c, 5, { timestamp: old }),
      ev(c, 6, { timestamp: future }),
      ev(c, 7, { metric: "x".repeat(101) }),
      ev(c, 8, { properties: { blob: "x".repeat(5000) } }),
      { customerId: c, metric: "api_calls", quantity: "1", timestamp: "2026-03-10T12:00:00Z" },
      ev(c, 10, { eventId: "x".repeat(201) }),
      ev(c, 11, { quantity: "1e3" }),
      ev(c, 12, { timestamp: "2026-02-30T00:00:00Z" }),
      ev(c, 13, { timestamp: "2026-03-10T12:00:00.1234567Z" }),
      ev(c, 14, { customerId: "has space" }),
      ev(c, 15, { properties: { k: "nul\u0000" } }),
      { ...ev(c, 16), extra: true },
      ev(c, 17, { quantity: "100000000000000000000000000000" }),
    ];
    const res = await t.sendUsage(events);
    expect(res.statusCode).toBe(400);
    expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: "validation_failed", type: "/problems/validation_failed", status: 400 });
    const p = paths(res);
    for (const expected of [
      "body.events.1.quantity",
      "body.events.2.quantity",
      "body.events.3.quantity",
      "body.events.4.timestamp",
      "body.events.5.timestamp",
      "body.events.6.timestamp",
      "body.events.7.metric",
      "body.events.8.properties",
      "body.events.9.eventId",
      "body.events.10.eventId",
      "body.events.11.quantity",
      "body.events.12.timestamp",
      "body.events.13.timestamp",
      "body.events.14.customerId",
      "body.events.15.properties",
      "body.events.17.quantity",
    ])
      expect(p).toContain(expected);
    expect(p.some((x) => x.startsWith("body.events.16"))).toBe(true);
    expect(p.some((x) => x.startsWith("body.events.0"))).toBe(false);
    const errors = res.json().errors as { path: string; message: string }[];
    expect(errors.find((e) => e.path === "body.events.5.timestamp")!.message).toMatch(/400 days in the past/);
    expect(errors.find((e) => e.path === "body.events.6.timestamp")!.message).toMatch(/in the future/);
    expect(await storedEvents(c)).toEqual([]);
    expect(await auditCount("usage.ingested")).toBe(before);
  });

  it("honours a configured time window", async () => {
    const narrow = await startTestApp({ USAGE_MAX_AGE_DAYS: "2", USAGE_MAX_FUTURE_DAYS: "0" });
    try {
      const c = uniqueId("win");
      const res = await narrow.sendUsage([
        ev(c, 1, { timestamp: new Date(Date.parse(TEST_NOW) - 3 * 86_400_000).toISOString() }),
        ev(c, 2, { timestamp: new Date(Date.parse(TEST_NOW) + 3_600_000).toISOString() }),
      ]);
      expect(res.statusCode).toBe(400);
      expect(res.json().errors).toEqual([
        { path: "body.events.0.timestamp", message: expect.stringMatching(/more than 2 days in the past/) },
        { path: "body.events.1.timestamp", message: expect.stringMatching(/more than 0 day\(s\) in the future/) },
      ]);
    } finally {
      await narrow.close();
    }
  });

  it("rejects an empty batch, more than 10,000 events, a body that is not an object, and a body over the limit", async () => {
    expect(paths(await t.sendUsage([]))).toEqual(["body.events"]);
    const c = uniqueId("big");
    const tooMany = Array.from({ length: 10_001 }, (_, i) => ev(c, i));
    const res = await t.sendUsage(tooMany);
    expect(res.statusCode).toBe(400);
    expect(paths(res)).toContain("body.events");
    const notObject = await t.app.inject({ method: "POST", url: "/v1/usage", headers: { ...auth("writer"), "content-type": "application/json" }, payload: "[1,2]" });
    expect(notObject.statusCode).toBe(400);
    const huge = await t.app.inject({
      method: "POST",
      url: "/v1/usage",
      headers: { ...auth("writer"), "content-type": "application/json" },
      payload: JSON.stringify({ events: [ev(c, 1, { properties: { x: "y".repeat(17 * 1024 * 1024) } })] }),
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().code).toBe("payload_too_large");
    expect(await storedEvents(c)).toEqual([]);
  });

  it("needs a writer key", async () => {
    const c = uniqueId("auth");
    expect((await t.app.inject({ method: "POST", url: "/v1/usage", payload: { events: [ev(c, 1)] } })).statusCode).toBe(401);
    expect((await t.sendUsage([ev(c, 1)], "reader")).statusCode).toBe(403);
    expect((await post("/v1/usage/void", { customerId: c, eventIds: ["e-1"], reason: "x" }, "reader")).statusCode).toBe(403);
    expect((await t.sendUsage([ev(c, 1)], "admin")).statusCode).toBe(200);
  });

  it("counts a repeat with the same body as a duplicate, and one with another body as a conflict (stored event kept)", async () => {
    const c = uniqueId("dup");
    await ingestOk([ev(c, 1, { quantity: "5", properties: { a: 1, b: "x" } }), ev(c, 2, { quantity: "7" })]);
    // Same body in other spellings: normalised decimal, same instant in another offset, properties in another key order.
    const again = await ingestOk([
      ev(c, 1, { quantity: "5.000", timestamp: "2026-03-10T14:00:00.000+02:00", properties: { b: "x", a: 1 } }),
      ev(c, 2, { quantity: "8" }),
      ev(c, 3, { quantity: "1" }),
      ev(c, 3, { quantity: "1" }),
      ev(c, 3, { quantity: "2" }),
    ]);
    expect(again.accepted).toBe(1);
    expect(again.duplicates).toBe(2);
    expect(again.conflicts).toEqual([
      { eventId: "e-3", customerId: c, reason: expect.stringMatching(/repeats event 2 of this batch with a different body \(quantity\)/) },
      { eventId: "e-2", customerId: c, reason: expect.stringMatching(/already stored with a different quantity/) },
    ]);
    const rows = await storedEvents(c);
    expect(rows.map((r) => [r.event_id, r.quantity])).toEqual([
      ["e-1", "5.000000000"],
      ["e-2", "7.000000000"],
      ["e-3", "1.000000000"],
    ]);
    expect(await rollups(c)).toEqual([{ metric: "api_calls", hour: new Date("2026-03-10T12:00:00Z"), quantity: "13.000000000", events: "3" }]);
    const conflict = await ingestOk([ev(c, 1, { quantity: "5", metric: "storage_gb", timestamp: "2026-03-10T12:00:01Z", properties: null })]);
    expect(conflict.conflicts[0]!.reason).toMatch(/metric, timestamp, properties/);
  });

  it("maps events by customer and account id within the term; unmapped usage raises one exception per customer and month", async () => {
    const contract = await usageContract({ accountIds: [uniqueId("acct")], startDate: "2026-02-01", endDate: "2026-06-30" });
    const acct = contract.accountIds[0]!;
    const stranger = uniqueId("stranger");
    const out = await ingestOk([
      ev(contract.customerId, 1),
      ev(acct, 2),
      ev(contract.customerId, 3, { timestamp: "2026-01-31T23:59:59Z" }), // before the term: maps to nothing
      ...Array.from({ length: 5 }, (_, i) => ev(stranger, 10 + i, { timestamp: "2026-03-0" + (i + 1) + "T00:00:00Z" })),
      ev(stranger, 20, { timestamp: "2026-04-01T00:00:00Z", metric: "storage_gb" }),
    ]);
    expect(out.accepted).toBe(9);
    const strangerEx = await exceptionsOf({ kind: "unmapped_usage", customerId: stranger });
    expect(strangerEx).toHaveLength(2);
    expect(strangerEx[0]).toMatchObject({ blocking: false, status: "open", contract_id: null, customer_id: stranger, subject: "" });
    expect(strangerEx[0].period_start.toISOString()).toBe("2026-03-01T00:00:00.000Z");
    expect(strangerEx[0].period_end.toISOString()).toBe("2026-04-01T00:00:00.000Z");
    expect(strangerEx[0].details).toMatchObject({ events: 5, metrics: ["api_calls"] });
    expect(strangerEx[1].details).toMatchObject({ events: 1, metrics: ["storage_gb"] });
    const own = await exceptionsOf({ kind: "unmapped_usage", customerId: contract.customerId });
    expect(own).toHaveLength(1);
    expect(own[0].period_start.toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(await exceptionsOf({ kind: "unmapped_usage", customerId: acct })).toHaveLength(0);

    // A later batch adds to the same exception; duplicates add nothing.
    await ingestOk([ev(stranger, 10, { timestamp: "2026-03-01T00:00:00Z" }), ev(stranger, 30, { timestamp: "2026-03-20T00:00:00Z", metric: "storage_gb" })]);
    const after = await exceptionsOf({ kind: "unmapped_usage", customerId: stranger });
    expect(after).toHaveLength(2);
    expect(after[0].details).toMatchObject({ events: 6, metrics: ["api_calls", "storage_gb"] });
  });

  it("marks events of an issued period late and raises one blocking late_usage per contract and period", async () => {
    const contract = await usageContract();
    const c = contract.customerId;
    await ingestOk([ev(c, 1, { timestamp: "2026-03-05T00:00:00Z" })]);
    const march = { start: "2026-03-01T00:00:00.000Z", end: "2026-04-01T00:00:00.000Z" };
    const older = await issueDocument(contract.id, march, "2026-04-02T00:00:00Z");
    const latest = await issueDocument(contract.id, march);
    expect(await exceptionsOf({ kind: "late_usage", contractId: contract.id })).toHaveLength(0);

    const out = await ingestOk([
      ev(c, 2, { timestamp: "2026-03-05T00:00:00Z" }),
      ev(c, 3, { timestamp: "2026-03-31T23:59:59.999999Z", metric: "storage_gb" }),
      ev(c, 4, { timestamp: "2026-04-01T00:00:00Z" }), // next period: not issued
      ev(c, 1, { timestamp: "2026-03-05T00:00:00Z" }), // duplicate: not late again
    ]);
    expect(out).toMatchObject({ accepted: 3, duplicates: 1 });
    const rows = await storedEvents(c);
    expect(rows.map((r) => [r.event_id, r.late])).toEqual([
      ["e-1", false],
      ["e-2", true],
      ["e-3", true],
      ["e-4", false],
    ]);
    const late = await exceptionsOf({ kind: "late_usage", contractId: contract.id });
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ blocking: true, status: "open", subject: latest });
    expect(late[0].subject).not.toBe(older);
    expect(late[0].period_start.toISOString()).toBe(march.start);
    expect(late[0].period_end.toISOString()).toBe(march.end);
    expect(late[0].details).toMatchObject({ events: 2, arrived: 2, voided: 0, documentId: latest });

    // The colleague's preview check sees the same activity.
    const since = (await t.db.pool.query("SELECT issued_at FROM documents WHERE id = $1", [latest])).rows[0].issued_at.toISOString();
    expect(await lateActivity(t.db.sql, [c], march, since)).toEqual({ arrived: 2, voided: 0 });

    // A void in the issued period is late activity too.
    const v = await post("/v1/usage/void", { customerId: c, eventIds: ["e-1"], reason: "double counted" });
    expect(v.json()).toEqual({ voided: 1, alreadyVoided: 0, notFound: [] });
    const late2 = await exceptionsOf({ kind: "late_usage", contractId: contract.id });
    expect(late2).toHaveLength(1);
    expect(late2[0].details).toMatchObject({ events: 3, arrived: 2, voided: 1 });
    expect(await lateActivity(t.db.sql, [c], march, since)).toEqual({ arrived: 2, voided: 1 });
  });
});

describe("POST /v1/usage/void", () => {
  it("voids without deleting, stops the events counting (rollups too), and is idempotent", async () => {
    const c = uniqueId("void");
    await ingestOk([
      ev(c, 1, { quantity: "2.5" }),
      ev(c, 2, { quantity: "3" }),
      ev(c, 3, { quantity: "4", timestamp: "2026-03-10T13:15:00Z" }),
    ]);
    const before = await auditCount("usage.voided");
    const res = await post("/v1/usage/void", { customerId: c, eventIds: ["e-1", "e-3", "nope", "e-3"], reason: "test traffic" });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ voided: 2, alreadyVoided: 0, notFound: ["nope"] });
    const again = await post("/v1/usage/void", { customerId: c, eventIds: ["e-1", "e-2"], reason: "again" });
    expect(again.json()).toEqual({ voided: 1, alreadyVoided: 1, notFound: [] });
    expect(await auditCount("usage.voided")).toBe(before + 2);

    const rows = await storedEvents(c);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({ event_id: "e-1", void_reason: "test traffic", voided_by: "writer-key" });
    expect(rows[0]!.voided_at).toBeInstanceOf(Date);
    expect(await rollups(c)).toEqual([
      { metric: "api_calls", hour: new Date("2026-03-10T12:00:00Z"), quantity: "0.000000000", events: "0" },
      { metric: "api_calls", hour: new Date("2026-03-10T13:00:00Z"), quantity: "0.000000000", events: "0" },
    ]);
    expect(await sumUsage(t.db.sql, [c], [{ from: "2026-03-01T00:00:00Z", to: "2026-04-01T00:00:00Z" }])).toEqual([]);
    // A voided id re-sent with its original body is still a duplicate: the void stands.
    expect(await ingestOk([ev(c, 1, { quantity: "2.5" })])).toMatchObject({ accepted: 0, duplicates: 1 });
  });

  it("validates its body", async () => {
    const res = await post("/v1/usage/void", { customerId: "", eventIds: [], reason: "" });
    expect(res.statusCode).toBe(400);
    expect([...new Set(paths(res))].sort()).toEqual(["body.customerId", "body.eventIds", "body.reason"]);
  });
});

describe("sumUsage over ingested and voided events", () => {
  it("matches a direct sum over usage_events for windows with whole and partial hours", async () => {
    const customers = [uniqueId("sa"), uniqueId("sb")];
    const metrics = ["api_calls", "storage_gb", "seats"];
    const events: Ev[] = [];
    let n = 0;
    const base = Date.parse("2026-05-01T00:00:00Z");
    for (let i = 0; i < 3000; i++) {
      const ms = base + Math.floor(Math.random() * 10 * 86_400_000);
      const us = Math.floor(Math.random() * 1000).toString().padStart(3, "0");
      events.push(ev(customers[i % 2]!, n++, {
        metric: metrics[i % 3]!,
        quantity: `${Math.floor(Math.random() * 1000)}.${Math.floor(Math.random() * 1e9).toString().padStart(9, "0")}`,
        timestamp: new Date(ms).toISOString().replace("Z", `${us}Z`),
      }));
    }
    await ingestOk(events);
    const toVoid = events.filter((_, i) => i % 7 === 0 && i % 2 === 0).map((e) => e.eventId);
    expect((await post("/v1/usage/void", { customerId: customers[0], eventIds: toVoid, reason: "r" })).json().voided).toBe(toVoid.length);

    const windows = [
      { from: "2026-05-01T00:00:00Z", to: "2026-05-11T00:00:00Z" },
      { from: "2026-05-02T03:17:12.345678Z", to: "2026-05-07T21:01:00Z" },
      { from: "2026-05-03T10:10:00Z", to: "2026-05-03T10:50:00Z" },
      { from: "2026-05-03T10:10:00Z", to: "2026-05-03T11:50:00Z" },
      { from: "2026-05-03T10:00:00+05:30", to: "2026-05-04T00:00:00-04:00" },
      { from: "2026-06-01T00:00:00Z", to: "2026-07-01T00:00:00Z" },
      { from: "2026-05-05T00:00:00Z", to: "2026-05-05T00:00:00Z" },
    ];
    const got = await sumUsage(t.db.sql, customers, windows);
    const expected: typeof got = [];
    for (const w of windows)
      for (const m of [...metrics].sort()) {
        const r = await t.db.pool.query<{ s: string | null }>(
          `SELECT sum(quantity)::text AS s FROM usage_events WHERE customer_id = ANY($1) AND metric = $2
             AND occurred_at >= $3 AND occurred_at < $4 AND voided_at IS NULL`,
          [customers, m, w.from, w.to],
        );
        const s = r.rows[0]!.s;
        if (s !== null && !new Decimal(s).isZero()) expected.push({ from: w.from, to: w.to, metric: m, quantity: new Decimal(s).toFixed() });
      }
    expect(got).toEqual(expected);
    expect(got.every((r) => /^\d+(\.\d+)?$/.test(r.quantity))).toBe(true);
  });
});

describe("GET /v1/contracts/{id}/usage-summary", () => {
  it("reports used, included, remaining and share used per meter of the version in force", async () => {
    const contract = await usageContract({ accountIds: [uniqueId("sub")] });
    const c = contract.customerId;
    await ingestOk([
      ev(c, 1, { quantity: "600", timestamp: "2026-03-02T00:00:00Z" }),
      ev(contract.accountIds[0]!, 2, { quantity: "150.5", timestamp: "2026-03-30T00:00:00Z" }),
      ev(c, 3, { quantity: "2", metric: "gpu_hours", timestamp: "2026-03-03T00:00:00Z" }),
      ev(c, 4, { quantity: "5000", timestamp: "2026-04-03T00:00:00Z" }),
    ]);
    const res = await get(`/v1/contracts/${contract.id}/usage-summary?at=2026-03-15T00:00:00Z`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      contractId: contract.id,
      at: "2026-03-15T00:00:00.000Z",
      period: { start: "2026-03-01T00:00:00.000Z", end: "2026-04-01T00:00:00.000Z" },
      version: 1,
      meters: [
        { meterId: "api_calls", metric: "api_calls", aggregation: "sum", filter: null, unit: "call", used: "750.5", included: "1000", remaining: "249.5", shareUsed: "0.7505" },
        { meterId: "storage_gb", metric: "storage_gb", aggregation: "sum", filter: null, unit: null, used: "0", included: "0", remaining: "0", shareUsed: null },
      ],
      unmetered: [{ metric: "gpu_hours", used: "2" }],
    });
    const april = (await get(`/v1/contracts/${contract.id}/usage-summary?at=2026-04-15T00:00:00Z`)).json();
    expect(april.meters[0]).toMatchObject({ used: "5000", remaining: "0", shareUsed: "5" });

    // An amendment from May: its meters answer for May.
    const amend = await post(`/v1/contracts/${contract.id}/amendments`, {
      effectiveFrom: "2026-05-01T00:00:00Z",
      reason: "more included",
      terms: { meters: [{ metric: "api_calls", included: "3000", pricing: { model: "per_unit", unitPrice: "0.05" } }] },
    });
    expect(amend.statusCode, amend.body).toBe(201);
    await ingestOk([ev(c, 5, { quantity: "1000", timestamp: "2026-05-10T00:00:00Z" })]);
    const may = (await get(`/v1/contracts/${contract.id}/usage-summary?at=2026-05-10T00:00:00Z`)).json();
    expect(may).toMatchObject({ version: 2, meters: [{ metric: "api_calls", used: "1000", included: "3000", remaining: "2000", shareUsed: "0.333333333" }] });
    // Without `at`: the period containing the clock's now (TEST_NOW, 15 November 2026).
    const now = (await get(`/v1/contracts/${contract.id}/usage-summary`)).json();
    expect(now.period.start).toBe("2026-11-01T00:00:00.000Z");
  });

  it("404 for an unknown contract, 400 for `at` outside the term or malformed, 401 without a key", async () => {
    const contract = await usageContract();
    expect((await get(`/v1/contracts/${randomUUID()}/usage-summary`)).statusCode).toBe(404);
    const outside = await get(`/v1/contracts/${contract.id}/usage-summary?at=2027-01-01T00:00:00Z`);
    expect(outside.statusCode).toBe(400);
    expect(paths(outside)).toEqual(["querystring.at"]);
    expect((await get(`/v1/contracts/${contract.id}/usage-summary?at=yesterday`)).statusCode).toBe(400);
    expect((await t.app.inject({ method: "GET", url: `/v1/contracts/${contract.id}/usage-summary` })).statusCode).toBe(401);
  });
});
