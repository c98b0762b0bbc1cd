// The real app as child node processes on a test database, for tests that kill and restart the service
// (test/process/*-crash.test.ts): routes, services and the job worker inline, the test clock, the given keys,
// configuration from loadConfig over the given variables. Cleaned up after the file.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, expect } from "vitest";
import type { Role } from "../../src/config.js";
import { TEST_AUDIT_SIGNING_KEY, TEST_NOW, createTestDatabase, runtimeUrlOf } from "./app.js";
import { type Receiver, startReceiver } from "./receiver.js";

export interface ChildDb {
  /** The service's URL: the runtime role (a missing GRANT fails the test), tagged with the file's application name. */
  runtime: string;
  /** The owner, for looking at the tables and the queue. */
  admin: pg.Pool;
}

export interface Child {
  child: ChildProcess;
  base: string;
}

/** Polls `cond` every `every` ms until it holds (throws after `ms`). */
export async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 30_000, every = 20) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export function useChildApps(opts: { name: string; keys: { name: string; role: Role; secret: string }[]; defaultKey: string; config?: Record<string, string> }) {
  const appName = `${opts.name}-child`;
  let dir: string;
  let script: string;
  const children: ChildProcess[] = [];
  const receivers: Receiver[] = [];
  const pools: pg.Pool[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `${opts.name}-`));
    script = join(dir, "server.mts");
    const src = (p: string) => JSON.stringify(pathToFileURL(resolve(p)).href);
    // CHILD_CONFIG is the environment the child's configuration is loaded from.
    writeFileSync(
      script,
      `import { buildApp } from ${src("src/app.ts")};
import { loadConfig } from ${src("src/config.ts")};
import { fixedClock } from ${src("src/clock.ts")};
import { connectDatabase } from ${src("src/db/client.ts")};
import { KeyRing } from ${src("src/http/plugins/auth.ts")};
const db = connectDatabase(process.env.CHILD_DATABASE_URL, 10);
const app = await buildApp({
  config: loadConfig({
    DATA_DIR: "/tmp/unused",
    AUDIT_SIGNING_KEY: ${JSON.stringify(TEST_AUDIT_SIGNING_KEY)},
    RATE_LIMIT_PER_MINUTE: "1000000",
    ...JSON.parse(process.env.CHILD_CONFIG ?? "{}"),
  }),
  clock: fixedClock(${JSON.stringify(TEST_NOW)}),
  db,
  keys: new KeyRing(${JSON.stringify(opts.keys)}),
  logger: false,
  maxEventLoopDelayMs: 60000,
});
await app.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write("PORT " + app.server.address().port + "\\n");
`,
    );
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(receivers.map((r) => r.close().catch(() => undefined)));
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const childBackends = async (db: ChildDb) =>
    (await db.admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", [appName])).rows[0].n as number;

  async function call(c: Child, method: "GET" | "POST", path: string, body?: unknown, key = opts.defaultKey): Promise<{ status: number; body: any }> {
    const res = await fetch(`${c.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  return {
    async freshDatabase(): Promise<ChildDb> {
      const owner = await createTestDatabase();
      const u = new URL(runtimeUrlOf(owner));
      u.searchParams.set("application_name", appName);
      const admin = new pg.Pool({ connectionString: owner, max: 3 });
      pools.push(admin);
      return { runtime: u.toString(), admin };
    },

    async receiver(): Promise<Receiver> {
      const r = await startReceiver();
      receivers.push(r);
      return r;
    },

    /** A process of the test's own (killed after the file if still alive). */
    track(child: ChildProcess): void {
      children.push(child);
    },

    /** Starts the service as one node process (no npx/tsx wrapper whose death would orphan the real server). */
    async startChild(db: ChildDb, config: Record<string, string> = opts.config ?? {}): Promise<Child> {
      const child = spawn(process.execPath, ["--import", "tsx", script], {
        cwd: resolve("."),
        env: { ...process.env, CHILD_DATABASE_URL: db.runtime, CHILD_CONFIG: JSON.stringify(config) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      let err = "";
      child.stderr!.on("data", (d) => (err += String(d)));
      const port = await new Promise<number>((res, rej) => {
        let out = "";
        const timer = setTimeout(() => rej(new Error(`child did not start: ${err}`)), 60_000);
        child.stdout!.on("data", (d) => {
          out += String(d);
          const m = /PORT (\d+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            res(Number(m[1]));
          }
        });
        child.on("exit", (code, signal) => {
          clearTimeout(timer);
          rej(new Error(`child exited ${code ?? signal}: ${err}`));
        });
      });
      return { child, base: `http://127.0.0.1:${port}` };
    },

    call,

    async ok(c: Child, method: "GET" | "POST", path: string, body?: unknown, key = opts.defaultKey, status = method === "GET" ? 200 : 201) {
      const res = await call(c, method, path, body, key);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(status);
      return res.body;
    },

    /** SIGKILL, and (unless other children still hold sessions) wait until PostgreSQL has noticed: the dead process's sessions are gone. */
    async kill(db: ChildDb, c: Child, othersAlive = 0) {
      c.child.kill("SIGKILL");
      await new Promise((r) => (c.child.exitCode !== null || c.child.signalCode !== null ? r(null) : c.child.once("exit", r)));
      expect(c.child.signalCode).toBe("SIGKILL");
      if (othersAlive === 0) await until("the killed child's sessions to end", async () => (await childBackends(db)) === 0);
    },
  };
}
