// What every benchmark (and scripts/write-openapi.ts) sets up the same way: a temporary directory the embedded
// PostgreSQL can reach, the cluster, the migrations applied as the owner, the real app on the runtime role with
// one API key, everything stopped in `finally`; and a figure's ratio to its baseline, against the bench's target.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import pgLib from "pg";
import { buildApp } from "../src/app.js";
import type { Clock } from "../src/clock.js";
import { type Role, loadConfig } from "../src/config.js";
import { type Database, connectDatabase } from "../src/db/client.js";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrator.js";
import { KeyRing } from "../src/http/plugins/auth.js";

export type App = Awaited<ReturnType<typeof buildApp>>;

// A full collection between a bench's phases: what one phase left (a million rows loaded, the last case's
// direct SQL) is not charged to the next phase's latencies by the first scavenge that meets it, which then
// copies and promotes megabytes (19–31 ms seen) where a steady service's scavenge takes 1–3 ms.
setFlagsFromString("--expose-gc");
const fullGc = runInNewContext("gc") as () => void;

/** A full garbage collection, now. */
export function collectGarbage(): void {
  fullGc();
}

const KEY = "bench-api-key-secret";

export interface AppOptions {
  /** Configuration variables over the defaults (loadConfig). */
  env?: Record<string, string>;
  /** The role of the one API key (none: no key, as for the OpenAPI document). */
  role?: Role;
  clock?: Clock;
  maxEventLoopDelayMs?: number;
}

/** The real app on `db`, quiet, with the bench's API key when a role is given. */
export function appOn(db: Database, opts: AppOptions = {}): Promise<App> {
  return buildApp({
    config: loadConfig(opts.env ?? {}),
    db,
    keys: new KeyRing(opts.role ? [{ name: "bench", role: opts.role, secret: KEY }] : []),
    logger: false,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.maxEventLoopDelayMs ? { maxEventLoopDelayMs: opts.maxEventLoopDelayMs } : {}),
  });
}

export interface BenchOptions extends AppOptions {
  /** Names the temporary directory: bench-<name>-… */
  name: string;
  database?: string;
  /** Connect as the owner instead of the runtime role (a baseline that reads server files or creates tables). */
  asOwner?: boolean;
  poolSize?: number;
  /** Listen on a free port (clients over real sockets) rather than only getting ready (inject). */
  listen?: boolean;
}

export interface Bench {
  dir: string;
  pg: EmbeddedDatabase;
  db: Database;
  app: App;
  /** http://127.0.0.1:port when listening, else "". */
  base: string;
  /** The Authorization header of the bench's API key. */
  auth: { authorization: string };
  /**
   * VACUUM ANALYZE as the owner after a bulk load: the runtime role may not (PostgreSQL skips the tables
   * with a warning), and previews planned on empty statistics scan what the partial indexes should find.
   */
  analyze(...tables: string[]): Promise<void>;
  /**
   * CHECKPOINT as the owner after a bulk load, so its dirty pages are written before the measurements start
   * rather than by the checkpointer (or evicting backends) during them.
   */
  checkpoint(): Promise<void>;
}

/** Runs `body` against a fresh cluster and app; stops the app, the pool and PostgreSQL and removes the directory after. */
export async function withBench(opts: BenchOptions, body: (b: Bench) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `bench-${opts.name}-`));
  chmodSync(dir, 0o755); // run as root, the cluster runs as postgres, which must reach its directory
  const pg = await startEmbeddedPostgres({ dir, ...(opts.database ? { database: opts.database } : {}) });
  let db: Database | undefined;
  let app: App | undefined;
  try {
    await migrate(pg.ownerUrl);
    // No statement timeout: seeding loads millions of rows per statement.
    db = connectDatabase(opts.asOwner ? pg.ownerUrl : pg.runtimeUrl, opts.poolSize ?? 10, { statementTimeoutMs: 0 });
    app = await appOn(db, { ...opts, env: { RATE_LIMIT_PER_MINUTE: "10000000", ...opts.env } });
    let base = "";
    if (opts.listen) base = await app.listen({ port: 0, host: "127.0.0.1" });
    else await app.ready();
    const asOwner = async (...statements: string[]) => {
      const owner = new pgLib.Client({ connectionString: pg.ownerUrl });
      await owner.connect();
      try {
        for (const s of statements) await owner.query(s);
      } finally {
        await owner.end();
      }
    };
    const analyze = (...tables: string[]) => asOwner(...tables.map((t) => `VACUUM ANALYZE ${t}`));
    const checkpoint = () => asOwner("CHECKPOINT");
    await body({ dir, pg, db, app, base, auth: { authorization: `Bearer ${KEY}` }, analyze, checkpoint });
  } finally {
    await app?.close().catch(() => undefined);
    await db?.close();
    await pg.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A figure against its baseline: the ratio, and the ratio against the target the bench holds it to. */
export function ratioToBaseline(value: number, baseline: number, target: number): { ratio: number; text: string } {
  const ratio = value / baseline;
  return { ratio, text: `${ratio.toFixed(2)} (target ≥ ${target.toFixed(2)}) ${ratio >= target ? "OK" : "BELOW TARGET"}` };
}

/** Runs a bench's main: a failure prints its stack and exits 1. */
export function run(main: () => Promise<void>): void {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
