// The migrator applies prisma/migrations exactly as `prisma migrate deploy` would record them, so either
// tool can take over a database: same _prisma_migrations table, sha256 checksums, finished_at, steps = 1.
import { createHash, randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, inject, it } from "vitest";
import { MIGRATIONS_DIR, migrate, readMigrations } from "../../src/db/migrator.js";
import { withDatabase } from "../helpers/global-setup.js";

const created: string[] = [];
const temps: string[] = [];

async function emptyDatabase(): Promise<string> {
  const name = `m_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: inject("pgAdminUrl") });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  created.push(name);
  return withDatabase(inject("pgAdminUrl"), name);
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

function copyMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), "migrations-"));
  temps.push(dir);
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

afterAll(async () => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: inject("pgAdminUrl") });
  await admin.connect();
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe("migrate", () => {
  it("migrates a fresh database, then a second run applies nothing", async () => {
    const url = await emptyDatabase();
    const names = readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect(names.length).toBeGreaterThan(0);
    expect(await migrate(url)).toEqual(names);
    expect(await migrate(url)).toEqual([]);
    const tables = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'");
    expect(tables[0]!.n).toBeGreaterThan(10);
  });

  it("records each migration the way prisma migrate deploy expects", async () => {
    const url = await emptyDatabase();
    await migrate(url);
    const rows = await query<{
      id: string;
      checksum: string;
      migration_name: string;
      finished_at: Date | null;
      started_at: Date;
      rolled_back_at: Date | null;
      applied_steps_count: number;
      logs: string | null;
    }>(url, `SELECT * FROM "_prisma_migrations" ORDER BY migration_name`);
    const files = readMigrations();
    expect(rows.map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
    for (const r of rows) {
      const sql = readFileSync(join(MIGRATIONS_DIR, r.migration_name, "migration.sql"));
      expect(r.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
      expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(r.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.finished_at).toBeInstanceOf(Date);
      expect(r.finished_at!.getTime()).toBeGreaterThanOrEqual(r.started_at.getTime());
      expect(r.rolled_back_at).toBeNull();
      expect(r.applied_steps_count).toBe(1);
    }
    // The column types prisma's migrate creates, so `prisma migrate deploy` accepts the table as its own.
    const cols = await query<{ column_name: string; data_type: string; character_maximum_length: number | null; is_nullable: string }>(
      url,
      `SELECT column_name, data_type, character_maximum_length, is_nullable FROM information_schema.columns
       WHERE table_name = '_prisma_migrations' ORDER BY column_name`,
    );
    expect(Object.fromEntries(cols.map((c) => [c.column_name, [c.data_type, c.character_maximum_length, c.is_nullable]]))).toEqual({
      applied_steps_count: ["integer", null, "NO"],
      checksum: ["character varying", 64, "NO"],
      finished_at: ["timestamp with time zone", null, "YES"],
      id: ["character varying", 36, "NO"],
      logs: ["text", null, "YES"],
      migration_name: ["character varying", 255, "NO"],
      rolled_back_at: ["timestamp with time zone", null, "YES"],
      started_at: ["timestamp with time zone", null, "NO"],
    });
  });

  it("applies only the new migration when one is added", async () => {
    const url = await emptyDatabase();
    const dir = copyMigrations();
    await migrate(url, dir);
    mkdirSync(join(dir, "29990101000000_add_note"));
    writeFileSync(join(dir, "29990101000000_add_note", "migration.sql"), `CREATE TABLE "scratch_note" ("id" INTEGER PRIMARY KEY);\n`);
    expect(await migrate(url, dir)).toEqual(["29990101000000_add_note"]);
    expect(await migrate(url, dir)).toEqual([]);
  });

  it("refuses, with a clear error, a migration edited after it was applied", async () => {
    const url = await emptyDatabase();
    const dir = copyMigrations();
    await migrate(url, dir);
    const first = readMigrations(dir)[0]!;
    writeFileSync(join(dir, first.name, "migration.sql"), `${first.sql}\n-- an innocent-looking edit\n`);
    await expect(migrate(url, dir)).rejects.toThrow(new RegExp(`migration ${first.name} was edited after it was applied`));
  });

  it("a failing migration rolls back entirely, names itself, and is retried on the next run once fixed", async () => {
    const url = await emptyDatabase();
    const dir = copyMigrations();
    await migrate(url, dir);
    const bad = join(dir, "29990101000000_broken");
    mkdirSync(bad);
    writeFileSync(join(bad, "migration.sql"), `CREATE TABLE "half_done" ("id" INTEGER);\nSELECT * FROM "no_such_table";\n`);
    await expect(migrate(url, dir)).rejects.toThrow(/migration 29990101000000_broken failed: .*no_such_table/);
    const left = await query(url, `SELECT 1 FROM information_schema.tables WHERE table_name = 'half_done'`);
    expect(left).toEqual([]);
    const recorded = await query(url, `SELECT 1 FROM "_prisma_migrations" WHERE migration_name = '29990101000000_broken'`);
    expect(recorded).toEqual([]);
    writeFileSync(join(bad, "migration.sql"), `CREATE TABLE "half_done" ("id" INTEGER);\n`);
    expect(await migrate(url, dir)).toEqual(["29990101000000_broken"]);
  });

  it("two migrators at once: the advisory lock lets one apply, the other finds nothing to do", async () => {
    const url = await emptyDatabase();
    const [a, b] = await Promise.all([migrate(url), migrate(url)]);
    expect([...a, ...b]).toEqual(readMigrations().map((m) => m.name));
  });
});
