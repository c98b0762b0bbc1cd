// Builds the real app on a fresh database cloned from the migrated template.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, expect, inject } from "vitest";
import { buildApp } from "../../src/app.js";
import { fixedClock } from "../../src/clock.js";
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

/** The audit checkpoints' signing key of every test app (config AUDIT_SIGNING_KEY). */
export const TEST_AUDIT_SIGNING_KEY = "test-audit-signing-key-0123456789abcdef";

/**
 * "Now" for every in-process test app: tests never depend on today's date (a test that needs another
 * instant passes its own clock). Mid-November 2026, the time the fixtures' dates were written for.
 */
export const TEST_NOW = "2026-11-15T12:00:00.000Z";
export const testClock = fixedClock(TEST_NOW);

export const keyRing = () =>
  new KeyRing(Object.entries(KEYS).map(([role, secret]) => ({ name: `${role}-key`, role: role as TestRole, secret })));

export const auth = (role: TestRole = "admin") => ({ authorization: `Bearer ${KEYS[role]}` });

/** A new, migrated, empty database; returns its URL as the owner (the admin role that migrated the template). */
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

/** The same database as the runtime role the service runs as (a member of rating_runtime, owning nothing). */
export const runtimeUrlOf = (url: string) => withDatabase(inject("pgRuntimeUrl"), new URL(url).pathname.slice(1));

type Response = Awaited<ReturnType<TestApp["app"]["inject"]>>;

/** Requests through the real HTTP stack (inject), as a role; `as(role)` gives the same with another default role. */
export interface TestClient {
  post(url: string, payload: unknown, role?: TestRole, headers?: Record<string, string>): Promise<Response>;
  get(url: string, role?: TestRole): Promise<Response>;
  /** POST /v1/contracts as a writer, expecting 201; the contract. */
  createContract(body: Record<string, unknown>): Promise<any>;
  /** POST /v1/usage as the given role (writer), whatever the answer. */
  sendUsage(events: unknown[], role?: TestRole): Promise<Response>;
  /** POST /v1/usage as a writer, expecting success; the counts. */
  ingest(events: unknown[]): Promise<any>;
  /** A true-up preview as a writer, expecting 201; the calculation. */
  preview(contractId: string, periodStart?: string): Promise<any>;
  /** Issues a calculation as an approver, with an idempotency key when given; the answer as it comes. */
  issue(contractId: string, calculationId: string, key?: string): Promise<Response>;
  /** Approves every open blocking exception of a calculation. */
  approveAll(calculation: { exceptions: { id: string; blocking: boolean; status: string }[] }): Promise<void>;
  as(role: TestRole): TestClient;
}

export interface TestApp extends TestClient {
  app: Awaited<ReturnType<typeof buildApp>>;
  /** Connected as the runtime role, like the app: a missing GRANT fails the tests. */
  db: Database;
  /** The database as its owner (admin): for direct SQL a test needs beyond what the service may do. */
  url: string;
  /** The database as the runtime role (what `db` and the app use). */
  runtimeUrl: string;
  close(): Promise<void>;
}

/** A client of the app `appOf()` returns when called (useTestApp's app exists only once beforeAll ran). */
function clientOf(appOf: () => TestApp["app"], defaultRole: TestRole): TestClient {
  const c: TestClient = {
    post: (url, payload, role = defaultRole, headers = {}) =>
      appOf().inject({ method: "POST", url, payload: payload as object, headers: { ...auth(role), ...headers } }),
    get: (url, role = defaultRole) => appOf().inject({ method: "GET", url, headers: auth(role) }),
    async createContract(body) {
      const res = await c.post("/v1/contracts", body, "writer");
      expect(res.statusCode, res.body).toBe(201);
      return res.json();
    },
    sendUsage: (events, role = "writer") => c.post("/v1/usage", { events }, role),
    async ingest(events) {
      const res = await c.sendUsage(events);
      expect(res.statusCode, res.body).toBeLessThan(300);
      return res.json();
    },
    async preview(contractId, periodStart) {
      const res = await c.post(`/v1/contracts/${contractId}/true-ups/preview`, periodStart ? { periodStart } : {}, "writer");
      expect(res.statusCode, res.body).toBe(201);
      return res.json();
    },
    issue: (contractId, calculationId, key) =>
      c.post(`/v1/contracts/${contractId}/true-ups`, { calculationId }, "approver", key ? { "idempotency-key": key } : {}),
    async approveAll(calculation) {
      for (const e of calculation.exceptions.filter((x) => x.blocking && x.status !== "approved")) {
        const res = await c.post(`/v1/exceptions/${e.id}/resolve`, { decision: "approve", note: "checked with the customer" }, "approver");
        expect(res.statusCode, res.body).toBe(200);
      }
    },
    as: (role) => clientOf(appOf, role),
  };
  return c;
}

export async function startTestApp(overrides: Record<string, string> = {}, extra: Partial<Parameters<typeof buildApp>[0]> = {}): Promise<TestApp> {
  const url = await createTestDatabase();
  const runtimeUrl = runtimeUrlOf(url);
  const db = connectDatabase(runtimeUrl, 10);
  // A fixed audit signing key, so no test generates one into a DATA_DIR (docs/audit.md).
  const config = loadConfig({ DATA_DIR: "/tmp/unused", AUDIT_SIGNING_KEY: TEST_AUDIT_SIGNING_KEY, ...overrides });
  // Load shedding is tested on its own (isOverloaded); elsewhere a busy CI machine must not turn answers into 503s.
  const app = await buildApp({ config, db, keys: keyRing(), logger: false, clock: testClock, maxEventLoopDelayMs: 60_000, ...extra });
  await app.ready();
  return {
    ...clientOf(() => app, "admin"),
    app,
    db,
    url,
    runtimeUrl,
    async close() {
      await app.close();
      await db.close();
    },
  };
}

/**
 * A real app on a fresh database for the enclosing file or describe block: started before its tests,
 * closed after. The returned object is filled in by beforeAll, so read its fields inside tests only (its
 * request methods, and `as(role)`'s, may be taken at the top of a file: they find the app when called).
 */
export function useTestApp(...args: Parameters<typeof startTestApp>): TestApp {
  const holder = clientOf(() => holder.app, "admin") as TestApp;
  beforeAll(async () => {
    const { app, db, url, runtimeUrl, close } = await startTestApp(...args);
    Object.assign(holder, { app, db, url, runtimeUrl, close });
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
