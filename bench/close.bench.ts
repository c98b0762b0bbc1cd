// npm run bench:close — closing a month for the whole book (DESIGN.md §10): 10,000 monthly contracts with 3 meters
// (api_calls: sum, per_unit above 1,000 included; storage_gb: max, per_unit; seats: latest, graduated) and
// 1,000,000 events in October 2026, billed by one billing run with autoIssue started through HTTP (a real socket),
// timed from the POST until GET /v1/billing-runs/{id} says completed. Target: ≤ 60 s on 2 cores (≥ 167 contracts/s),
// one document each.
//
// Seeding: one contract is created through POST /v1/contracts and cloned with SQL (contracts, version 1 with the very
// terms the API stored, contract identifiers) — what createContract writes, less its audit entries; the events are
// loaded with INSERT … SELECT generate_series (two connections) and their rollups built by the service's own rebuild
// (db/queries/usage.ts rebuildRollups), as ingestion would have kept them; then VACUUM ANALYZE and CHECKPOINT as the
// owner.
//
// The worker is the service's own (src/worker.ts startWorker, WORKER_CONCURRENCY jobs at once, on the app's pool in
// the app's process: the app runs with WORKER=off and the bench starts the same worker itself, which is what
// WORKER=inline does at onReady) so that the bench can listen to graphile-worker's job events. A job bills a chunk
// of contracts (services/billing-runs/bill-contracts.ts): its time is from its start to its success, and a
// contract's is its job's divided by the job's contracts. The job's phases come from its audit append (stamped by
// the JS clock inside appendAuditEntries, once the chain's lock is held, the last step before COMMIT): start →
// entry ≈ claiming, rating, storing and issuing the chunk; entry → end ≈ the commit and the run's completion check.
//
// Baselines, measured in the same run on BENCH_BASELINE extra contracts of the same shape (issued before the run,
// so the run skips them): one preview + one issue through HTTP per contract, one at a time (× contracts:
// extrapolated), and CONCURRENCY at a time (the throughput the API gives the same work); and the serial floor of
// the audit chain for contracts billed one by one (the API's path): an audited transaction holds the chain's
// advisory lock from its append to its commit, and a contract needs two (preview, issue), so 2 × contracts × (the
// lock's share of one bare appendAudit transaction, measured) is a bound no concurrency can beat that way; a
// chunk takes the lock once for all its contracts.
//
// While the run goes, pg_stat_activity is sampled (what the service's backends wait on), CPU time is read for the
// node process and the cluster's PostgreSQL processes, and with BENCH_PROFILE=1 a CPU profile of the node process
// is taken (written to the temporary directory, its self time summarised by module); with BENCH_QUERIES=1 every query the
// process sends is timed (round trip, as the node side sees it, waits included) and the statements are ranked.
//
// Env: BENCH_CONTRACTS (10000), BENCH_EVENTS_PER_CONTRACT (100: 60 api_calls, 20 storage_gb, 20 seats),
// BENCH_CONCURRENCY (4: WORKER_CONCURRENCY), BENCH_BASELINE (100: contracts per baseline), BENCH_PROFILE and
// BENCH_QUERIES (unset).
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pgLib from "pg";
import { fixedClock } from "../src/clock.js";
import { loadConfig } from "../src/config.js";
import { rebuildRollups } from "../src/db/queries/usage.js";
import { transaction } from "../src/db/tx.js";
import { appendAudit } from "../src/services/audit/append.js";
import { startWorker } from "../src/worker.js";
import { type Bench, run, withBench } from "./harness.js";

const int = (name: string, dflt: number) => Number.parseInt(process.env[name] ?? String(dflt), 10);
const CONTRACTS = int("BENCH_CONTRACTS", 10_000);
const PER_CONTRACT = int("BENCH_EVENTS_PER_CONTRACT", 100);
const CONCURRENCY = int("BENCH_CONCURRENCY", 4);
const BASELINE = int("BENCH_BASELINE", 100);
const PROFILE = process.env.BENCH_PROFILE === "1";
const QUERIES = process.env.BENCH_QUERIES === "1";
const TARGET_SECONDS = 60;
const TARGET_RATE = 10_000 / TARGET_SECONDS;

