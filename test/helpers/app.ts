// Builds the real app on a fresh database cloned from the migrated template.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, expect, inject } from "vitest";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { type Database, connectDatabase } from "../../src/db/client.js";
import { KeyRing } from "../../src/http/plugins/auth.js";
import { withDatabase } from "./global-setup.js";

export const KEYS = {
  admin: "test-admin-secret",
  writer: "test-writer-secret",
  reader: "test-reader-secret",
  approver: "test-approver-secret",
} as const;
export type TestRole = keyof typeof KEYS;

export const keyRing = () =>
  new KeyRing(Object.entries(KEYS).map(([role, secret]) => ({ name: `${role}-key`, role: role as TestRole, secret })));

export const auth = (role: TestRole = "admin") => ({ authorization: `Bearer ${KEYS[role]}` });

/** A new, migrated, empty database; returns its URL. */
export async function createTestDatabase(): Promise<string> {
  const adminUrl = inject("pgAdminUrl");
  const name = `t_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${inject("templateDatabase")}`);
  } finally {
    await admin.end();
  }
  return withDatabase(adminUrl, name);
}

export interface TestApp {
  app: Awaited<ReturnType<typeof buildApp>>;
  db: Database;
  url: string;
  close(): Promise<void>;
}

export async function startTestApp(overrides: Record<string, string> = {}, extra: Partial<Parameters<typeof buildApp>[0]> = {}): Promise<TestApp> {
  const url = await createTestDatabase();
  const db = connectDatabase(url, 10);
  const config = loadConfig({ DATA_DIR: "/tmp/unused", ...overrides });
  const app = await buildApp({ config, db, keys: keyRing(), logger: false, ...extra });
  await app.ready();
  return {
    app,
    db,
    url,
    async close() {
      await app.close();
      await db.close();
    },
  };
}

/**
 * A real app on a fresh database for the enclosing file or describe block: started before its tests,
 * closed after. The returned object is filled in by beforeAll, so read its fields inside tests only.
 */
export function useTestApp(...args: Parameters<typeof startTestApp>): TestApp {
  const holder = {} as TestApp;
  beforeAll(async () => {
    Object.assign(holder, await startTestApp(...args));
  });
  afterAll(async () => {
    await holder.close?.();
  });
  return holder;
}

/** Asserts an RFC 9457 problem+json answer with the given status and stable code; returns its body. */
export function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({ status, code, type: `/problems/${code}` });
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  return body;
}
