// npm run bench:trueup — preview latency per meter aggregation against the number of events in the period,
// beside a direct SQL aggregate of the same events; then previews after an issue with late events, and issue
// throughput. A real embedded PostgreSQL and the real app (through inject: the full Fastify stack without a socket).
//
// One contract per case, each with one meter over its own customer's events of January 2026: an unfiltered sum at
// 100k, 1M and 10M events (flat: whole hours come from the rollups), count, max, latest, a filtered sum
// ({region: [eu]}) and unique_count (100k distinct users) at 1M, time_weighted over 100k level changes (and one
// level carried in from December). Events are loaded with SQL (generate_series, two connections at once) into
// usage_events, and their rollups are built by the service's own rebuild (db/queries/usage.ts rebuildRollups:
// dims from usage_dimensions, which creating the filtered meter's contract filled in, and each hour's peak), as
// ingestion would have kept them; then VACUUM ANALYZE as the owner. Ingestion itself is measured by bench:ingest.
//
// The direct SQL is what one would write without rollups: the aggregate over the period's events through the
// events index (the same ids, metric, window and voided_at IS NULL). Each preview's usage is checked against it.
//
// Env: BENCH_SUM_SIZES (100000,1000000,10000000), BENCH_EVENTS (1000000: count, max, latest, filtered sum,
// unique_count), BENCH_UNIQUE_IDS (100000), BENCH_LEVELS (100000: time_weighted), BENCH_CASES (all; e.g.
// "sum,unique_count"), BENCH_PREVIEWS (100), BENCH_DIRECT (10: direct SQL runs per case), BENCH_CONTRACTS (1000),
// BENCH_LOAD_CHUNK (1000000 events per INSERT).
import { performance } from "node:perf_hooks";
import { fixedClock } from "../src/clock.js";
import { rebuildRollups } from "../src/db/queries/usage.js";
import { Decimal } from "../src/domain/money.js";
import { type Bench, collectGarbage, run, withBench } from "./harness.js";

const int = (name: string, dflt: number) => Number.parseInt(process.env[name] ?? String(dflt), 10);
const SUM_SIZES = (process.env.BENCH_SUM_SIZES ?? "100000,1000000,10000000").split(",").filter(Boolean).map((s) => Number.parseInt(s, 10));
const EVENTS = int("BENCH_EVENTS", 1_000_000);
const UNIQUE_IDS = int("BENCH_UNIQUE_IDS", 100_000);
const LEVELS = int("BENCH_LEVELS", 100_000);
const CASES = process.env.BENCH_CASES ? new Set(process.env.BENCH_CASES.split(",")) : null;
const PREVIEWS = int("BENCH_PREVIEWS", 100);
const DIRECT = int("BENCH_DIRECT", 10);
const CONTRACTS = int("BENCH_CONTRACTS", 1000);
const LOAD_CHUNK = int("BENCH_LOAD_CHUNK", 1_000_000);

const FROM = "2026-01-01T00:00:00Z";
const TO = "2026-02-01T00:00:00Z";
const PERIOD_SECONDS = 31 * 86_400;

/** The nearest-rank percentile: p99 of 100 previews is the second slowest, not the slowest. */
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
};
const fmt = (n: number) => n.toLocaleString("en-US");
const log = (s: string) => process.stdout.write(`${s}\n`);

/** The events of a case, as the SELECT list over generate_series g (0 … n − 1) spread evenly over January. */
type Shape = "plain" | "region" | "users" | "levels";

interface Case {
  /** The aggregation (or "sum {region: [eu]}"), as printed. */
  label: string;
  /** Selects it in BENCH_CASES. */
  key: string;
  customerId: string;
  metric: string;
  events: number;
  shape: Shape;
  meter: Record<string, unknown>;
  /** p99 target, ms. */
  target: number;
  /** The direct SQL over the same events ($1 customer, $2 metric, $3 from, $4 to): one row, one column `value`. */
  direct: string;
  /** The meter's usage from the direct figure. */
  usageOf: (value: string) => Decimal;
}

const WINDOW = `customer_id = $1 AND metric = $2 AND occurred_at >= $3::timestamptz AND occurred_at < $4::timestamptz AND voided_at IS NULL`;
const same = (v: string) => new Decimal(v);

