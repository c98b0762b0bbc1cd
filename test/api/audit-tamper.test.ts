// What is not refused is detected (docs/audit.md): through the real HTTP app, then behind the service's back
// as the tables' owner with the append-only triggers off, each kind of tampering and what names it. The
// attacker knows every formula (the chain's hash, the digests) but not the checkpoint signing key.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { loadAuditSigningKey } from "../../src/audit-key.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { encodeCheckpointToken, signCheckpoint } from "../../src/domain/audit-signing.js";
import { hashEntry } from "../../src/services/audit/append.js";
import { type TestApp, auth, expectProblem, useTestApp } from "../helpers/app.js";
import { events } from "../helpers/factories.js";

// Small, so a handful of requests crosses several periodic checkpoints.
const EVERY = "3";
// A loaded test machine must not turn the seed's requests into 503s (load shedding is tested elsewhere).
const NO_SHEDDING = { maxEventLoopDelayMs: 60_000 };

/** Runs statements as the owner with the tables' user triggers off (what a DBA or a stolen owner password can do). */
async function tamper(t: TestApp, tables: string[], statements: [string, unknown[]?][]) {
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();
  try {
    await client.query("BEGIN");
    for (const table of tables) await client.query(`ALTER TABLE ${table} DISABLE TRIGGER USER`);
    for (const [text, params] of statements) await client.query(text, params ?? []);
    for (const table of tables) await client.query(`ALTER TABLE ${table} ENABLE TRIGGER USER`);
    await client.query("COMMIT");
  } finally {
    await client.end();
  }
}

const verify = async (t: TestApp, query = "") => {
  const res = await t.get(`/v1/audit/verify${query}`, "reader");
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
};

const kinds = (v: { problems: { kind: string; entityType: string; entityId: string }[] }) => v.problems.map((p) => `${p.kind} ${p.entityType} ${p.entityId}`);

interface Seeded {
  contractId: string;
  documentId: string;
  batchId: string;
  token: string;
  headSeq: string;
}

