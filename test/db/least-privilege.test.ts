// Tampering is refused (docs/database-roles.md): the service's runtime role owns
// nothing, is not a superuser, and holds only the grants the code needs, so it can neither change what is
// immutable nor switch the triggers off; and the triggers hold the owner to the same rules.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNTIME_GROUP, runtimePrivilegeWarnings } from "../../src/db/roles.js";
import { useTestApp } from "../helpers/app.js";
import { events } from "../helpers/factories.js";

const t = useTestApp();

/** The tables whose rows the database protects, and a column of each the runtime role may not UPDATE. */
const PROTECTED: Record<string, string> = {
  documents: "amount",
  document_lines: "amount",
  credit_drawdowns: "amount",
  calculations: "total",
  audit_log: "payload",
  usage_events: "quantity",
  contract_versions: "terms",
  external_billings: "amount",
  document_counters: "kind",
  exceptions: "kind",
};

let runtime: pg.Client;
let owner: pg.Client;
let contractId: string;
let eventIds: string[];

/** Runs a statement as the owner inside a transaction that is always rolled back: nothing is harmed if it passes. */
async function asOwnerRolledBack(sql: string, params: unknown[] = []) {
  await owner.query("BEGIN");
  try {
    return await owner.query(sql, params);
  } finally {
    await owner.query("ROLLBACK");
  }
}

beforeAll(async () => {
  runtime = new pg.Client({ connectionString: t.runtimeUrl });
  owner = new pg.Client({ connectionString: t.url });
  await Promise.all([runtime.connect(), owner.connect()]);

  // One of everything: a contract, an external billing, usage, a calculation, an exception, a document.
  const c = await t.createContract({
    customerId: "lp",
    name: "least privilege",
    currency: "USD",
    billingPeriod: "monthly",
    startDate: "2026-01-01",
    terms: { materialityThreshold: "100.00", meters: [{ metric: "calls", unit: "call", included: "0", pricing: { model: "per_unit", unitPrice: "0.50" } }] },
  });
  contractId = c.id;
  const billed = await t.post(`/v1/contracts/${c.id}/external-billings`, {
    periodStart: "2026-01-01T00:00:00Z",
    periodEnd: "2026-02-01T00:00:00Z",
    amount: "10.00",
    reference: "ERP-LP-1",
  }, "writer");
  expect(billed.statusCode, billed.body).toBe(201);
  const evts = events("lp", "calls", "1000", "2026-01-05T00:00:00Z", 4);
  eventIds = evts.map((e) => e.eventId);
  await t.ingest(evts);
  // Usage of no contract raises a (non-blocking) unmapped_usage exception: one to reject, then approve.
  await t.ingest(events("lp-nobody", "calls", "5", "2026-01-05T00:00:00Z"));
});

afterAll(async () => {
  await Promise.all([runtime?.end(), owner?.end()]);
});

