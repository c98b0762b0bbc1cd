// One PostgreSQL for the whole test run: the embedded one in a throwaway directory, or TEST_DATABASE_URL.
// Migrations run once into a template database; each test file clones it (CREATE DATABASE … TEMPLATE),
// which takes milliseconds and isolates files from each other.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrate } from "../../src/db/migrator.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A URL of the server's maintenance database, for creating per-file databases. */
    pgAdminUrl: string;
    templateDatabase: string;
  }
}

const TEMPLATE = "rating_template";

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export default async function setup(project: TestProject) {
  let stop = async () => {};
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    const dir = mkdtempSync(join(tmpdir(), "rating-test-"));
    chmodSync(dir, 0o755);
    const embedded = await startEmbeddedPostgres({ dir, database: "postgres" });
    adminUrl = embedded.url;
    stop = async () => {
      await embedded.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${TEMPLATE}`);
  await admin.end();
  await migrate(withDatabase(adminUrl, TEMPLATE));
  project.provide("pgAdminUrl", adminUrl);
  project.provide("templateDatabase", TEMPLATE);
  return stop;
}