const NOW = "2026-11-15T12:00:00Z";
const OCTOBER = "2026-10-01T00:00:00.000Z";
const OCTOBER_SECONDS = 31 * 86_400;
const LOAD_CHUNK = 250_000;

const log = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number) => n.toLocaleString("en-US");
/** The nearest-rank percentile. */
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;
const secs = (x: number) => `${(x / 1000).toFixed(1)} s`;

async function inParallel(n: number, jobs: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let j = next++; j < jobs.length; j = next++) await jobs[j]!();
    }),
  );
}

const TERMS = {
  platformFee: { amount: "500.00" },
  meters: [
    { id: "calls", metric: "api_calls", included: "1000", pricing: { model: "per_unit", unitPrice: "0.002" } },
    { id: "storage", metric: "storage_gb", aggregation: "max", pricing: { model: "per_unit", unitPrice: "0.10" } },
    {
      id: "seats",
      metric: "seats",
      aggregation: "latest",
      pricing: { model: "graduated", tiers: [{ upTo: "10", unitPrice: "20.00" }, { upTo: null, unitPrice: "15.00" }] },
    },
  ],
};
const METRICS = ["api_calls", "storage_gb", "seats"] as const;

type Call = (method: "GET" | "POST", path: string, body?: unknown, headers?: Record<string, string>) => Promise<any>;

/** The run's contracts (close-00000 …) and the baselines' (base-00000 …): one through the API, the rest cloned with SQL. */
async function seed(b: Bench, call: Call): Promise<void> {
  const t0 = performance.now();
  const q = (text: string, params: unknown[] = []) => b.db.pool.query(text, params);
  const template = await call("POST", "/v1/contracts", {
    customerId: "close-00000", name: "close-00000", currency: "USD", billingPeriod: "monthly", startDate: "2026-10-01", endDate: "2027-09-30", terms: TERMS,
  });
  const customers = `(SELECT 'close-' || lpad(g::text, 5, '0') AS customer_id FROM generate_series(1, $2::int - 1) g
                      UNION ALL SELECT 'base-' || lpad(g::text, 5, '0') FROM generate_series(0, $3::int - 1) g)`;
  await q(
    `INSERT INTO contracts (id, customer_id, account_ids, name, currency, timezone, billing_period, start_date, end_date, term_start, term_end,
                            rounding_mode, allow_true_down, created_by)
     SELECT uuidv7(), n.customer_id, t.account_ids, n.customer_id, t.currency, t.timezone, t.billing_period, t.start_date, t.end_date, t.term_start, t.term_end,
            t.rounding_mode, t.allow_true_down, t.created_by
     FROM contracts t CROSS JOIN ${customers} n WHERE t.id = $1::uuid`,
    [template.id, CONTRACTS, BASELINE],
  );
  await q(
    `INSERT INTO contract_versions (id, contract_id, version, effective_from, signed_at, kind, reason, terms, created_by)
     SELECT uuidv7(), c.id, 1, v.effective_from, v.signed_at, v.kind, v.reason, v.terms, v.created_by
     FROM contracts c JOIN contract_versions v ON v.contract_id = $1::uuid WHERE c.id <> $1::uuid`,
    [template.id],
  );
  await q(
    `INSERT INTO contract_identifiers (contract_id, identifier, term_start, term_end)
     SELECT id, customer_id, term_start, term_end FROM contracts WHERE id <> $1::uuid`,
    [template.id],
  );
  const t1 = performance.now();

  // Event g: contract g / PER_CONTRACT (run contracts first, then the baselines'), its k = g % PER_CONTRACT-th:
  // the first 60% api_calls, then 20% storage_gb, then seats; spread over October.
  const total = (CONTRACTS + BASELINE) * PER_CONTRACT;
  const calls = Math.round(PER_CONTRACT * 0.6);
  const storage = Math.round(PER_CONTRACT * 0.8);
  const jobs: (() => Promise<void>)[] = [];
  for (let lo = 0; lo < total; lo += LOAD_CHUNK) {
    const hi = Math.min(total, lo + LOAD_CHUNK) - 1;
    jobs.push(async () => {
      await q(
        `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash)
         SELECT CASE WHEN g / $3 < $4 THEN 'close-' || lpad((g / $3)::text, 5, '0') ELSE 'base-' || lpad((g / $3 - $4)::text, 5, '0') END,
                'e' || lpad(g::text, 10, '0'),
                CASE WHEN g % $3 < $5 THEN 'api_calls' WHEN g % $3 < $6 THEN 'storage_gb' ELSE 'seats' END,
                CASE WHEN g % $3 < $5 THEN 1 + (g * 7919) % 100 WHEN g % $3 < $6 THEN 10 + (g * 31) % 500 ELSE 5 + (g * 13) % 20 END,
                timestamptz '${OCTOBER}' + (((g % $3) + 0.5) * (${OCTOBER_SECONDS}.0 / $3) + (g / $3) % 600) * interval '1 second',
                md5(g::text)
         FROM generate_series($1::bigint, $2::bigint) g`,
        [lo, hi, PER_CONTRACT, CONTRACTS, calls, storage],
      );
    });
  }
  await inParallel(2, jobs);
  // Statistics first: planned without them, each rebuild chunk scans every event.
  await b.analyze("usage_events");
  const t2 = performance.now();
  const { rows: ids } = await q("SELECT customer_id FROM contracts ORDER BY customer_id");
  const pairs = ids.flatMap((r: { customer_id: string }) => METRICS.map((metric) => ({ customer_id: r.customer_id, metric })));
  const chunks: (() => Promise<void>)[] = [];
  for (let i = 0; i < pairs.length; i += 600) chunks.push(() => rebuildRollups(b.db.sql, pairs.slice(i, i + 600)));
  await inParallel(2, chunks);
  const t3 = performance.now();
  await b.analyze("contracts", "contract_versions", "contract_identifiers", "usage_events", "usage_rollups");
  await b.checkpoint();
  log(
    `seeded ${fmt(CONTRACTS)} + ${fmt(BASELINE)} contracts in ${secs(t1 - t0)}, ${fmt(total)} events (and ANALYZE) in ${secs(t2 - t1)}, ` +
      `rollups in ${secs(t3 - t2)}, VACUUM ANALYZE and CHECKPOINT in ${secs(performance.now() - t3)}`,
  );
}

