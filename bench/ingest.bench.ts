// npm run bench:ingest — usage ingestion throughput through the HTTP API against a raw PostgreSQL COPY of the
// same rows into an identical table, and the true-up aggregate (sumUsage) latency at 1M and 10M events.
//
// Its own embedded PostgreSQL (default settings), the real app listening on a free port, 4 concurrent
// clients posting batches of 1,000 events with fetch. Request bodies are serialised before the clock starts,
// as COPY's file is written before its clock starts. COPY reads a server-side CSV file (the rating role is
// the cluster's superuser), the fastest form of COPY: no client round trips at all.
//
// Once per time span (BENCH_SPANS, days): the same number of events spread evenly over a day at the start of a
// month (1: one month, nearly every batch adds to rollup rows that exist) and over 58 days (two months: most
// batches open new hours, so the rollup upsert inserts rows rather than updating them), each on a fresh cluster
// with its own COPY baseline. After each span: what the rollup upserts did (rows inserted and updated per
// batch, HOT updates), the index sizes beside COPY's, and EXPLAIN ANALYZE of one more batch of the same shape
// (rolled back). The resend and the true-up aggregate at 1M and 10M events run after the first span only.
// Env: BENCH_EVENTS (1000000), BENCH_BATCH (1000), BENCH_CLIENTS (4), BENCH_EXTRA (9000000), BENCH_QUERIES (200),
// BENCH_SPANS (1,58), BENCH_EXPLAIN (1; 0 skips the EXPLAIN of a batch).
import { chmodSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type NewUsageEvent, insertUsageEvents, rebuildRollups, sumUsage } from "../src/db/queries/usage.js";
import type { Sql } from "../src/db/sql.js";
import { bodyHash } from "../src/domain/usage-rules.js";
import { ratioToBaseline, run, withBench } from "./harness.js";

const EVENTS = Number.parseInt(process.env.BENCH_EVENTS ?? "1000000", 10);
const BATCH = Number.parseInt(process.env.BENCH_BATCH ?? "1000", 10);
const CLIENTS = Number.parseInt(process.env.BENCH_CLIENTS ?? "4", 10);
const EXTRA = Number.parseInt(process.env.BENCH_EXTRA ?? "9000000", 10);
const QUERIES = Number.parseInt(process.env.BENCH_QUERIES ?? "200", 10);
const SPANS = (process.env.BENCH_SPANS ?? "1,58").split(",").map((s) => Number.parseFloat(s));
const EXPLAIN = process.env.BENCH_EXPLAIN !== "0";
const CUSTOMERS = 100;
const METRICS = ["api_calls", "storage_gb", "seats"];
const DAY = 86_400_000;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const log = (s: string) => process.stdout.write(`${s}\n`);

