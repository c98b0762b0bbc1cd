// Serialization failures and deadlocks are retried by the one transaction helper every use case goes through.
import { expect, it } from "vitest";
import { transaction } from "../../src/db/tx.js";
import { useTestApp } from "../helpers/app.js";

const t = useTestApp();

for (const state of ["40001", "40P01"]) {
  it(`retries a transaction that fails with SQLSTATE ${state}, rolling back the failed attempt`, async () => {
    let attempts = 0;
    const result = await transaction(t.db, async (sql) => {
      attempts++;
      // A table the runtime role may insert into (document_counters, say, it may only increment).
      await sql.query(
        `INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response) VALUES ('probe', 'probe-${state}-' || ${attempts}, 'h', 200, '{}')`,
      );
      if (attempts < 3) await sql.query(`DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '${state}'; END $$`);
      return attempts;
    });
    expect(result).toBe(3);
    const rows = await t.db.pool.query(`SELECT key FROM idempotency_keys WHERE scope = 'probe' AND key LIKE 'probe-${state}-%'`);
    expect(rows.rows.map((r) => r.key)).toEqual([`probe-${state}-3`]);
  });
}

it("gives up after the retry budget and surfaces the error", async () => {
  let attempts = 0;
  await expect(
    transaction(t.db, async (sql) => {
      attempts++;
      await sql.query(`DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '40001'; END $$`);
    }, { retries: 2 }),
  ).rejects.toThrow();
  expect(attempts).toBe(3);
});