describe("the runtime role", () => {
  it("owns nothing, is not a superuser, and the start-up check finds nothing to warn about", async () => {
    const me = await runtime.query<{ role: string; rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolbypassrls: boolean }>(
      "SELECT current_user AS role, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    );
    expect(me.rows[0]).toMatchObject({ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false });
    const role = me.rows[0]!.role;
    const owned = await owner.query(
      `SELECT c.relname FROM pg_class c WHERE pg_has_role($1, c.relowner, 'MEMBER')
       UNION ALL SELECT n.nspname FROM pg_namespace n WHERE pg_has_role($1, n.nspowner, 'MEMBER')
       UNION ALL SELECT p.proname FROM pg_proc p WHERE pg_has_role($1, p.proowner, 'MEMBER')`,
      [role],
    );
    expect(owned.rows).toEqual([]);
    const member = await runtime.query("SELECT pg_has_role(current_user, $1, 'USAGE') AS ok", [RUNTIME_GROUP]);
    expect(member.rows[0].ok).toBe(true);
    expect(await runtimePrivilegeWarnings(t.db.pool)).toEqual([]);
    // And the check does warn about the owner (here the test cluster's superuser).
    expect((await runtimePrivilegeWarnings(owner)).join("\n")).toMatch(/superuser/);
  });

  it("holds SELECT on every table but _prisma_migrations, UPDATE only on the columns the code updates, and no DELETE or TRUNCATE", async () => {
    const tables = await owner.query<{ name: string; select: boolean; insert: boolean; update: boolean; other: boolean }>(
      `SELECT c.relname AS name,
              has_table_privilege($1, c.oid, 'SELECT') AS select,
              has_table_privilege($1, c.oid, 'INSERT') AS insert,
              has_table_privilege($1, c.oid, 'UPDATE') AS update,
              has_table_privilege($1, c.oid, 'DELETE, TRUNCATE, REFERENCES, TRIGGER') AS other
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1`,
      [RUNTIME_GROUP],
    );
    for (const r of tables.rows) {
      expect(r.select, `SELECT on ${r.name}`).toBe(r.name !== "_prisma_migrations");
      expect(r.update, `table-wide UPDATE on ${r.name}`).toBe(false);
      expect(r.other, `DELETE/TRUNCATE/REFERENCES/TRIGGER on ${r.name}`).toBe(false);
    }
    expect(tables.rows.filter((r) => r.insert).map((r) => r.name)).not.toContain("document_counters");
    const updatable = await runtime.query<{ table_name: string; columns: string[] }>(
      `SELECT table_name, array_agg(column_name::text ORDER BY column_name) AS columns FROM information_schema.column_privileges
       WHERE grantee = $1 AND privilege_type = 'UPDATE' AND table_schema = 'public' GROUP BY table_name ORDER BY table_name`,
      [RUNTIME_GROUP],
    );
    expect(Object.fromEntries(updatable.rows.map((r) => [r.table_name, r.columns]))).toEqual({
      // A run is completed once; an item is completed once (WHERE status = 'pending'), its calculation kept for a resumed run.
      billing_run_items: ["blocking_exception_ids", "calculation_id", "document_id", "error", "finished_at", "status"],
      billing_runs: ["finished_at", "status"],
      // Only so that SELECT … FOR UPDATE may lock a contract; a trigger refuses every UPDATE.
      contracts: ["created_at"],
      document_counters: ["last_number"],
      // Only so that SELECT … FOR UPDATE may lock a run (dispositions and the sign-off queue on it); a trigger refuses every UPDATE.
      reconciliation_runs: ["created_at"],
      exceptions: ["calculation_id", "decision", "details", "last_seen_at", "message", "note", "resolved_at", "resolved_by", "status"],
      usage_events: ["void_reason", "voided_at", "voided_by"],
      usage_dimensions: ["properties", "unique_by"],
      usage_rollups: ["events", "max_quantity", "quantity"],
      usage_unique_values: ["hours"],
      // An attempt is completed once; an endpoint is changed by an admin or disabled by a 410.
      webhook_deliveries: ["attempted_at", "duration_ms", "error", "next_attempt_at", "response_code", "status"],
      webhook_endpoints: ["description", "disabled_reason", "event_types", "status", "updated_at", "url"],
    });
    // The job queue (graphile-worker's own schema) is the one place the runtime role deletes: a completed job.
    const queue = await owner.query<{ name: string; ok: boolean }>(
      `SELECT c.relname AS name, has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE') AS ok
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'graphile_worker' AND c.relkind = 'r'`,
      [RUNTIME_GROUP],
    );
    expect(queue.rows.length).toBeGreaterThan(0);
    expect(queue.rows.filter((r) => !r.ok)).toEqual([]);
  });

  it("cannot SET session_replication_role = replica (which would skip every trigger)", async () => {
    await expect(runtime.query("SET session_replication_role = replica")).rejects.toThrow(/permission denied to set parameter "session_replication_role"/);
    await expect(runtime.query("SET LOCAL session_replication_role = replica")).rejects.toThrow(/permission denied/);
    expect((await runtime.query("SHOW session_replication_role")).rows[0].session_replication_role).toBe("origin");
  });

  it("cannot create objects in the schema", async () => {
    await expect(runtime.query("CREATE TABLE scratch (id int)")).rejects.toThrow(/permission denied for schema public/);
    await expect(runtime.query(`CREATE FUNCTION reject_mutation_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`)).rejects.toThrow(
      /permission denied for schema public/,
    );
  });

  // An issued document, so that documents, lines and calculations have rows to try on.
  it("issues a document through the API (INSERT is all it needs)", async () => {
    const calc = await t.preview(contractId, "2026-01-01T00:00:00Z");
    const m = calc.exceptions.find((e: any) => e.kind === "materiality");
    expect(m).toBeDefined();
    const approved = await t.post(`/v1/exceptions/${m.id}/resolve`, { decision: "approve", note: "checked" }, "approver");
    expect(approved.statusCode, approved.body).toBe(200);
    const doc = await t.issue(contractId, calc.id);
    expect(doc.statusCode, doc.body).toBe(201);
  });

  for (const [table, column] of Object.entries(PROTECTED)) {
    it(`${table}: UPDATE of ${column}, DELETE, TRUNCATE and ALTER TABLE … DISABLE TRIGGER are all refused`, async () => {
      await expect(runtime.query(`UPDATE ${table} SET ${column} = ${column}`)).rejects.toThrow(new RegExp(`permission denied for table ${table}`));
      await expect(runtime.query(`DELETE FROM ${table}`)).rejects.toThrow(new RegExp(`permission denied for table ${table}`));
      await expect(runtime.query(`TRUNCATE ${table} CASCADE`)).rejects.toThrow(new RegExp(`permission denied for table ${table}`));
      await expect(runtime.query(`ALTER TABLE ${table} DISABLE TRIGGER ALL`)).rejects.toThrow(new RegExp(`must be owner of table ${table}`));
      await expect(runtime.query(`ALTER TABLE ${table} OWNER TO current_user`)).rejects.toThrow(new RegExp(`must be owner of table ${table}`));
      // The rows are all still there (this contract has no credits, so no drawdowns).
      if (table !== "credit_drawdowns") expect((await owner.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBeGreaterThan(0);
    });
  }
});

describe("the triggers, which hold the owner too", () => {
  for (const table of ["contracts", "contract_versions", "external_billings"])
    it(`${table} is immutable`, async () => {
      await expect(asOwnerRolledBack(`UPDATE ${table} SET created_by = 'mallory'`)).rejects.toThrow(/UPDATE on .* is not allowed: the table is append-only/);
      await expect(asOwnerRolledBack(`DELETE FROM ${table}`)).rejects.toThrow(/DELETE on .* is not allowed/);
      await expect(asOwnerRolledBack(`TRUNCATE ${table} CASCADE`)).rejects.toThrow(/TRUNCATE on .* is not allowed/);
    });

  for (const table of ["usage_events", "document_counters", "exceptions"])
    it(`${table}: no DELETE, no TRUNCATE`, async () => {
      await expect(asOwnerRolledBack(`DELETE FROM ${table}`)).rejects.toThrow(/DELETE on .* is not allowed/);
      await expect(asOwnerRolledBack(`TRUNCATE ${table} CASCADE`)).rejects.toThrow(/TRUNCATE on .* is not allowed/);
    });

  it("usage_events: the only UPDATE is a void, once; a second change of voided_at (or the reason) is refused", async () => {
    const [first, second] = eventIds;
    const voided = await t.post("/v1/usage/void", { customerId: "lp", eventIds: [first], reason: "double counted" }, "writer");
    expect(voided.statusCode, voided.body).toBe(200);
    for (const client of [runtime, owner]) {
      await expect(client.query("UPDATE usage_events SET voided_at = now() WHERE customer_id = 'lp' AND event_id = $1", [first])).rejects.toThrow(
        /already voided: a void is final/,
      );
      await expect(client.query("UPDATE usage_events SET void_reason = 'oops' WHERE customer_id = 'lp' AND event_id = $1", [first])).rejects.toThrow(
        /already voided/,
      );
      await expect(client.query("UPDATE usage_events SET voided_at = NULL WHERE customer_id = 'lp' AND event_id = $1", [first])).rejects.toThrow(
        /already voided/,
      );
    }
    // Not a void: setting the reason alone, or changing what the event says (the owner has the privilege; the trigger refuses).
    await expect(runtime.query("UPDATE usage_events SET void_reason = 'x' WHERE customer_id = 'lp' AND event_id = $1", [second])).rejects.toThrow(
      /may only void the event/,
    );
    await expect(asOwnerRolledBack("UPDATE usage_events SET quantity = 0, voided_at = now() WHERE customer_id = 'lp' AND event_id = $1", [second])).rejects.toThrow(
      /may only void the event.*quantity/,
    );
    // A void straight in SQL, as the runtime role, works (the grant is what the service uses); rolled back.
    await runtime.query("BEGIN");
    const r = await runtime.query("UPDATE usage_events SET voided_at = now(), void_reason = 'r', voided_by = 'me' WHERE customer_id = 'lp' AND event_id = $1", [second]);
    expect(r.rowCount).toBe(1);
    await runtime.query("ROLLBACK");
  });

  it("document_counters: the counter only goes up", async () => {
    const before = (await owner.query("SELECT last_number FROM document_counters WHERE kind = 'invoice'")).rows[0].last_number;
    expect(before).toBe(1);
    for (const client of [runtime, owner]) {
      await expect(client.query("UPDATE document_counters SET last_number = last_number - 1 WHERE kind = 'invoice'")).rejects.toThrow(/may only increase/);
      await expect(client.query("UPDATE document_counters SET last_number = last_number WHERE kind = 'invoice'")).rejects.toThrow(/may only increase/);
      await expect(client.query("UPDATE document_counters SET last_number = 0")).rejects.toThrow(/may only increase/);
    }
    await expect(asOwnerRolledBack("UPDATE document_counters SET kind = 'invoice2', last_number = last_number + 1 WHERE kind = 'invoice'")).rejects.toThrow(
      /may only increase/,
    );
    await runtime.query("BEGIN");
    const up = await runtime.query("UPDATE document_counters SET last_number = last_number + 1 WHERE kind = 'invoice' RETURNING last_number");
    expect(up.rows[0].last_number).toBe(before + 1);
    await runtime.query("ROLLBACK");
  });

  it("exceptions: decided once (a rejection may be reconsidered, an approval is final); every decision audited", async () => {
    const list = await t.get("/v1/exceptions?kind=unmapped_usage", "reader");
    const ex = list.json().data.find((e: any) => e.customerId === "lp-nobody");
    expect(ex).toMatchObject({ status: "open" });
    const resolve = (decision: string, note: string) => t.post(`/v1/exceptions/${ex.id}/resolve`, { decision, note }, "approver");

    expect((await resolve("reject", "whose is it?")).json()).toMatchObject({ status: "rejected" });
    // Rejecting again would overwrite the first rejection's note and actor: 409, and the database refuses it too.
    expect((await resolve("reject", "still no idea")).json().code).toBe("conflict");
    await expect(
      runtime.query("UPDATE exceptions SET note = 'rewritten', resolved_at = now() WHERE id = $1", [ex.id]),
    ).rejects.toThrow(/cannot take it from rejected to rejected/);
    expect((await resolve("approve", "a trial account")).json()).toMatchObject({ status: "approved", resolution: { note: "a trial account" } });
    expect((await resolve("approve", "again")).json().code).toBe("conflict");
    expect((await resolve("reject", "changed my mind")).json().code).toBe("conflict");

    for (const client of [runtime, owner]) {
      for (const sql of [
        "UPDATE exceptions SET status = 'open', decision = NULL WHERE id = $1",
        "UPDATE exceptions SET status = 'rejected', decision = 'reject', resolved_at = now() WHERE id = $1",
        "UPDATE exceptions SET note = 'rewritten' WHERE id = $1",
        "UPDATE exceptions SET resolved_by = 'mallory' WHERE id = $1",
      ])
        await expect(client.query(sql, [ex.id]), sql).rejects.toThrow(/cannot take it from approved/);
    }
    // What an exception is about never changes (the runtime role lacks the privilege; the owner meets the trigger).
    await expect(runtime.query("UPDATE exceptions SET blocking = NOT blocking WHERE id = $1", [ex.id])).rejects.toThrow(/permission denied for table exceptions/);
    await expect(asOwnerRolledBack("UPDATE exceptions SET blocking = NOT blocking, subject = 'x' WHERE id = $1", [ex.id])).rejects.toThrow(
      /\{blocking,subject\} may not change/,
    );
    // A decision must say who and when.
    const open = await asOwnerRolledBack("SELECT id::text FROM exceptions WHERE status = 'open' LIMIT 1");
    if (open.rows[0])
      await expect(asOwnerRolledBack("UPDATE exceptions SET status = 'approved', decision = 'approve' WHERE id = $1", [open.rows[0].id])).rejects.toThrow(
        /records its decision, actor and time/,
      );
    // Raising again still refreshes what was seen.
    await runtime.query("BEGIN");
    const seen = await runtime.query("UPDATE exceptions SET last_seen_at = now(), message = message, details = details WHERE id = $1", [ex.id]);
    expect(seen.rowCount).toBe(1);
    await runtime.query("ROLLBACK");

    const stored = (await t.get(`/v1/exceptions/${ex.id}`, "reader")).json();
    expect(stored).toMatchObject({ status: "approved", resolution: { decision: "approve", note: "a trial account", actor: "approver-key" } });
    const audit = await t.get(`/v1/audit?entityId=${ex.id}`, "reader");
    expect(audit.json().data.map((e: any) => [e.action, e.actor, e.payload.note])).toEqual([
      ["exception.rejected", "approver-key", "whose is it?"],
      ["exception.approved", "approver-key", "a trial account"],
    ]);
  });

  it("the start-up check warns about a role that owns a table, or is not in rating_runtime", async () => {
    const login = `lp_owner_${process.pid}`;
    await owner.query(`CREATE ROLE ${login} LOGIN PASSWORD 'lp-owner-secret'`);
    try {
      const u = new URL(t.url);
      u.username = login;
      u.password = "lp-owner-secret";
      const pool = new pg.Pool({ connectionString: u.toString(), max: 1 });
      try {
        expect((await runtimePrivilegeWarnings(pool)).join("\n")).toMatch(/is not a member of rating_runtime/);
        await owner.query(`CREATE TABLE lp_scratch (id int)`);
        await owner.query(`ALTER TABLE lp_scratch OWNER TO ${login}`);
        expect((await runtimePrivilegeWarnings(pool)).join("\n")).toMatch(/the owner of 1 table\(s\) \(lp_scratch\)/);
      } finally {
        await pool.end();
        await owner.query("DROP TABLE IF EXISTS lp_scratch");
      }
    } finally {
      await owner.query(`DROP ROLE ${login}`);
    }
  });

  it("the audit chain still verifies after all these attempts", async () => {
    expect((await t.get("/v1/audit/verify", "reader")).json()).toMatchObject({ ok: true, firstBrokenId: null });
  });
});