/** CPU seconds used so far by all postgres processes (Linux /proc), to show where the time goes. */
function postgresCpuSeconds(): number | null {
  try {
    const tick = 100; // USER_HZ on Linux
    let total = 0;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        if (comm !== "postgres") continue;
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        total += (Number(f[11]) + Number(f[12])) / tick;
      } catch {
        /* the process ended meanwhile */
      }
    }
    return total;
  } catch {
    return null;
  }
}
const nodeCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** What the rollup upserts did so far (pg_stat_user_tables; the runtime role's and ours alike). */
async function rollupWrites(db: { pool: { query: (q: string) => Promise<{ rows: unknown[] }> } }) {
  // The statistics are sent at transaction end and read from a snapshot: clear it first.
  await db.pool.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await db.pool.query(
    `SELECT n_tup_ins::bigint::text AS ins, n_tup_upd::bigint::text AS upd, n_tup_hot_upd::bigint::text AS hot, n_live_tup::bigint::text AS live
     FROM pg_stat_user_tables WHERE relname = 'usage_rollups'`,
  );
  const r = rows[0] as { ins: string; upd: string; hot: string; live: string };
  return { ins: Number(r.ins), upd: Number(r.upd), hot: Number(r.hot) };
}

/** WAL written so far (pg_stat_wal) and checkpoints started (pg_stat_checkpointer). */
async function walSoFar(db: { pool: { query: (q: string) => Promise<{ rows: unknown[] }> } }) {
  await db.pool.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await db.pool.query(
    `SELECT w.wal_records::text AS records, w.wal_fpi::text AS fpi, w.wal_bytes::text AS bytes,
            (c.num_timed + c.num_requested)::text AS checkpoints
     FROM pg_stat_wal w, pg_stat_checkpointer c`,
  );
  const r = rows[0] as { records: string; fpi: string; bytes: string; checkpoints: string };
  return { records: Number(r.records), fpi: Number(r.fpi), bytes: Number(r.bytes), checkpoints: Number(r.checkpoints) };
}

/**
 * Samples what the service's backends are doing every few milliseconds until stopped: running on CPU, or
 * waiting (and for what: a row lock another batch holds, the audit chain's advisory lock, a WAL flush…).
 */
function sampleWaits(db: { pool: { query: (q: string) => Promise<{ rows: unknown[] }> } }) {
  const counts = new Map<string, number>();
  let samples = 0;
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const { rows } = await db.pool.query(
        `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w FROM pg_stat_activity
         WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
      );
      samples++;
      for (const r of rows as { w: string }[]) counts.set(r.w, (counts.get(r.w) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return async () => {
    stop = true;
    await done;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    return { samples, busy: total / samples, top: [...counts].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([w, n]) => `${w} ${((n * 100) / total).toFixed(0)}%`) };
  };
}

/** Index sizes (MB) of a table, in the order of their definitions with the table's name taken out. */
async function indexSizes(db: { pool: { query: (q: string, p: unknown[]) => Promise<{ rows: unknown[] }> } }, table: string) {
  const { rows } = await db.pool.query(
    `SELECT i.indexrelid::regclass::text AS name, pg_relation_size(i.indexrelid) AS bytes
     FROM pg_index i WHERE i.indrelid = $1::regclass ORDER BY replace(pg_get_indexdef(i.indexrelid), i.indexrelid::regclass::text, '')`,
    [table],
  );
  return (rows as { name: string; bytes: string }[]).map((r) => ({ name: r.name, mb: Number(r.bytes) / 1048576 }));
}

/** A Sql that runs EXPLAIN (ANALYZE, BUFFERS) of each statement instead, and prints the plan. */
const explaining = (client: { query: (q: string, p: unknown[]) => Promise<{ rows: Record<string, unknown>[] }> }): Sql => ({
  async query<T>(text: string, params: unknown[] = []) {
    const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${text}`, params);
    for (const r of rows) log(`      ${String(r["QUERY PLAN"])}`);
    return [] as T[];
  },
});

const summary: string[] = [];

