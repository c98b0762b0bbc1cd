// Atomic under faults: the real app in a child process is SIGKILLed in the middle of a 10,000-event batch;
// afterwards the batch is either fully stored or absent (and the rollups agree), and resending it after a
// restart stores it exactly once.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_NOW, createTestDatabase } from "../helpers/app.js";

const APP_NAME = "usage-crash-child";
const SECRET = "crash-test-writer-secret";
const AUDIT_LOCK = 4_242_001; // src/db/queries/audit.ts

let url: string;
let admin: pg.Pool;
let dir: string;
let script: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  const u = new URL(await createTestDatabase());
  admin = new pg.Pool({ connectionString: u.toString(), max: 3 });
  u.searchParams.set("application_name", APP_NAME);
  url = u.toString();
  dir = mkdtempSync(join(tmpdir(), "usage-crash-"));
  script = join(dir, "server.mts");
  const src = (p: string) => JSON.stringify(pathToFileURL(resolve(p)).href);
  // The real app (same plugins, routes and services) listening on a free port.
  writeFileSync(
    script,
    `import { buildApp } from ${src("src/app.ts")};
import { loadConfig } from ${src("src/config.ts")};
import { fixedClock } from ${src("src/clock.ts")};
import { connectDatabase } from ${src("src/db/client.ts")};
import { KeyRing } from ${src("src/http/plugins/auth.ts")};
const db = connectDatabase(process.env.CHILD_DATABASE_URL, 4);
const app = await buildApp({
  config: loadConfig({ DATA_DIR: "/tmp/unused" }),
  clock: fixedClock(${JSON.stringify(TEST_NOW)}),
  db,
  keys: new KeyRing([{ name: "crash-writer", role: "writer", secret: ${JSON.stringify(SECRET)} }]),
  logger: false,
  maxEventLoopDelayMs: 60000,
});
await app.listen({ port: 0, host: "127.0.0.1" });
const a = app.server.address();
process.stdout.write("PORT " + a.port + "\\n");
`,
  );
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await admin?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts the server as one node process (no npx/tsx wrapper whose death would orphan the real server). */
async function startChild(): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: resolve("."),
    env: { ...process.env, CHILD_DATABASE_URL: url },
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
    child.on("exit", (code) => rej(new Error(`child exited ${code}: ${err}`)));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}

function batch(customerId: string) {
  return {
    events: Array.from({ length: 10_000 }, (_, i) => ({
      eventId: `k-${i}`,
      customerId,
      metric: i % 2 ? "api_calls" : "storage_gb",
      quantity: `${(i % 50) + 1}.25`,
      timestamp: new Date(Date.parse("2026-08-01T00:00:00Z") + i * 37_000).toISOString(),
      properties: { i },
    })),
  };
}

function send(base: string, body: unknown) {
  return fetch(`${base}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  }).then(
    async (r) => ({ status: r.status, body: (await r.json()) as any }),
    () => null, // the connection died with the process
  );
}

async function waitFor(cond: () => Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const childBackends = async (filter = "") =>
  (await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 ${filter}`, [APP_NAME])).rows[0].n as number;

async function killOnly(child: ChildProcess) {
  child.kill("SIGKILL");
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once("exit", r)));
}

async function kill(child: ChildProcess) {
  await killOnly(child);
  // PostgreSQL notices the dead client and rolls back its open transaction; wait until it has.
  await waitFor(async () => (await childBackends()) === 0);
}

async function stored(customerId: string) {
  const e = await admin.query("SELECT count(*)::int AS n FROM usage_events WHERE customer_id = $1", [customerId]);
  const r = await admin.query("SELECT coalesce(sum(events), 0)::int AS n FROM usage_rollups WHERE customer_id = $1", [customerId]);
  return { events: e.rows[0].n as number, rolled: r.rows[0].n as number };
}

describe("SIGKILL in the middle of a 10,000-event batch", () => {
  it("leaves nothing when killed after the rows are written but before COMMIT, then stores the batch once on resend", async () => {
    const customer = `crash-a-${Date.now()}`;
    const { child } = await startChild().then(async (c) => {
      // Hold the audit chain's lock: the batch's transaction writes all its events and rollups, then waits here.
      const holder = await admin.connect();
      await holder.query("SELECT pg_advisory_lock($1)", [AUDIT_LOCK]);
      try {
        void send(c.base, batch(customer));
        await waitFor(async () => (await childBackends("AND wait_event_type = 'Lock' AND wait_event = 'advisory'")) > 0);
        // The 10,000 rows exist inside the open transaction (invisible to us), and the process dies now.
        await killOnly(c.child);
      } finally {
        await holder.query("SELECT pg_advisory_unlock($1)", [AUDIT_LOCK]);
        holder.release();
      }
      // A backend waiting on a lock notices its dead client only once it gets the lock: then it rolls back.
      await waitFor(async () => (await childBackends()) === 0);
      return c;
    });
    expect(child.signalCode).toBe("SIGKILL");
    expect(await stored(customer)).toEqual({ events: 0, rolled: 0 });

    const restarted = await startChild();
    const res = await send(restarted.base, batch(customer));
    expect(res).toMatchObject({ status: 200, body: { accepted: 10_000, duplicates: 0, conflicts: [] } });
    expect(await stored(customer)).toEqual({ events: 10_000, rolled: 10_000 });
    await kill(restarted.child);
  });

  it("is all or nothing wherever the kill lands (during the INSERT, or at random moments)", async () => {
    const delays = ["insert", 0, 150, 400, 900];
    for (const [round, when] of delays.entries()) {
      const customer = `crash-b-${round}-${Date.now()}`;
      const c = await startChild();
      const reply = send(c.base, batch(customer));
      if (when === "insert")
        await waitFor(async () => (await childBackends("AND state = 'active' AND query LIKE '%INSERT INTO usage_events%'")) > 0);
      else await new Promise((r) => setTimeout(r, when as number));
      await kill(c.child);
      await reply;
      const s = await stored(customer);
      expect([0, 10_000], `round ${round} (${String(when)}): ${JSON.stringify(s)}`).toContain(s.events);
      expect(s.rolled).toBe(s.events);

      // After a restart the same batch completes exactly once.
      const again = await startChild();
      const res = await send(again.base, batch(customer));
      expect(res?.status).toBe(200);
      expect(res!.body.accepted + res!.body.duplicates).toBe(10_000);
      expect(res!.body.accepted).toBe(10_000 - s.events);
      expect(await stored(customer)).toEqual({ events: 10_000, rolled: 10_000 });
      await kill(again.child);
    }
  }, 180_000); // five real server processes started and killed: about 40 s alone, far more on a loaded machine
});