/** The cluster's PostgreSQL processes (the postmaster and its children): their CPU seconds so far, from /proc. */
function postgresCpuSeconds(dir: string): () => number {
  const find = (d: string): string | null => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isFile() && e.name === "postmaster.pid") return join(d, e.name);
      if (e.isDirectory()) {
        const f = find(join(d, e.name));
        if (f) return f;
      }
    }
    return null;
  };
  const pidFile = find(dir);
  const postmaster = pidFile ? Number(readFileSync(pidFile, "utf8").split("\n")[0]) : Number.NaN;
  const tick = 100; // USER_HZ on Linux
  return () => {
    let total = 0;
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const ppid = Number(f[1]);
        if (Number(pid) === postmaster || ppid === postmaster) total += (Number(f[11]) + Number(f[12])) / tick;
      } catch {
        // gone meanwhile
      }
    }
    return total;
  };
}

/** The CPU profile's self time by module (file under src/, package under node_modules, or V8's own entries). */
function summariseProfile(profile: { nodes: { id: number; callFrame: { url: string; functionName: string; lineNumber: number } }[]; samples: number[]; timeDeltas: number[] }) {
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const total = [...self.values()].reduce((s, x) => s + x, 0);
  for (const n of profile.nodes) {
    const t = self.get(n.id) ?? 0;
    if (!t) continue;
    const url = n.callFrame.url;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const local = /\/(src|bench)\/(.*)$/.exec(url);
    const module = pkg ? `npm:${pkg}` : local ? `${local[1]}/${local[2]!.split("/").slice(0, -1).join("/") || "."}` : url.startsWith("node:") ? "node:internal" : url || `(${n.callFrame.functionName || "anonymous"})`;
    byModule.set(module, (byModule.get(module) ?? 0) + t);
    const fn = `${n.callFrame.functionName || "(anonymous)"} ${pkg ? `npm:${pkg}` : local ? `${local[1]}/${local[2]}:${n.callFrame.lineNumber + 1}` : url}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + t);
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `    ${((100 * v) / total).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(2).padStart(6)} s  ${k}`);
  log(`  CPU profile of the node process during the run (${(total / 1000).toFixed(1)} s sampled), self time by module:`);
  for (const l of top(byModule, 16)) log(l);
  log("  by function:");
  for (const l of top(byFunction, 20)) log(l);
}

/** Times every query of every pg client in this process (the app's pool and graphile-worker's), by statement text. */
function timeQueries(): { on: boolean; byText: Map<string, { n: number; ms: number }> } {
  const state = { on: false, byText: new Map<string, { n: number; ms: number }>() };
  const original = pgLib.Client.prototype.query as (...args: any[]) => any;
  (pgLib.Client.prototype as any).query = function (this: unknown, ...args: any[]) {
    if (!state.on) return original.apply(this, args);
    const first = args[0];
    const text = String(typeof first === "string" ? first : (first?.text ?? "?")).replace(/\s+/g, " ").trim().slice(0, 110);
    const t = performance.now();
    const done = () => {
      const e = state.byText.get(text) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += performance.now() - t;
      state.byText.set(text, e);
    };
    const cb = args.findIndex((a) => typeof a === "function");
    if (cb >= 0) {
      const f = args[cb];
      args[cb] = (...r: unknown[]) => {
        done();
        return f(...r);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result && typeof result.then === "function") result.then(done, done);
    return result;
  };
  return state;
}

async function main() {
  const queries = QUERIES ? timeQueries() : undefined;
  const poolSize = Math.max(10, CONCURRENCY + 6);
  const env = { WORKER: "off", WORKER_CONCURRENCY: String(CONCURRENCY) };
  await withBench({ name: "close", role: "admin", clock: fixedClock(NOW), listen: true, poolSize, env, maxEventLoopDelayMs: 60_000 }, async (b) => {
    const call: Call = async (method, path, body, headers = {}) => {
      const res = await fetch(`${b.base}${path}`, {
        method,
        headers: { ...b.auth, ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 500)}`);
      return text ? JSON.parse(text) : null;
    };
    const q = <T extends pgLib.QueryResultRow = any>(text: string, params: unknown[] = []) => b.db.pool.query<T>(text, params).then((r) => r.rows);
    await seed(b, call);

    // Baseline 1: preview + issue through HTTP, one contract at a time, then CONCURRENCY at a time.
    const baseIds = (await q<{ id: string }>("SELECT id::text AS id FROM contracts WHERE customer_id LIKE 'base-%' ORDER BY customer_id")).map((r) => r.id);
    const closeOne = async (id: string) => {
      const calc = await call("POST", `/v1/contracts/${id}/true-ups/preview`, { periodStart: OCTOBER });
      await call("POST", `/v1/contracts/${id}/true-ups`, { calculationId: calc.id }, { "idempotency-key": `bench:${id}:${calc.inputsHash}` });
    };
    const half = Math.floor(baseIds.length / 2);
    const serial: number[] = [];
    for (const id of baseIds.slice(0, half)) {
      const t = performance.now();
      await closeOne(id);
      serial.push(performance.now() - t);
    }
    const concurrent = baseIds.slice(half);
    const tc = performance.now();
    await inParallel(CONCURRENCY, concurrent.map((id) => () => closeOne(id)));
    const concurrentRate = concurrent.length / ((performance.now() - tc) / 1000);

    // Baseline 2: the audit chain's serial floor: bare audited transactions, one after another.
    const audits: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await transaction(b.db, (sql) => appendAudit(sql, { actor: "bench", action: "bench.floor", entityType: "bench", entityId: String(i), payload: { i } }));
      audits.push(performance.now() - t);
    }
    const auditMs = pct(audits, 50);
    // … of which the commit's WAL flush: a transaction that only takes a transaction id (its commit is flushed).
    const commits: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await b.db.pool.query("SELECT pg_current_xact_id()");
      commits.push(performance.now() - t);
    }
    const commitMs = pct(commits, 50);

    // The run.
    const config = loadConfig(env);
    const worker = await startWorker({ db: b.db, config, clock: fixedClock(NOW) });
    const jobStart = new Map<string, number>();
    const jobTimes = new Map<string, { start: number; end: number; contractIds: string[] }>();
    worker.events.on("job:start", ({ job }) => {
      if (job.task_identifier === "bill_contracts") jobStart.set(String(job.id), performance.now());
    });
    worker.events.on("job:success", ({ job }) => {
      if (job.task_identifier !== "bill_contracts") return;
      const start = jobStart.get(String(job.id));
      if (start !== undefined) jobTimes.set(String(job.id), { start, end: performance.now(), contractIds: (job.payload as { contractIds: string[] }).contractIds });
    });

    const owner = new pgLib.Client({ connectionString: b.pg.ownerUrl });
    await owner.connect();
    const waits = new Map<string, number>();
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await owner.query<{ what: string; n: number }>(
          `SELECT CASE WHEN state = 'idle' THEN 'idle (in the pool)'
                       WHEN state = 'idle in transaction' THEN 'idle in transaction (node working)'
                       WHEN wait_event IS NULL THEN 'running in PostgreSQL'
                       WHEN wait_event_type = 'Lock' AND wait_event = 'advisory' THEN 'waiting: advisory lock (audit chain)'
                       WHEN wait_event_type = 'Lock' THEN 'waiting: row lock (' || wait_event || ') in ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60)
                       ELSE 'waiting: ' || wait_event_type || ':' || wait_event END AS what, count(*)::int AS n
           FROM pg_stat_activity WHERE usename = 'rating_app' AND pid <> pg_backend_pid()
             AND query NOT ILIKE '%pg_stat_activity%' AND query NOT LIKE 'LISTEN%'
           GROUP BY 1`,
        );
        samples++;
        for (const r of rows) waits.set(r.what, (waits.get(r.what) ?? 0) + r.n);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const pgCpu = postgresCpuSeconds(b.dir);
    let session: Session | undefined;
    if (PROFILE) {
      session = new Session();
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 1000 });
      await session.post("Profiler.start");
    }

    if (queries) queries.on = true;
    const pg0 = pgCpu();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const started = await call("POST", "/v1/billing-runs", { autoIssue: true });
    const tStarted = performance.now();
    if (started.progress.total !== CONTRACTS) throw new Error(`the run took ${started.progress.total} items, expected ${CONTRACTS}`);
    let view = started;
    const progress: { t: number; done: number }[] = [];
    while (view.status === "running") {
      await new Promise((r) => setTimeout(r, 250));
      view = await call("GET", `/v1/billing-runs/${started.id}`);
      progress.push({ t: performance.now() - t0, done: view.progress.done });
    }
    const elapsed = performance.now() - t0;
    if (queries) queries.on = false;
    const cpu = process.cpuUsage(cpu0);
    const pgSeconds = pgCpu() - pg0;
    sampling = false;
    await sampler;
    await owner.end();
    let profile: any;
    if (session) {
      ({ profile } = await session.post("Profiler.stop"));
      session.disconnect();
      const file = join(tmpdir(), `close-${process.pid}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      log(`CPU profile written to ${file}`);
    }
    await worker.stop();

    // One document per contract and period, every item issued, numbers gapless.
    const [check] = await q(
      `SELECT (SELECT count(*) FROM billing_run_items WHERE run_id = $1::uuid AND status = 'issued' AND document_id IS NOT NULL)::int AS issued,
              (SELECT count(*) FROM (SELECT 1 FROM documents d JOIN contracts c ON c.id = d.contract_id WHERE c.customer_id LIKE 'close-%'
                                     GROUP BY d.contract_id, d.period_start HAVING count(*) = 1) x)::int AS single,
              (SELECT count(*) FROM documents d JOIN contracts c ON c.id = d.contract_id WHERE c.customer_id LIKE 'close-%')::int AS documents,
              (SELECT count(*) FROM documents)::int AS all_documents,
              (SELECT max(kind_seq) FROM documents WHERE kind = 'invoice')::int AS last_seq`,
      [started.id],
    );
    const oneEach = check.issued === CONTRACTS && check.single === CONTRACTS && check.documents === CONTRACTS && check.last_seq === check.all_documents;

    // Per chunk job and per contract, from the worker's job events and the chunk's audit append (stamped once the
    // chain's lock is held, the last step before COMMIT).
    const entries = await q<{ contract_id: string; at: Date }>(
      `SELECT a.payload->>'contractId' AS contract_id, a.at
       FROM audit_log a WHERE a.action = 'document.issued' AND a.at >= to_timestamp($1 / 1000.0)`,
      [performance.timeOrigin + t0],
    );
    const docAt = new Map<string, number>();
    for (const e of entries) docAt.set(e.contract_id, e.at.getTime() - performance.timeOrigin);
    const total: number[] = [];
    const perContract: number[] = [];
    const ratingPhase: number[] = [];
    const tailPhase: number[] = [];
    for (const { start, end, contractIds } of jobTimes.values()) {
      total.push(end - start);
      perContract.push((end - start) / contractIds.length);
      const d = docAt.get(contractIds[0]!);
      if (d === undefined) continue;
      ratingPhase.push(d - start);
      tailPhase.push(end - d);
    }
    const busy = total.reduce((s, x) => s + x, 0);
    const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
    const [items] = await q(`SELECT min(finished_at) AS first, max(finished_at) AS last FROM billing_run_items WHERE run_id = $1::uuid`, [started.id]);
    const runRow = (await q(`SELECT started_at, finished_at FROM billing_runs WHERE id = $1::uuid`, [started.id]))[0];

    // What the run's completion check costs once most items are done: each job runs it at its end, under the run's row lock.
    const plan = await q<{ "QUERY PLAN": string }>(
      `EXPLAIN (ANALYZE, BUFFERS) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM billing_run_items WHERE run_id = $1::uuid AND status = 'pending')`,
      [started.id],
    );
    const checkMs = Number(/Execution Time: ([\d.]+)/.exec(plan.map((r) => r["QUERY PLAN"]).join("\n"))?.[1]);

    const rate = CONTRACTS / (elapsed / 1000);
    const serialMs = pct(serial, 50);
    log(`\nbilling run of ${fmt(CONTRACTS)} monthly contracts × 3 meters, ${fmt(CONTRACTS * PER_CONTRACT)} events in October, autoIssue, WORKER_CONCURRENCY ${CONCURRENCY}:`);
    log(
      `  ${(elapsed / 1000).toFixed(1)} s from POST to completed (${rate.toFixed(1)} contracts/s) — target ≤ ${TARGET_SECONDS} s for 10,000 on 2 cores ` +
        `(≥ ${TARGET_RATE.toFixed(0)} contracts/s): ${rate >= TARGET_RATE ? "OK" : `BELOW TARGET (×${(TARGET_RATE / rate).toFixed(1)} short)`}`,
    );
    log(`  POST /v1/billing-runs (selection, ${fmt(CONTRACTS)} items and jobs in one transaction): ${ms(tStarted - t0)}`);
    log(`  in the database: run started_at → finished_at ${secs(runRow.finished_at.getTime() - runRow.started_at.getTime())}, first item finished ${secs(items.first.getTime() - runRow.started_at.getTime())} after the start`);
    const tenth = (f: number) => progress.find((p) => p.done >= f * CONTRACTS)?.t ?? Number.NaN;
    log(`  progress: 10% at ${secs(tenth(0.1))}, 50% at ${secs(tenth(0.5))}, 90% at ${secs(tenth(0.9))}, 100% at ${secs(elapsed)}; ` +
      `first half ${((0.5 * CONTRACTS) / (tenth(0.5) / 1000)).toFixed(0)}/s, second half ${((0.5 * CONTRACTS) / ((elapsed - tenth(0.5)) / 1000)).toFixed(0)}/s`);
    const chunk = Math.round(CONTRACTS / Math.max(1, total.length));
    log(`  per chunk job (bill_contracts, ~${chunk} contracts, start → success, ${CONCURRENCY} in flight): p50 ${ms(pct(total, 50))}, p99 ${ms(pct(total, 99))}, max ${ms(Math.max(...total))}`);
    log(`    per contract (its job's time ÷ its contracts): p50 ${ms(pct(perContract, 50))}, p99 ${ms(pct(perContract, 99))}`);
    log(`    rate, store and issue (start → the audit append)  p50 ${ms(pct(ratingPhase, 50))}, p99 ${ms(pct(ratingPhase, 99))}, share ${((100 * sum(ratingPhase)) / busy).toFixed(0)}%`);
    log(`    commit and run check (→ job success)             p50 ${ms(pct(tailPhase, 50))}, p99 ${ms(pct(tailPhase, 99))}, share ${((100 * sum(tailPhase)) / busy).toFixed(0)}%`);
    log(`    job slots busy ${((100 * busy) / (CONCURRENCY * elapsed)).toFixed(0)}% of ${CONCURRENCY} × the run (the rest: graphile-worker between jobs, the start)`);
    log(`  CPU during the run: node ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, PostgreSQL ${pgSeconds.toFixed(1)} s, of ${((2 * elapsed) / 1000).toFixed(1)} s on 2 cores ` +
      `(${(((cpu.user + cpu.system) / 1e6 + pgSeconds) / ((2 * elapsed) / 1000) * 100).toFixed(0)}% of the machine; other load on it not counted)`);
    log(`  per contract CPU: node ${(((cpu.user + cpu.system) / 1e3) / CONTRACTS).toFixed(1)} ms, PostgreSQL ${((pgSeconds * 1000) / CONTRACTS).toFixed(1)} ms`);
    log(`  the service's backends, sampled every 100 ms (${samples} samples), average number in each state:`);
    for (const [what, n] of [...waits.entries()].sort((x, y) => y[1] - x[1])) log(`    ${(n / samples).toFixed(2).padStart(6)}  ${what}`);
    log(`  one document per contract and period: ${oneEach ? "yes" : `NO (${JSON.stringify(check)})`}; invoice numbers gapless (max seq = documents): ${check.last_seq === check.all_documents}`);
    log(`baselines (same run, same machine):`);
    log(`  preview + issue through HTTP, one contract at a time (${serial.length} contracts): p50 ${ms(serialMs)} → × ${fmt(CONTRACTS)} = ${((serialMs * CONTRACTS) / 1000).toFixed(0)} s; the run is ${((serialMs * CONTRACTS) / elapsed).toFixed(2)}× that`);
    log(`  preview + issue through HTTP, ${CONCURRENCY} at a time (${concurrent.length} contracts): ${concurrentRate.toFixed(1)} contracts/s → ${(CONTRACTS / concurrentRate).toFixed(0)} s; the run is ${(rate / concurrentRate).toFixed(2)}× that`);
    log(
      `  one bare audited transaction (BEGIN, appendAudit, COMMIT): p50 ${ms(auditMs)}; the chain lock is held for its last 3 of 5 round trips ` +
        `(head, insert, commit) → 2 per contract × ${fmt(CONTRACTS)} ≈ ${((0.6 * 2 * auditMs * CONTRACTS) / 1000).toFixed(1)}–${((2 * auditMs * CONTRACTS) / 1000).toFixed(1)} s serial floor one contract at a time (a chunk takes it once)`,
    );
    log(`  … of which a bare flushed commit (SELECT pg_current_xact_id(), autocommit): p50 ${ms(commitMs)}`);
    // Jobs run in contract order, the items' key order: the k-th job's check reads the k − 1 done items before the first pending one.
    log(
      `  the run's completion check (NOT EXISTS a pending item) once every item is done: ${ms(checkMs)}; each job runs it under the run's row lock, ` +
        `reading the items done before it: ≈ ${fmt(CONTRACTS)} / 2 × that = ${((checkMs * CONTRACTS) / 2000).toFixed(1)} s serialized over the run`,
    );
    if (queries) {
      const rows = [...queries.byText.entries()].sort((a, b) => b[1].ms - a[1].ms);
      const all = rows.reduce((s, [, v]) => s + v.ms, 0);
      log(`  queries during the run (round trips as node sees them, ${CONCURRENCY} in flight, waits included; ${fmt(rows.reduce((s, [, v]) => s + v.n, 0))} in all, ${secs(all)}):`);
      for (const [text, v] of rows.slice(0, 30))
        log(`    ${((100 * v.ms) / all).toFixed(1).padStart(5)}%  ${(v.n / CONTRACTS).toFixed(2).padStart(5)}/contract  ${(v.ms / v.n).toFixed(2).padStart(7)} ms  ${text}`);
    }
    if (profile) summariseProfile(profile);
    if (!oneEach) process.exitCode = 1;
  });
}

const begun = performance.now();
run(async () => {
  await main();
  log(`total ${((performance.now() - begun) / 1000).toFixed(0)} s`);
});