async function main() {
  const started = performance.now();
  for (const [n, span] of SPANS.entries()) await ingestCase(span, n === 0);
  log(`\ningestion against a raw COPY of the same rows, per time span:\n${summary.join("\n")}`);
  log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

async function ingestCase(spanDays: number, first: boolean) {
  // As the owner: the raw COPY baseline below reads a server file and creates a scratch table.
  const bench = { name: "ingest", database: "bench", asOwner: true, role: "writer", listen: true, maxEventLoopDelayMs: 60_000 } as const;
  await withBench(bench, async ({ dir, db, base, auth }) => {
    const headers = { ...auth, "content-type": "application/json" };

    // Every customer has a contract (mapping and the FOR SHARE lock are on the measured path).
    const monthStart = (ms: number) => {
      const d = new Date(ms);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    };
    const t0 = monthStart(Date.now() - 95 * DAY); // events over up to ~58 days from here: inside the accepted window
    const spacing = (spanDays * DAY) / EVENTS; // ms between events
    const startDate = new Date(monthStart(t0 - 400 * DAY)).toISOString().slice(0, 10);
    for (let c = 0; c < CUSTOMERS; c++) {
      const res = await fetch(`${base}/v1/contracts`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          customerId: `cust-${c}`,
          name: `Customer ${c}`,
          currency: "USD",
          billingPeriod: "monthly",
          startDate,
          terms: { meters: METRICS.map((metric) => ({ metric, pricing: { model: "per_unit", unitPrice: "0.01" } })) },
        }),
      });
      if (res.status !== 201) throw new Error(`contract ${c}: ${res.status} ${await res.text()}`);
    }

    // The events, as the API receives them and as COPY loads them.
    const event = (i: number) => ({
      eventId: `evt-${i}`,
      customerId: `cust-${i % CUSTOMERS}`,
      metric: METRICS[i % 3]!,
      quantity: `${(i % 1000) + 1}.${String(i % 997).padStart(3, "0")}`,
      timestamp: new Date(t0 + Math.floor(i * spacing) + (i % 100)).toISOString(),
      ...(i % 10 === 0 ? { properties: { region: i % 20 === 0 ? "eu" : "us" } } : {}),
    });
    const bodies: string[] = [];
    for (let b = 0; b * BATCH < EVENTS; b++) {
      const events = [];
      for (let i = b * BATCH; i < Math.min(EVENTS, (b + 1) * BATCH); i++) events.push(event(i));
      bodies.push(JSON.stringify({ events }));
    }
    const csvPath = join(dir, "events.csv");
    const lines: string[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const e = event(i);
      const props = e.properties ? `"${JSON.stringify(e.properties).replace(/"/g, '""')}"` : "";
      const hash = bodyHash({ metric: e.metric, quantity: e.quantity, timestamp: e.timestamp, properties: e.properties });
      lines.push(`${e.customerId},${e.eventId},${e.metric},${e.quantity},${e.timestamp},${props},${hash}`);
    }
    writeFileSync(csvPath, `${lines.join("\n")}\n`);
    chmodSync(csvPath, 0o644);
    lines.length = 0;

    const spanText = `${spanDays} day${spanDays === 1 ? "" : "s"} from ${new Date(t0).toISOString().slice(0, 10)} (${spanDays <= 28 ? "one month" : `${Math.ceil(spanDays / 30)} months`})`;
    log(`\ningest: ${fmt(EVENTS)} events over ${spanText}, ${bodies.length} batches of ${BATCH}, ${CLIENTS} concurrent clients, ${CUSTOMERS} customers with contracts`);
    const writes0 = await rollupWrites(db);
    const wal0 = await walSoFar(db);
    let next = 0;
    let accepted = 0;
    const latencies: number[] = [];
    const httpStart = performance.now();
    const cpu0 = { node: nodeCpuSeconds(), pg: postgresCpuSeconds() };
    const stopSampling = sampleWaits(db);
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let b = next++; b < bodies.length; b = next++) {
          const s = performance.now();
          const res = await fetch(`${base}/v1/usage`, { method: "POST", headers, body: bodies[b]! });
          const out = (await res.json()) as { accepted: number };
          if (res.status !== 200) throw new Error(`batch ${b}: ${res.status} ${JSON.stringify(out).slice(0, 500)}`);
          accepted += out.accepted;
          latencies.push(performance.now() - s);
        }
      }),
    );
    const httpSeconds = (performance.now() - httpStart) / 1000;
    const cpu1 = { node: nodeCpuSeconds(), pg: postgresCpuSeconds() };
    const waits = await stopSampling();
    if (accepted !== EVENTS) throw new Error(`accepted ${accepted} of ${EVENTS}`);
    const httpRate = EVENTS / httpSeconds;
    log(`  HTTP API   ${fmt(httpRate)} events/s  (${httpSeconds.toFixed(1)} s; batch p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms)`);
    const perBatch = (x: number) => ((x * 1000) / bodies.length).toFixed(1);
    log(
      `             CPU per batch: node (server + clients) ${perBatch(cpu1.node - cpu0.node)} ms` +
        (cpu0.pg !== null && cpu1.pg !== null ? `, postgres ${perBatch(cpu1.pg - cpu0.pg)} ms` : ""),
    );

    log(`             backends busy on average ${waits.busy.toFixed(2)} of ${CLIENTS} (${fmt(waits.samples)} samples): ${waits.top.join(", ")}`);
    const writes1 = await rollupWrites(db);
    const wal1 = await walSoFar(db);
    const rollupRows = Number((await db.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM usage_rollups")).rows[0]!.n);
    const per = (x: number) => (x / bodies.length).toFixed(0);
    log(
      `             rollup upserts per batch: ${per(writes1.ins - writes0.ins)} rows inserted, ${per(writes1.upd - writes0.upd)} updated ` +
        `(${writes1.upd - writes0.upd ? (((writes1.hot - writes0.hot) * 100) / (writes1.upd - writes0.upd)).toFixed(0) : "0"}% HOT); ` +
        `${fmt(rollupRows)} rollup rows (${(rollupRows / EVENTS).toFixed(3)} per event)`,
    );
    log(
      `             WAL per batch: ${per(wal1.records - wal0.records)} records, ${per(wal1.fpi - wal0.fpi)} full-page images, ` +
        `${((wal1.bytes - wal0.bytes) / bodies.length / 1024).toFixed(0)} kB (${wal1.checkpoints - wal0.checkpoints} checkpoints during the run)`,
    );

    if (EXPLAIN) {
      // One more batch of the same shape (the next events in time, new ids), its insert-and-rollup statement
      // explained and rolled back: where a batch's time goes in PostgreSQL.
      const more: NewUsageEvent[] = [];
      for (let i = EVENTS; i < EVENTS + BATCH; i++) {
        const e = event(i);
        more.push({
          customerId: e.customerId, eventId: `explain-${i}`, metric: e.metric, quantity: e.quantity, iso: e.timestamp,
          properties: e.properties ? JSON.stringify(e.properties) : null,
          hash: bodyHash({ metric: e.metric, quantity: e.quantity, timestamp: e.timestamp, properties: e.properties }), late: false,
        });
      }
      const client = await db.pool.connect();
      try {
        await client.query("BEGIN");
        log("             EXPLAIN ANALYZE of one more batch's insert-and-rollup statement (rolled back):");
        await insertUsageEvents(explaining(client), more, "00000000-0000-4000-8000-000000000000");
      } finally {
        await client.query("ROLLBACK");
        client.release();
      }
    }

    /** The raw COPY of the same rows into an empty table like usage_events, and the API's ratio to it. */
    async function copyBaseline(): Promise<void> {
      await db.pool.query(`CREATE TABLE usage_events_copy (LIKE usage_events INCLUDING ALL)`);
      const copyStart = performance.now();
      const copyCpu0 = postgresCpuSeconds();
      await db.pool.query(
        `COPY usage_events_copy (customer_id, event_id, metric, quantity, occurred_at, properties, body_hash) FROM '${csvPath}' WITH (FORMAT csv)`,
      );
      const copySeconds = (performance.now() - copyStart) / 1000;
      const copyRate = EVENTS / copySeconds;
      const copyCpu1 = postgresCpuSeconds();
      log(`  raw COPY   ${fmt(copyRate)} events/s  (${copySeconds.toFixed(1)} s; same columns, indexes and unique constraint)`);
      if (copyCpu0 !== null && copyCpu1 !== null) log(`             CPU per 1,000 rows: postgres ${(((copyCpu1 - copyCpu0) * 1000) / (EVENTS / 1000)).toFixed(1)} ms (one backend)`);
      log(`  ratio      ${ratioToBaseline(httpRate, copyRate, 0.5).text}: the API's rate of COPY's, with dedupe, rollups, contract mapping and audit`);
      const check = await db.pool.query<{ a: string; b: string }>(
        "SELECT (SELECT count(*) FROM usage_events)::text AS a, (SELECT sum(events) FROM usage_rollups)::text AS b",
      );
      log(`  stored ${check.rows[0]!.a} events; rollups count ${check.rows[0]!.b}`);
      const api = await indexSizes(db, "usage_events");
      const copy = await indexSizes(db, "usage_events_copy");
      log(`  index MB   ${api.map((x, i) => `${x.name.replace(/^usage_events_/, "")} ${x.mb.toFixed(0)} (COPY ${copy[i]?.mb.toFixed(0) ?? "?"})`).join(", ")}`);
      const rollups = await indexSizes(db, "usage_rollups");
      log(`             usage_rollups heap ${(Number((await db.pool.query<{ b: string }>("SELECT pg_relation_size('usage_rollups')::text AS b")).rows[0]!.b) / 1048576).toFixed(1)} MB, ${rollups.map((x) => `${x.name} ${x.mb.toFixed(1)} MB`).join(", ")}`);
      await db.pool.query("DROP TABLE usage_events_copy");
      summary.push(`  ${spanText.padEnd(40)} API ${fmt(httpRate).padStart(7)} events/s, COPY ${fmt(copyRate).padStart(7)} events/s: ratio ${ratioToBaseline(httpRate, copyRate, 0.5).text}`);
    }

    // A resend of the first 100 batches: all duplicates (exactly once costs a read-back, not a write).
    if (!first) return copyBaseline();
    const dupStart = performance.now();
    let dups = 0;
    next = 0;
    const dupBodies = bodies.slice(0, Math.min(100, bodies.length));
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let b = next++; b < dupBodies.length; b = next++) {
          const res = await fetch(`${base}/v1/usage`, { method: "POST", headers, body: dupBodies[b]! });
          dups += ((await res.json()) as { duplicates: number }).duplicates;
        }
      }),
    );
    log(`  resend     ${fmt(dups / ((performance.now() - dupStart) / 1000))} duplicate events/s (${fmt(dups)} duplicates)`);

    await copyBaseline();

    // The true-up aggregate: one customer, one month, 3 metrics.
    const month = { from: new Date(t0).toISOString(), to: new Date(Date.UTC(new Date(t0).getUTCFullYear(), new Date(t0).getUTCMonth() + 1, 1)).toISOString() };
    // The same month for a contract in Asia/Kolkata: its edges are on half hours, so edge hours come from usage_events.
    const ragged = { from: new Date(Date.parse(month.from) - 5.5 * 3_600_000).toISOString(), to: new Date(Date.parse(month.to) - 5.5 * 3_600_000).toISOString() };
    const { sql } = db;
    const measure = async (label: string) => {
      await db.pool.query("VACUUM ANALYZE usage_events");
      await db.pool.query("VACUUM ANALYZE usage_rollups");
      for (const [name, w] of [["UTC month", month], ["Kolkata month", ragged]] as const) {
        for (let i = 0; i < 10; i++) await sumUsage(sql, ["cust-0"], [w]);
        const times: number[] = [];
        let rows: Awaited<ReturnType<typeof sumUsage>> = [];
        for (let i = 0; i < QUERIES; i++) {
          const s = performance.now();
          rows = await sumUsage(sql, ["cust-0"], [w]);
          times.push(performance.now() - s);
        }
        const direct: number[] = [];
        for (let i = 0; i < 20; i++) {
          const s = performance.now();
          await db.pool.query(
            `SELECT metric, sum(quantity) FROM usage_events WHERE customer_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND voided_at IS NULL GROUP BY metric`,
            ["cust-0", w.from, w.to],
          );
          direct.push(performance.now() - s);
        }
        const n = await db.pool.query<{ n: string }>(
          "SELECT count(*)::text AS n FROM usage_events WHERE customer_id = 'cust-0' AND occurred_at >= $1 AND occurred_at < $2",
          [w.from, w.to],
        );
        log(
          `  ${label} ${name.padEnd(13)} sumUsage p50 ${pct(times, 50).toFixed(2)} ms  p99 ${pct(times, 99).toFixed(2)} ms` +
            `  (${rows.length} metrics over ${n.rows[0]!.n} events; a direct SUM over usage_events p50 ${pct(direct, 50).toFixed(1)} ms)`,
        );
      }
    };
    log(`true-up aggregate, one customer, one month, 3 metrics (${QUERIES} runs):`);
    await measure("1M ");

    if (EXTRA > 0) {
      // 9M more rows straight into usage_events (and their rollups rebuilt), over cust-0..cust-9 and the 12 months
      // around the data above, so the measured customer's month gets ~EXTRA/120 more events.
      const loadStart = performance.now();
      const from = t0 - 10 * 30 * DAY;
      const span = 12 * 30 * DAY;
      const chunk = 1_000_000;
      for (let s = 0; s < EXTRA; s += chunk) {
        await db.pool.query(
          `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash, received_at)
           SELECT 'cust-' || (g % 10), 'gen-' || g, (ARRAY['api_calls','storage_gb','seats'])[1 + g % 3], 1 + (g % 13) * 0.5,
                  to_timestamp($3::double precision / 1000) + ((g::double precision * $4) / $5) * interval '1 millisecond', md5(g::text), now()
           FROM generate_series($1::bigint, $2::bigint) g`,
          [s, Math.min(EXTRA, s + chunk) - 1, from, span, EXTRA],
        );
      }
      // Their rollups by the service's own rebuild (dims and peaks as ingestion keeps them).
      await rebuildRollups(sql, Array.from({ length: 10 }, (_, c) => METRICS.map((metric) => ({ customer_id: `cust-${c}`, metric }))).flat());
      const total = await db.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM usage_events");
      log(`  (loaded ${fmt(EXTRA)} more rows with generate_series in ${((performance.now() - loadStart) / 1000).toFixed(0)} s; ${total.rows[0]!.n} events)`);
      await measure("10M");
    }
  });
}

run(main);
