// The service rides out a PostgreSQL outage without a restart: while the database is down, /ready and the API
// answer 503 with Retry-After (never a 500); once it is back on the same address, both work again.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { type Database, connectDatabase } from "../../src/db/client.js";
import { type EmbeddedDatabase, freePort, startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrate } from "../../src/db/migrator.js";
import { auth, keyRing, testClock } from "../helpers/app.js";

let dir: string;
let port: number;
let pg: EmbeddedDatabase | null = null;
let db: Database | undefined;
let app: Awaited<ReturnType<typeof buildApp>> | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "rating-recovery-"));
  chmodSync(dir, 0o755); // mkdtemp makes it 0700: the postgres user (we may be root) must reach its data
  port = await freePort();
  pg = await startEmbeddedPostgres({ dir, port });
  await migrate(pg.ownerUrl);
});

afterAll(async () => {
  await app?.close();
  await db?.close();
  await pg?.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const body = (customerId: string) => ({
  customerId,
  name: "Recovery",
  currency: "EUR",
  billingPeriod: "quarterly",
  startDate: "2026-01-01",
  terms: { meters: [] },
});

function expectUnavailable(res: { statusCode: number; headers: Record<string, unknown>; json(): any }) {
  expect(res.statusCode, JSON.stringify(res.json())).toBe(503);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status: 503, code: "unavailable", type: "/problems/unavailable" });
  expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
}

// The embedded server is reached over its Unix socket; a DATABASE_URL server (Docker) over TCP. Both fail
// differently (ENOENT vs ECONNREFUSED, wrapped differently by pg and by Prisma), so both are exercised.
const TRANSPORTS = [
  { name: "a Unix socket", url: (u: string) => u },
  { name: "TCP", url: (u: string) => u.replace(/\?host=[^&]*$/, "") },
];

describe.sequential.each(TRANSPORTS)("database outage, connected over $name", ({ name, url }) => {
  it("answers 503 while PostgreSQL is down and recovers by itself when it is back", { timeout: 120_000 }, async () => {
    await app?.close();
    await db?.close();
    db = connectDatabase(url(pg!.runtimeUrl), 4);
    // As every test app: load shedding is tested on its own, and a loaded machine must not turn answers into 503s.
    const current = await buildApp({ config: loadConfig({}), db, keys: keyRing(), logger: false, clock: testClock, maxEventLoopDelayMs: 60_000 });
    app = current;
    await current.ready();
    const tag = name.replace(/\W+/g, "-");
    const created = await current.inject({ method: "POST", url: "/v1/contracts", payload: body(`${tag}-before`), headers: auth("writer") });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().id;
    expect((await current.inject({ method: "GET", url: "/ready" })).statusCode).toBe(200);

    await pg!.stop();
    pg = null;

    expectUnavailable(await current.inject({ method: "GET", url: "/ready" }));
    expect((await current.inject({ method: "GET", url: "/health" })).statusCode).toBe(200); // the process itself is fine
    // Reads (Prisma), writes (interactive transactions) and raw pool queries all map to 503, several times over:
    // pooled connections that died with the server must not turn into 500s either.
    for (let i = 0; i < 3; i++) {
      expectUnavailable(await current.inject({ method: "GET", url: `/v1/contracts/${id}`, headers: auth("reader") }));
      expectUnavailable(await current.inject({ method: "GET", url: "/v1/contracts", headers: auth("reader") }));
      expectUnavailable(await current.inject({ method: "POST", url: "/v1/contracts", payload: body(`${tag}-during-${i}`), headers: auth("writer") }));
    }

    pg = await startEmbeddedPostgres({ dir, port });

    // Back on the same port: no restart of the app, the pool reconnects.
    let ready = 0;
    for (let i = 0; i < 50 && ready !== 200; i++) {
      ready = (await current.inject({ method: "GET", url: "/ready" })).statusCode;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(200);
    const again = await current.inject({ method: "GET", url: `/v1/contracts/${id}`, headers: auth("reader") });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().customerId).toBe(`${tag}-before`);
    const after = await current.inject({ method: "POST", url: "/v1/contracts", payload: body(`${tag}-after`), headers: auth("writer") });
    expect(after.statusCode, after.body).toBe(201);
    const list = await current.inject({ method: "GET", url: "/v1/contracts?limit=500", headers: auth("reader") });
    const mine = list.json().data.map((c: { customerId: string }) => c.customerId).filter((c: string) => c.startsWith(tag));
    expect(mine).toEqual([`${tag}-before`, `${tag}-after`]);
  });
});