function cases(): Case[] {
  const perUnit = { model: "per_unit", unitPrice: "0.001" };
  const out: Case[] = SUM_SIZES.map((n) => ({
    label: "sum", key: "sum", customerId: `tu-sum-${n}`, metric: "api_calls", events: n, shape: "plain" as const, target: 25,
    meter: { id: "calls", metric: "api_calls", pricing: perUnit },
    direct: `SELECT coalesce(sum(quantity), 0)::text AS value FROM usage_events WHERE ${WINDOW}`, usageOf: same,
  }));
  out.push(
    {
      label: "count", key: "count", customerId: "tu-count", metric: "transactions", events: EVENTS, shape: "plain", target: 25,
      meter: { id: "txns", metric: "transactions", aggregation: "count", pricing: perUnit },
      direct: `SELECT count(*)::text AS value FROM usage_events WHERE ${WINDOW}`, usageOf: same,
    },
    {
      label: "max", key: "max", customerId: "tu-max", metric: "seats", events: EVENTS, shape: "plain", target: 25,
      meter: { id: "peak", metric: "seats", aggregation: "max", pricing: perUnit },
      direct: `SELECT coalesce(max(quantity), 0)::text AS value FROM usage_events WHERE ${WINDOW}`, usageOf: same,
    },
    {
      label: "latest", key: "latest", customerId: "tu-latest", metric: "storage_gb", events: EVENTS, shape: "plain", target: 25,
      meter: { id: "stored", metric: "storage_gb", aggregation: "latest", pricing: perUnit },
      direct: `SELECT coalesce((SELECT quantity FROM usage_events WHERE customer_id = $1 AND metric = $2 AND occurred_at < $4::timestamptz AND voided_at IS NULL
                                ORDER BY occurred_at DESC, received_at DESC, event_id DESC LIMIT 1), 0)::text AS value WHERE $3::timestamptz IS NOT NULL`,
      usageOf: same,
    },
    {
      label: "sum {region:[eu]}", key: "filtered_sum", customerId: "tu-sum-eu", metric: "gb", events: EVENTS, shape: "region", target: 25,
      meter: { id: "gb-eu", metric: "gb", filter: { region: ["eu"] }, pricing: perUnit },
      direct: `SELECT coalesce(sum(quantity), 0)::text AS value FROM usage_events WHERE ${WINDOW} AND properties @> '{"region": "eu"}'`, usageOf: same,
    },
    {
      label: "unique_count", key: "unique_count", customerId: "tu-unique", metric: "logins", events: EVENTS, shape: "users", target: 150,
      meter: { id: "mau", metric: "logins", aggregation: "unique_count", uniqueBy: "user", pricing: perUnit },
      direct: `SELECT count(DISTINCT properties -> 'user')::text AS value FROM usage_events WHERE ${WINDOW} AND properties -> 'user' <> 'null'::jsonb`,
      usageOf: same,
    },
    {
      label: "time_weighted", key: "time_weighted", customerId: "tu-levels", metric: "vms", events: LEVELS, shape: "levels", target: 150,
      meter: { id: "vm-months", metric: "vms", aggregation: "time_weighted", pricing: perUnit },
      // Σ level × seconds: each event's level until the next (or the end), the level carried in until the first.
      direct: `WITH ev AS (
                 SELECT quantity, occurred_at, lead(occurred_at, 1, $4::timestamptz) OVER (ORDER BY occurred_at, received_at, event_id) AS until
                 FROM usage_events WHERE ${WINDOW})
               SELECT (coalesce((SELECT quantity FROM usage_events WHERE customer_id = $1 AND metric = $2 AND occurred_at < $3::timestamptz AND voided_at IS NULL
                                 ORDER BY occurred_at DESC, received_at DESC, event_id DESC LIMIT 1)
                                * extract(epoch FROM coalesce((SELECT min(occurred_at) FROM ev), $4::timestamptz) - $3::timestamptz), 0)
                       + coalesce((SELECT sum(quantity * extract(epoch FROM until - occurred_at)) FROM ev), 0))::text AS value`,
      usageOf: (v) => new Decimal(v).dividedBy(PERIOD_SECONDS),
    },
  );
  return out.filter((c) => CASES === null || CASES.has(c.key));
}

/** The SELECT list of a case's events over g: customer, event id, metric, quantity, instant, properties, body hash. */
function eventsSelect(c: Case): string {
  const quantity = c.shape === "levels" ? "100 + (g * 37) % 500" : c.shape === "users" ? "1" : "1 + (g * 7919) % 1000";
  const properties =
    c.shape === "region" ? `jsonb_build_object('region', (ARRAY['eu', 'us', 'apac'])[1 + g % 3])`
    : c.shape === "users" ? `jsonb_build_object('user', 'u' || (g * 7) % ${UNIQUE_IDS}, 'region', 'eu')`
    : "NULL::jsonb";
  return `SELECT $1::text, 'e' || lpad(g::text, 9, '0'), $2::text, ${quantity},
                 timestamptz '2026-01-01 00:00:00+00' + (g * (${PERIOD_SECONDS}.0 / ${c.events})) * interval '1 second', ${properties}, md5(g::text)
          FROM generate_series($3::bigint, $4::bigint) g`;
}

