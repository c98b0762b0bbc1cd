// The real process, as `npm start` runs it: no DATABASE_URL and no API_KEYS, so it starts the embedded
// PostgreSQL under DATA_DIR, migrates, generates an admin key, prints where to go, and shuts down cleanly.
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const dataDir = mkdtempSync(join(tmpdir(), "rating-server-"));
chmodSync(dataDir, 0o755); // mkdtemp makes it 0700: the postgres user (we may be root) must reach its data
const children: ChildProcess[] = [];

interface Running {
  child: ChildProcess;
  baseUrl: string;
  swaggerUrl: string;
  adminKey: string;
  stdout: () => string;
  exited: Promise<number | null>;
}

function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ["DATABASE_URL", "API_KEYS", "PORT", "HOST", "DATA_DIR", "LOG_LEVEL", "NODE_OPTIONS"]) delete env[k];
  return { ...env, DATA_DIR: dataDir, PORT: "0", LOG_LEVEL: "info", ...extra };
}

/**
 * Spawns the server as `npm start` runs it (node_modules/.bin/node --import tsx src/server.ts: one process, so a
 * signal reaches the server itself); `direct`: with the node running the tests instead.
 */
function spawnServer(opts: { direct?: boolean; env?: Record<string, string> } = {}) {
  const node = opts.direct ? process.execPath : join(ROOT, "node_modules/.bin/node");
  const child = spawn(node, ["--import", "tsx", "src/server.ts"], { cwd: ROOT, env: baseEnv(opts.env) });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function startServer(opts: { direct?: boolean } = {}): Promise<Running> {
  const s = spawnServer(opts);
  const deadline = Date.now() + 90_000;
  let exitCode: number | null | undefined;
  void s.exited.then((c) => (exitCode = c));
  // The banner and pino's "listening on" line are written independently (pino asynchronously): wait for both.
  while (!/Admin key:\s+\S+/.test(s.stdout()) || !/listening on http/.test(s.stdout())) {
    if (exitCode !== undefined) throw new Error(`server exited ${exitCode}:\n${s.stdout()}\n${s.stderr()}`);
    if (Date.now() > deadline) throw new Error(`server did not start:\n${s.stdout()}\n${s.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const out = s.stdout();
  const listening = /listening on (http:\/\/[^\s"]+)/.exec(out);
  expect(listening, out).not.toBeNull();
  return {
    child: s.child,
    baseUrl: listening![1]!,
    swaggerUrl: /Swagger UI:\s+(\S+)/.exec(out)![1]!,
    adminKey: /Admin key:\s+(\S+)/.exec(out)![1]!,
    stdout: s.stdout,
    exited: s.exited,
  };
}

const pidFile = join(dataDir, "pg", "postmaster.pid");
const postmasterPid = () => Number.parseInt(readFileSync(pidFile, "utf8").split("\n")[0]!, 10);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGINT");
  await new Promise((r) => setTimeout(r, 500));
  if (existsSync(pidFile)) {
    const pid = postmasterPid();
    if (alive(pid)) process.kill(pid, "SIGINT");
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  }
  rmSync(dataDir, { recursive: true, force: true });
});

const contract = {
  customerId: "proc-cust",
  name: "Process test",
  currency: "USD",
  billingPeriod: "monthly",
  startDate: "2026-01-01",
  terms: { meters: [] },
};

describe("the server process", () => {
  let firstKey = "";
  let contractId = "";

  it("starts on the embedded PostgreSQL, prints Swagger UI, the admin key and 'listening on', serves /docs, exits 0 on SIGINT", { timeout: 180_000 }, async () => {
    const s = await startServer();
    expect(s.swaggerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/docs$/);
    expect(s.adminKey.length).toBeGreaterThanOrEqual(24);
    expect(s.stdout()).toMatch(/"msg":"listening on http:\/\/127\.0\.0\.1:\d+"/);
    expect(readFileSync(join(dataDir, "admin-key"), "utf8").trim()).toBe(s.adminKey);

    const docs = await fetch(s.swaggerUrl);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toMatch(/<html/i);
    expect((await fetch(`${s.baseUrl}/ready`)).status).toBe(200);
    expect((await fetch(`${s.baseUrl}/v1/contracts`)).status).toBe(401);

    const created = await fetch(`${s.baseUrl}/v1/contracts`, {
      method: "POST",
      headers: { authorization: `Bearer ${s.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify(contract),
    });
    expect(created.status).toBe(201);
    contractId = ((await created.json()) as { id: string }).id;
    firstKey = s.adminKey;

    expect(existsSync(pidFile)).toBe(true);
    s.child.kill("SIGINT");
    expect(await s.exited).toBe(0);
    expect(existsSync(pidFile), "PostgreSQL stopped with the server").toBe(false);
  });

  it("a second start reuses the data directory: same key, the contract is still there", { timeout: 180_000 }, async () => {
    const s = await startServer();
    expect(s.adminKey).toBe(firstKey);
    expect(s.stdout()).toMatch(/database schema up to date/);
    const res = await fetch(`${s.baseUrl}/v1/contracts/${contractId}`, { headers: { authorization: `Bearer ${s.adminKey}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { customerId: string }).customerId).toBe("proc-cust");
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
  });

  it("after a SIGKILL leaves PostgreSQL running, the next start stops it cleanly and starts", { timeout: 180_000 }, async () => {
    const killed = await startServer({ direct: true });
    const orphan = postmasterPid();
    killed.child.kill("SIGKILL");
    await killed.exited;
    expect(alive(orphan), "the postmaster outlives a SIGKILLed server").toBe(true);

    const s = await startServer();
    expect(alive(orphan)).toBe(false);
    expect(postmasterPid()).not.toBe(orphan);
    expect(s.stdout(), "no error logged while taking over").not.toMatch(/"level":(50|60)/);
    const res = await fetch(`${s.baseUrl}/v1/contracts/${contractId}`, { headers: { authorization: `Bearer ${s.adminKey}` } });
    expect(res.status).toBe(200);
    s.child.kill("SIGINT");
    expect(await s.exited).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
  });

  it("a bad environment value exits non-zero with a message naming the variable", { timeout: 60_000 }, async () => {
    const s = spawnServer({ env: { PORT: "abc" } });
    const code = await s.exited;
    expect(code).not.toBe(0);
    expect(s.stderr()).toMatch(/PORT/);
    expect(s.stderr()).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
  });
});