/** A contract amended once, usage (with properties, one event voided), an invoice with a credit drawdown, and a checkpoint token of the head. */
async function seed(t: TestApp, customerId: string): Promise<Seeded> {
  const c = await t.createContract({
    customerId,
    name: `tamper ${customerId}`,
    currency: "USD",
    billingPeriod: "monthly",
    startDate: "2026-01-01",
    terms: {
      platformFee: { amount: "500.00" },
      meters: [{ metric: "calls", unit: "call", included: "0", pricing: { model: "per_unit", unitPrice: "0.50" } }],
      prepaidCredits: [{ id: "grant-a", amount: "100.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
    },
  });
  const amended = await t.post(`/v1/contracts/${c.id}/amendments`, {
    effectiveFrom: "2026-06-01T00:00:00Z",
    reason: "price change",
    terms: { platformFee: { amount: "600.00" }, meters: [{ metric: "calls", unit: "call", pricing: { model: "per_unit", unitPrice: "0.40" } }] },
  }, "writer");
  expect(amended.statusCode, amended.body).toBe(201);
  const evts = events(customerId, "calls", "1000", "2026-03-10T08:15:30.123456Z", 4).map((e, i) => (i === 0 ? { ...e, properties: { region: "eu", n: 1.5, tags: ["a", "b"] } } : e));
  await t.ingest(evts);
  const voided = await t.post("/v1/usage/void", { customerId, eventIds: [evts[1]!.eventId], reason: "double counted" }, "writer");
  expect(voided.statusCode, voided.body).toBe(200);
  const calc = await t.preview(c.id, "2026-03-01T00:00:00Z");
  await t.approveAll(calc);
  const res = await t.issue(c.id, calc.id);
  expect(res.statusCode, res.body).toBe(201);
  const doc = res.json();
  expect(doc.creditsApplied.length).toBe(1);
  const cp = await t.post("/v1/audit/checkpoints", {});
  expect(cp.statusCode, cp.body).toBe(201);
  const batch = await t.db.pool.query<{ batch_id: string }>("SELECT DISTINCT batch_id::text AS batch_id FROM usage_events WHERE customer_id = $1", [customerId]);
  expect(batch.rows.length).toBe(1);
  return { contractId: c.id, documentId: doc.id, batchId: batch.rows[0]!.batch_id, token: cp.json().token, headSeq: cp.json().seq };
}

/** One app and one seeded database per scenario: each tampering stays in its own database. */
function scenario(customerId: string) {
  const t = useTestApp({ AUDIT_CHECKPOINT_EVERY: EVERY }, NO_SHEDDING);
  const s = {} as Seeded;
  beforeAll(async () => {
    Object.assign(s, await seed(t, customerId));
  });
  return { t, s };
}

describe("a clean database", () => {
  const { t, s } = scenario("clean");

  it("verifies ok, shallow and deep, with the latest checkpoint and a held token", async () => {
    const shallow = await verify(t);
    expect(shallow).toMatchObject({ ok: true, firstBrokenId: null, deep: false, problems: [], suppliedCheckpoint: null });
    expect(shallow.checkpoint).toMatchObject({ seq: s.headSeq, verified: true });
    const deep = await verify(t, `?deep=true&checkpoint=${s.token}`);
    expect(deep).toMatchObject({ ok: true, deep: true, problems: [] });
    expect(deep.suppliedCheckpoint).toMatchObject({ seq: s.headSeq, verified: true });
    expect(deep.entries).toBe(Number(s.headSeq));
  });

  it("writes a checkpoint every N entries in the appending transaction, and lists them newest first", async () => {
    const list = await t.get("/v1/audit/checkpoints?limit=500", "reader");
    expect(list.statusCode, list.body).toBe(200);
    const cps = list.json().data as { id: string; seq: string; reason: string; hash: string; token: string }[];
    const periodic = cps.filter((c) => c.reason === "periodic").map((c) => Number(c.seq)).sort((a, b) => a - b);
    expect(periodic.length).toBeGreaterThanOrEqual(2);
    expect(periodic).toEqual(periodic.map((_, i) => (i + 1) * Number(EVERY)));
    expect(cps[0]).toMatchObject({ reason: "on_demand", seq: s.headSeq });
    // Each names the hash of the entry at its seq.
    for (const c of cps) {
      const e = await t.db.pool.query("SELECT hash FROM audit_log WHERE seq = $1::bigint", [c.seq]);
      expect(e.rows[0].hash).toBe(c.hash);
    }
    // Every periodic one's token verifies too.
    expect((await verify(t, `?checkpoint=${cps.at(-1)!.token}`)).suppliedCheckpoint.verified).toBe(true);
    // Paging.
    const first = (await t.get("/v1/audit/checkpoints?limit=1", "reader")).json();
    const second = (await t.get(`/v1/audit/checkpoints?limit=1&cursor=${first.nextCursor}`, "reader")).json();
    expect(second.data[0].id).toBe(cps[1]!.id);
  });

  it("only an admin signs the head; a malformed token is a 400; a token signed with another key is not verified", async () => {
    expectProblem(await t.post("/v1/audit/checkpoints", {}, "writer"), 403, "forbidden");
    // The body is {} like every POST's JSON object: anything else is a 400.
    expectProblem(await t.post("/v1/audit/checkpoints", { note: "x" }), 400, "validation_failed");
    expectProblem(await t.app.inject({ method: "POST", url: "/v1/audit/checkpoints", headers: auth("admin") }), 400, "validation_failed");
    expectProblem(await t.get("/v1/audit/verify?checkpoint=not-a-token", "reader"), 400, "validation_failed");
    expectProblem(await t.get("/v1/audit/verify?deep=yes", "reader"), 400, "validation_failed");
    const head = (await t.db.pool.query("SELECT seq::text AS seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")).rows[0];
    const forged = encodeCheckpointToken(
      signCheckpoint(Buffer.from("an-attacker-key-of-sufficient-length!!"), { seq: head.seq, hash: head.hash, at: new Date().toISOString(), entries: head.seq }),
    );
    const v = await verify(t, `?checkpoint=${forged}`);
    expect(v.ok).toBe(false);
    expect(v.suppliedCheckpoint.verified).toBe(false);
    expect(kinds(v)).toEqual(["checkpoint_invalid audit_checkpoint supplied"]);
  });
});

describe("an empty log", () => {
  const t = useTestApp({}, NO_SHEDDING);
  it("has no head to sign (409) and verifies ok", async () => {
    expectProblem(await t.post("/v1/audit/checkpoints", {}), 409, "conflict");
    expect(await verify(t, "?deep=true")).toMatchObject({ ok: true, entries: 0, checkpoint: null, problems: [] });
  });
});

describe("an edited document", () => {
  const { t, s } = scenario("edit-doc");
  it("passes the chain but fails a deep verify naming the document", async () => {
    await tamper(t, ["documents"], [["UPDATE documents SET amount = amount - 1 WHERE id = $1::uuid", [s.documentId]]]);
    expect((await verify(t)).ok).toBe(true); // the chain and checkpoint say nothing about the rows
    const v = await verify(t, "?deep=true");
    expect(v).toMatchObject({ ok: false, firstBrokenId: null });
    expect(kinds(v)).toEqual([`digest_mismatch document ${s.documentId}`]);
  });
});

describe("an edited document line", () => {
  const { t, s } = scenario("edit-line");
  it("fails a deep verify naming the document", async () => {
    await tamper(t, ["document_lines"], [["UPDATE document_lines SET amount = 0 WHERE document_id = $1::uuid AND line_no = 1", [s.documentId]]]);
    expect(kinds(await verify(t, "?deep=true"))).toEqual([`digest_mismatch document ${s.documentId}`]);
  });
});

describe("an edited contract version", () => {
  const { t, s } = scenario("edit-version");
  it("fails a deep verify naming the contract version", async () => {
    await tamper(t, ["contract_versions"], [
      [`UPDATE contract_versions SET terms = jsonb_set(terms, '{platformFee,amount}', '"5.00"') WHERE contract_id = $1::uuid AND version = 1`, [s.contractId]],
    ]);
    expect(kinds(await verify(t, "?deep=true"))).toEqual([`digest_mismatch contract_version ${s.contractId}/v1`]);
  });
});

describe("an edited usage event", () => {
  const { t, s } = scenario("edit-event");
  it("fails a deep verify naming its batch (and the hourly rollup that no longer adds up)", async () => {
    await tamper(t, ["usage_events"], [["UPDATE usage_events SET quantity = quantity * 10 WHERE customer_id = 'edit-event' AND voided_at IS NULL AND properties IS NOT NULL", []]]);
    const v = await verify(t, "?deep=true");
    expect(v.ok).toBe(false);
    expect(kinds(v)).toEqual([`digest_mismatch usage_batch ${s.batchId}`, "rollup_mismatch usage_rollup edit-event|calls|2026-03-10T08:00:00Z"]);
  });

  it("an event inserted behind the service's back is unattested", async () => {
    await tamper(t, [], [[
      `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash)
       VALUES ('edit-event', 'sneaked', 'calls', 5, '2026-03-10T08:20:00Z', 'x')`,
    ]]);
    expect(kinds(await verify(t, "?deep=true"))).toContain("unattested usage_event batch:none");
  });
});

describe("a deleted last audit entry", () => {
  const { t, s } = scenario("delete-last");
  it("is named by the latest checkpoint: the chain is shorter than it signed", async () => {
    await tamper(t, ["audit_log"], [["DELETE FROM audit_log WHERE seq = $1::bigint", [s.headSeq]]]);
    const v = await verify(t);
    expect(v.ok).toBe(false);
    expect(v.checkpoint).toMatchObject({ seq: s.headSeq, verified: false });
    expect(v.problems.map((p: { kind: string }) => p.kind)).toEqual(["chain_truncated"]);
  });
});

describe("a rewritten last audit entry with a recomputed hash", () => {
  const { t, s } = scenario("rewrite-last");
  it("keeps the chain consistent but no longer matches the signed checkpoint", async () => {
    const last = (
      await t.db.pool.query(
        "SELECT id::text AS id, seq::text AS seq, at, actor, action, entity_type, entity_id, payload, prev_hash FROM audit_log WHERE seq = $1::bigint",
        [s.headSeq],
      )
    ).rows[0];
    const payload = { ...last.payload, amount: "0.00" };
    const entry = { id: last.id, seq: last.seq, at: last.at.toISOString(), actor: last.actor, action: last.action, entityType: last.entity_type, entityId: last.entity_id, payload };
    const hash = hashEntry(last.prev_hash, entry);
    await tamper(t, ["audit_log"], [["UPDATE audit_log SET payload = $2::jsonb, hash = $3 WHERE id = $1::uuid", [last.id, JSON.stringify(payload), hash]]]);
    const v = await verify(t);
    expect(v).toMatchObject({ ok: false, firstBrokenId: null });
    expect(kinds(v)).toEqual([`checkpoint_mismatch audit_entry ${last.id}`]);
  });
});

describe("deleted last entries and their checkpoints", () => {
  const { t, s } = scenario("delete-tail");
  it("pass against what is left, but not against a token held outside", async () => {
    // More entries after the token, so periodic checkpoints exist beyond it, then a cut back to one before it.
    for (let i = 0; i < 4; i++) await t.ingest(events("delete-tail", "calls", "1", "2026-04-01T00:00:00Z"));
    const cut = (await t.db.pool.query("SELECT max(seq)::text AS seq FROM audit_checkpoints WHERE reason = 'periodic' AND seq < $1::bigint", [s.headSeq])).rows[0].seq;
    await tamper(t, ["audit_log", "audit_checkpoints"], [
      ["DELETE FROM audit_log WHERE seq > $1::bigint", [cut]],
      ["DELETE FROM audit_checkpoints WHERE seq > $1::bigint", [cut]],
    ]);
    const alone = await verify(t);
    expect(alone).toMatchObject({ ok: true, entries: Number(cut), checkpoint: { seq: cut, verified: true } });
    const held = await verify(t, `?checkpoint=${s.token}`);
    expect(held.ok).toBe(false);
    expect(held.suppliedCheckpoint).toMatchObject({ seq: s.headSeq, verified: false });
    expect(kinds(held)).toEqual(["chain_truncated audit_checkpoint supplied"]);
  });
});

describe("a deleted latest checkpoint row alone", () => {
  const { t } = scenario("delete-checkpoint");
  it("leaves the head too far past the latest checkpoint", async () => {
    await tamper(t, ["audit_checkpoints"], [["DELETE FROM audit_checkpoints", []]]);
    const v = await verify(t);
    expect(v).toMatchObject({ ok: false, checkpoint: null });
    expect(v.problems.map((p: { kind: string }) => p.kind)).toEqual(["checkpoint_missing"]);
  });
});

describe("the signing key's configuration", () => {
  it("AUDIT_SIGNING_KEY must be at least 32 characters", () => {
    expect(() => loadConfig({ AUDIT_SIGNING_KEY: "short" })).toThrow(ConfigError);
    expect(() => loadConfig({ AUDIT_SIGNING_KEY: "short" })).toThrow(/AUDIT_SIGNING_KEY/);
    expect(() => loadConfig({ AUDIT_CHECKPOINT_EVERY: "0" })).toThrow(/AUDIT_CHECKPOINT_EVERY/);
    expect(loadConfig({}).AUDIT_CHECKPOINT_EVERY).toBe(1000);
  });

  it("without it, a key is generated once into DATA_DIR (mode 0600) and read back on the next start", () => {
    const dir = mkdtempSync(join(tmpdir(), "audit-key-"));
    try {
      const first = loadAuditSigningKey({ DATA_DIR: dir });
      expect(first.file).toBe(join(dir, "audit-signing-key"));
      expect(statSync(first.file!).mode & 0o777).toBe(0o600);
      expect(first.key.length).toBeGreaterThanOrEqual(32);
      expect(loadAuditSigningKey({ DATA_DIR: dir }).key.equals(first.key)).toBe(true);
      expect(readFileSync(first.file!, "utf8").trim()).toBe(first.key.toString("utf8"));
      const given = loadAuditSigningKey({ DATA_DIR: dir, AUDIT_SIGNING_KEY: "x".repeat(40) });
      expect(given).toEqual({ key: Buffer.from("x".repeat(40)), file: null });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