/** Runs `jobs` on `n` connections at once (the pool's), in order. */
async function inParallel(n: number, jobs: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    for (let j = next++; j < jobs.length; j = next++) await jobs[j]!();
  }));
}

async function load(b: Bench, all: Case[]): Promise<void> {
  const t0 = performance.now();
  const jobs: (() => Promise<void>)[] = [];
  // Largest first, in chunks, so the two connections finish together.
  for (const c of [...all].sort((x, y) => y.events - x.events)) {
    for (let lo = 0; lo < c.events; lo += LOAD_CHUNK) {
      const hi = Math.min(c.events, lo + LOAD_CHUNK) - 1;
      jobs.push(async () => {
        await b.db.pool.query(
          `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, properties, body_hash) ${eventsSelect(c)}`,
          [c.customerId, c.metric, lo, hi],
        );
      });
    }
    if (c.shape === "levels") {
      jobs.push(async () => {
        await b.db.pool.query(
          `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash) VALUES ($1, 'december', $2, 250, '2025-12-20T00:00:00Z', md5('december'))`,
          [c.customerId, c.metric],
        );
      });
    }
  }
  await inParallel(2, jobs);
  const t1 = performance.now();
  await inParallel(2, all.map((c) => () => rebuildRollups(b.db.sql, [{ customer_id: c.customerId, metric: c.metric }])));
  const t2 = performance.now();
  await b.analyze("usage_events", "usage_rollups", "usage_unique_values");
  await b.checkpoint();
  const total = all.reduce((s, c) => s + c.events, 0);
  log(
    `loaded ${fmt(total)} events in ${((t1 - t0) / 1000).toFixed(0)} s (INSERT … SELECT, 2 connections), rollups rebuilt in ` +
      `${((t2 - t1) / 1000).toFixed(0)} s, VACUUM ANALYZE and CHECKPOINT in ${((performance.now() - t2) / 1000).toFixed(0)} s`,
  );
}

