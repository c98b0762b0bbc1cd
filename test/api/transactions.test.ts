// Serialization failures and deadlocks are retried by the one transaction helper every use case goes through.
import { expect, it } from "vitest";
import { withTransaction } from "../../src/db/tx.js";
import { useTestApp } from "../helpers/app.js";

const t = useTestApp();

for (const state of ["40001", "40P01"]) {
  it(`retries a transaction that fails with SQLSTATE ${state}, rolling back the failed attempt`, async () => {
    let attempts = 0;
    const result = await withTransaction(t.db, async (tx) => {
      attempts++;
      await tx.$executeRawUnsafe(`INSERT INTO document_counters (kind, last_number) VALUES ('probe-${state}-' || ${attempts}, 0)`);
      if (attempts < 3) await tx.$executeRawUnsafe(`DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '${state}'; END $$`);
      return attempts;
    });
    expect(result).toBe(3);
    const rows = await t.db.pool.query(`SELECT kind FROM document_counters WHERE kind LIKE 'probe-${state}-%'`);
    expect(rows.rows.map((r) => r.kind)).toEqual([`probe-${state}-3`]);
  });
}

it("gives up after the retry budget and surfaces the error", async () => {
  let attempts = 0;
  await expect(
    withTransaction(t.db, async (tx) => {
      attempts++;
      await tx.$executeRawUnsafe(`DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '40001'; END $$`);
    }, { retries: 2 }),
  ).rejects.toThrow();
  expect(attempts).toBe(3);
});
