// One PostgreSQL for the whole test run: the embedded one in a throwaway directory, or TEST_DATABASE_URL.
// Migrations run once into a template database; each test file clones it (CREATE DATABASE … TEMPLATE),
// which takes milliseconds and isolates files from each other.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrate } from "../../src/db/migrator.js";
import { ensureRuntimeLogin } from "../../src/db/roles.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A URL of the server's maintenance database, for creating per-file databases. */
    pgAdminUrl: string;
    /** The same server as the runtime login (a member of rating_runtime, owning nothing): what apps under test use. */
    pgRuntimeUrl: string;
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
  let runtimeUrl: string;
  if (!adminUrl) {
    const dir = mkdtempSync(join(tmpdir(), "rating-test-"));
    chmodSync(dir, 0o755);
    const embedded = await startEmbeddedPostgres({ dir, database: "postgres" });
    adminUrl = embedded.ownerUrl;
    runtimeUrl = embedded.runtimeUrl;
    stop = async () => {
      await embedded.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  } else {
    // A server of one's own: a login role for this run only (roles are cluster-global), dropped at the end.
    const login = `rating_test_${randomBytes(5).toString("hex")}`;
    const password = randomBytes(18).toString("hex");
    const owner = new pg.Client({ connectionString: adminUrl });
    await owner.connect();
    await ensureRuntimeLogin(owner, login, password).finally(() => owner.end());
    const u = new URL(adminUrl);
    u.username = login;
    u.password = password;
    runtimeUrl = u.toString();
    const dropUrl = adminUrl;
    stop = async () => {
      const c = new pg.Client({ connectionString: dropUrl });
      await c.connect();
      await c.query(`DROP ROLE IF EXISTS ${login}`).catch(() => undefined);
      await c.end();
    };
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${TEMPLATE}`);
  await admin.end();
  await migrate(withDatabase(adminUrl, TEMPLATE));
  project.provide("pgAdminUrl", adminUrl);
  project.provide("pgRuntimeUrl", runtimeUrl);
  project.provide("templateDatabase", TEMPLATE);
  return stop;
}