async function main() {
  const all = cases();
  // The data is January 2026: a fixed clock keeps its late events inside the usage window whenever it runs.
  await withBench({ name: "trueup", role: "admin", clock: fixedClock("2026-03-01T00:00:00Z"), poolSize: 10 }, async (b) => {
    const { db, app, auth } = b;
    const call = async (method: "GET" | "POST", url: string, payload?: object) => {
      const res = await app.inject({ method, url, payload, headers: auth });
      if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
      return res.json();
    };
    const contractOf = new Map<Case, string>();
    for (const c of all) {
      const created = await call("POST", "/v1/contracts", {
        customerId: c.customerId, name: c.customerId, currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01",
        terms: { platformFee: { amount: "500.00" }, meters: [c.meter] },
      });
      contractOf.set(c, created.id);
    }
    await load(b, all);

    const previewTimes = async (contractId: string) => {
      const times: number[] = [];
      let last: any;
      collectGarbage(); // not the set-up's garbage: the previews' own (harness.ts)
      for (let i = 0; i < PREVIEWS + 5; i++) {
        const s = performance.now();
        last = await call("POST", `/v1/contracts/${contractId}/true-ups/preview`, { periodStart: FROM });
        if (i >= 5) times.push(performance.now() - s); // the first few warm caches and JIT
      }
      return { times, last };
    };

    log(`\npreview latency, one meter per contract, January 2026 (${PREVIEWS} previews each; direct SQL ${DIRECT} runs):`);
    log(`  ${"aggregation".padEnd(18)} ${"events".padStart(10)}   preview p50 / p99 (target)        direct SQL p50 / p99    preview ÷ direct (p50)`);
    const calcs = new Map<Case, string>();
    const sumP99 = new Map<number, number>();
    for (const c of all) {
      const contractId = contractOf.get(c)!;
      const { times, last } = await previewTimes(contractId);
      calcs.set(c, last.id);
      const direct: number[] = [];
      let value = "0";
      const directStart = performance.now();
      // At most ~20 s of a slow one (count DISTINCT sorts a million jsonb values), but at least 3 runs.
      for (let i = 0; i < DIRECT + 1 && (i < 4 || performance.now() - directStart < 20_000); i++) {
        const s = performance.now();
        const { rows } = await db.pool.query<{ value: string }>(c.direct, [c.customerId, c.metric, FROM, TO]);
        if (i > 0) direct.push(performance.now() - s); // one warm-up
        value = rows[0]!.value;
      }
      const line = last.lines.find((l: any) => l.kind === "usage" && l.meterId === c.meter.id);
      const expected = c.usageOf(value);
      const agrees = line && new Decimal(line.usage).equals(expected);
      const p50 = pct(times, 50);
      const p99 = pct(times, 99);
      if (c.key === "sum") sumP99.set(c.events, p99);
      log(
        `  ${c.label.padEnd(18)} ${fmt(c.events).padStart(10)}   ${p50.toFixed(1).padStart(6)} / ${p99.toFixed(1).padStart(6)} ms (≤ ${c.target} ms ${p99 <= c.target ? "OK" : "ABOVE"})` +
          `   ${pct(direct, 50).toFixed(1).padStart(7)} / ${pct(direct, 99).toFixed(1).padStart(7)} ms      ${(p50 / pct(direct, 50)).toFixed(3).padStart(7)}` +
          `   usage ${line?.usage ?? "?"} ${agrees ? "= direct" : `≠ direct ${expected.toFixed()}`}`,
      );
      if (!agrees) process.exitCode = 1;
    }
    if (sumP99.size > 1) {
      const sizes = [...sumP99.keys()].sort((x, y) => x - y);
      const lo = sumP99.get(sizes[0]!)!;
      const hi = sumP99.get(sizes[sizes.length - 1]!)!;
      log(`  sum p99 at ${fmt(sizes[sizes.length - 1]!)} events ÷ at ${fmt(sizes[0]!)}: ${(hi / lo).toFixed(2)} (flat: whole hours come from the rollups)`);
    }

    const sums = all.filter((c) => c.key === "sum");
    if (sums.length > 0) {
      log("\nthe same sum previews after the period's invoice was issued and 10 late events arrived (late_usage check):");
      for (const c of sums) {
        const contractId = contractOf.get(c)!;
        await call("POST", `/v1/contracts/${contractId}/true-ups`, { calculationId: calcs.get(c) });
        const late = Array.from({ length: 10 }, (_, i) => ({
          eventId: `late-${i}`, customerId: c.customerId, metric: c.metric, quantity: "1000", timestamp: "2026-01-31T12:00:00Z",
        }));
        await call("POST", "/v1/usage", { events: late });
        const { times, last } = await previewTimes(contractId);
        const kinds = last.exceptions.map((e: { kind: string }) => e.kind).join(",");
        log(`  ${fmt(c.events).padStart(10)} events: p50 ${pct(times, 50).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms (delta ${last.delta}; exceptions: ${kinds})`);
      }
    }

    if (CONTRACTS > 0) {
      log(`\nissue throughput: ${CONTRACTS} contracts, each previewed then issued (4 in flight):`);
      const meter = { metric: "api_calls", included: "100000", pricing: { model: "per_unit", unitPrice: "0.0008" } };
      const ids: { contract: string; calc: string }[] = [];
      const pre = performance.now();
      for (let i = 0; i < CONTRACTS; i++) {
        const customerId = `issue-${i}`;
        const c = await call("POST", "/v1/contracts", {
          customerId, name: customerId, currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01",
          terms: { platformFee: { amount: "100.00" }, meters: [meter] },
        });
        ids.push({ contract: c.id, calc: "" });
      }
      await db.pool.query(
        `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash)
         SELECT 'issue-' || (g % $1), 'i' || g, 'api_calls', 1000, timestamptz '2026-01-10 00:00:00+00' + (g % 500) * interval '1 minute', md5(g::text)
         FROM generate_series(0, $1 * 200 - 1) g`,
        [CONTRACTS],
      );
      await rebuildRollups(db.sql, Array.from({ length: CONTRACTS }, (_, i) => ({ customer_id: `issue-${i}`, metric: "api_calls" })));
      for (const x of ids) x.calc = (await call("POST", `/v1/contracts/${x.contract}/true-ups/preview`, { periodStart: FROM })).id;
      log(`  (set-up: ${((performance.now() - pre) / 1000).toFixed(1)} s)`);
      const queue = [...ids];
      const latencies: number[] = [];
      const start = performance.now();
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let x = queue.shift(); x; x = queue.shift()) {
            const s = performance.now();
            await call("POST", `/v1/contracts/${x.contract}/true-ups`, { calculationId: x.calc });
            latencies.push(performance.now() - s);
          }
        }),
      );
      const secs = (performance.now() - start) / 1000;
      const { rows: [{ n }] } = await db.pool.query(
        "SELECT count(*)::int AS n FROM documents d JOIN contracts c ON c.id = d.contract_id WHERE c.customer_id LIKE 'issue-%'",
      );
      log(`  ${n} documents in ${secs.toFixed(2)} s: ${(n / secs).toFixed(0)} issues/s; latency p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms`);
    }
  });
}

const started = performance.now();
run(async () => {
  await main();
  log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
});
