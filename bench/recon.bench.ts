// npm run bench:recon — a three-way reconciliation end to end through HTTP (a real socket, the JSON body sent
// and parsed) over a quarter: 1,400 customers × 3 metrics = 4,200 keys, 5 million stored events, and a
// metered and an invoiced row for every key (5% of them broken, so the engine prices a few hundred breaks).
// Printed beside the time of one plain `SELECT customer_id, metric, sum(quantity) … GROUP BY` over the same
// events, as a ratio. Target: ≤ 5 s end to end (must be ≤ 10 s).
//
// Events are loaded with SQL (generate_series, two connections at once) and their rollups built by the
// service's own rebuild, as ingestion would have kept them; then VACUUM ANALYZE and CHECKPOINT as the owner.
//
// Then the row limit: the same keys as 100,000 metered and 100,000 invoiced rows, with an Idempotency-Key.
//
// Env: BENCH_EVENTS (5000000), BENCH_CUSTOMERS (1400), BENCH_RUNS (3), BENCH_BROKEN_PERCENT (5), BENCH_WIDE_ROWS (100000; 0: skip).
import { performance } from "node:perf_hooks";
import { fixedClock } from "../src/clock.js";
import { rebuildRollups } from "../src/db/queries/usage.js";
import { type Bench, run, withBench } from "./harness.js";

const int = (name: string, dflt: number) => Number.parseInt(process.env[name] ?? String(dflt), 10);
const EVENTS = int("BENCH_EVENTS", 5_000_000);
const CUSTOMERS = int("BENCH_CUSTOMERS", 1400);
const RUNS = int("BENCH_RUNS", 3);
const BROKEN_PERCENT = int("BENCH_BROKEN_PERCENT", 5);
const WIDE_ROWS = int("BENCH_WIDE_ROWS", 100_000);
const METRICS = ["api_calls", "storage_gb", "compute_min"] as const;
const KEYS = CUSTOMERS * METRICS.length;
const FROM = "2026-07-01T00:00:00Z";
const TO = "2026-10-01T00:00:00Z";
const QUARTER_SECONDS = 92 * 86_400;
const LOAD_CHUNK = 1_000_000;

const log = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number) => n.toLocaleString("en-US");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const customerOf = (i: number) => `cust-${String(i).padStart(5, "0")}`;

async function inParallel(n: number, jobs: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    for (let j = next++; j < jobs.length; j = next++) await jobs[j]!();
  }));
}

async function load(b: Bench): Promise<void> {
  const t0 = performance.now();
  const metrics = `(ARRAY['${METRICS.join("','")}'])`;
  const jobs: (() => Promise<void>)[] = [];
  for (let lo = 0; lo < EVENTS; lo += LOAD_CHUNK) {
    const hi = Math.min(EVENTS, lo + LOAD_CHUNK) - 1;
    // Event g belongs to key g % KEYS: customer (g % KEYS) / 3, metric (g % KEYS) % 3, spread over the quarter.
    jobs.push(async () => {
      await b.db.pool.query(
        `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash)
         SELECT 'cust-' || lpad(((g % $3) / 3)::text, 5, '0'), 'e' || lpad(g::text, 9, '0'), ${metrics}[1 + (g % $3) % 3],
                1 + (g * 7919) % 100, timestamptz '${FROM}' + (g * (${QUARTER_SECONDS}.0 / $4)) * interval '1 second', md5(g::text)
         FROM generate_series($1::bigint, $2::bigint) g`,
        [lo, hi, KEYS, EVENTS],
      );
    });
  }
  await inParallel(2, jobs);
  const t1 = performance.now();
  const pairs = Array.from({ length: KEYS }, (_, k) => ({ customer_id: customerOf(Math.floor(k / 3)), metric: METRICS[k % 3]! }));
  const chunks: (() => Promise<void>)[] = [];
  for (let i = 0; i < pairs.length; i += 300) chunks.push(() => rebuildRollups(b.db.sql, pairs.slice(i, i + 300)));
  await inParallel(2, chunks);
  const t2 = performance.now();
  await b.analyze("usage_events", "usage_rollups");
  await b.checkpoint();
  log(
    `loaded ${fmt(EVENTS)} events in ${((t1 - t0) / 1000).toFixed(0)} s, rollups rebuilt in ${((t2 - t1) / 1000).toFixed(0)} s, ` +
      `VACUUM ANALYZE and CHECKPOINT in ${((performance.now() - t2) / 1000).toFixed(0)} s`,
  );
}

async function main() {
  await withBench({ name: "recon", role: "admin", clock: fixedClock("2026-11-15T12:00:00Z"), listen: true, poolSize: 10 }, async (b) => {
    const call = async (method: "GET" | "POST", path: string, body?: unknown) => {
      const res = await fetch(`${b.base}${path}`, {
        method,
        headers: { ...b.auth, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 500)}`);
      return JSON.parse(text);
    };

    const t0 = performance.now();
    const meters = [
      { metric: "api_calls", included: "10000", pricing: { model: "per_unit", unitPrice: "0.002" } },
      { metric: "storage_gb", pricing: { model: "graduated", tiers: [{ upTo: "5000", unitPrice: "0.10" }, { upTo: null, unitPrice: "0.05" }] } },
      { metric: "compute_min", included: "1000", pricing: { model: "per_unit", unitPrice: "0.01" } },
    ];
    await inParallel(8, Array.from({ length: CUSTOMERS }, (_, i) => async () => {
      await call("POST", "/v1/contracts", {
        customerId: customerOf(i), name: customerOf(i), currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01", terms: { meters },
      });
    }));
    log(`${fmt(CUSTOMERS)} contracts created through the API in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await load(b);

    // The baseline: one plain GROUP BY over the same events (as the owner would type it), best of 3 after a warm-up.
    const baselineSql = `SELECT customer_id, metric, sum(quantity)::bigint AS sum FROM usage_events
                         WHERE occurred_at >= '${FROM}' AND occurred_at < '${TO}' AND voided_at IS NULL GROUP BY customer_id, metric`;
    await b.db.pool.query(baselineSql);
    const baselineTimes: number[] = [];
    let raw = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const { rows } = await b.db.pool.query<{ customer_id: string; metric: string; sum: string }>(baselineSql);
      baselineTimes.push(performance.now() - t);
      raw = new Map(rows.map((r) => [`${r.customer_id}|${r.metric}`, r.sum]));
    }
    if (raw.size !== KEYS) throw new Error(`expected ${KEYS} keys, the baseline found ${raw.size}`);
    const { rows: [clock] } = await b.db.pool.query<{ now: Date }>("SELECT clock_timestamp() AS now");
    const invoicedAt = clock!.now.toISOString();

    // Every key metered and invoiced; BROKEN_PERCENT of them broken: under-billed, over-billed, double-metered.
    const metered: unknown[] = [];
    const invoiced: unknown[] = [];
    let broken = 0;
    for (let k = 0; k < KEYS; k++) {
      const customerId = customerOf(Math.floor(k / 3));
      const metric = METRICS[k % 3]!;
      const r = BigInt(raw.get(`${customerId}|${metric}`)!);
      const kind = (k * 37) % 100 < BROKEN_PERCENT ? Math.floor(k / 7) % 3 : -1;
      if (kind >= 0) broken++;
      metered.push({ customerId, metric, quantity: String(kind === 2 ? r * 2n : r) });
      const billed = kind === 0 ? (r * 9n) / 10n : kind === 1 ? (r * 11n) / 10n : r;
      invoiced.push({ customerId, metric, quantity: String(billed), amount: "0.00", invoiceRef: `in_${k}`, invoicedAt, kind: "invoice" });
    }
    const body = JSON.stringify({ periodStart: FROM, periodEnd: TO, metered, invoiced });

    const times: number[] = [];
    let last: any;
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      last = await call("POST", "/v1/reconciliations", body);
      times.push(performance.now() - t);
    }
    if (last.totals.keys !== KEYS || last.totals.breaks !== broken)
      throw new Error(`expected ${KEYS} keys and ${broken} breaks, got ${JSON.stringify(last.totals)}`);

    const e2e = median(times);
    const baseline = Math.min(...baselineTimes);
    log(`\nreconciliation of ${fmt(KEYS)} keys over ${fmt(EVENTS)} events, ${fmt(metered.length)} metered + ${fmt(invoiced.length)} invoiced rows ` +
      `(${(Buffer.byteLength(body) / 1024 / 1024).toFixed(1)} MiB), ${fmt(broken)} breaks priced:`);
    log(`  POST /v1/reconciliations end to end: median ${(e2e / 1000).toFixed(2)} s of ${RUNS} (${times.map((x) => (x / 1000).toFixed(2)).join(", ")} s) — ` +
      `target ≤ 5 s (must be ≤ 10 s): ${e2e <= 5000 ? "OK" : e2e <= 10_000 ? "OVER TARGET, UNDER LIMIT" : "OVER LIMIT"}`);
    log(`  plain SELECT … GROUP BY over the same events: best ${(baseline / 1000).toFixed(2)} s of 3`);
    log(`  ratio end to end / plain GROUP BY: ${(e2e / baseline).toFixed(2)}`);
    log(`  statement: ${JSON.stringify(last.totals)}, counts ${Object.entries(last.counts).map(([c, v]: [string, any]) => `${c} ${v.keys}`).join(", ")}`);

    // The row limit: the same keys as 100,000 metered and 100,000 invoiced rows (each key's quantity split over
    // ~24 rows, as a billing system exports invoice lines), with an Idempotency-Key, then its replay.
    if (WIDE_ROWS > 0) {
      // Each row into n parts (n = 23 or 24, so that there are exactly WIDE_ROWS), the first taking the remainder.
      const split = (rows: any[]) => {
        const out: any[] = [];
        rows.forEach((r, k) => {
          const n = Math.floor(WIDE_ROWS / rows.length) + (k < WIDE_ROWS % rows.length ? 1 : 0);
          const q = BigInt(r.quantity);
          for (let i = 0; i < n; i++) out.push({ ...r, quantity: String(i === 0 ? q - (q / BigInt(n)) * BigInt(n - 1) : q / BigInt(n)) });
        });
        return out;
      };
      const wide = JSON.stringify({ periodStart: FROM, periodEnd: TO, metered: split(metered), invoiced: split(invoiced) });
      const post = async (key: string) => {
        const t = performance.now();
        const res = await fetch(`${b.base}/v1/reconciliations`, { method: "POST", headers: { ...b.auth, "content-type": "application/json", "idempotency-key": key }, body: wide });
        const text = await res.text();
        if (res.status !== 201) throw new Error(`wide run → ${res.status} ${text.slice(0, 300)}`);
        return { ms: performance.now() - t, run: JSON.parse(text), replayed: res.headers.get("idempotent-replayed") === "true" };
      };
      const first = await post("bench-wide");
      const replay = await post("bench-wide");
      if (first.run.totals.breaks !== broken || !replay.replayed)
        throw new Error(`the wide run disagrees with the narrow one (${JSON.stringify(first.run.totals)}), or did not replay (${replay.replayed})`);
      log(`  the same keys as ${fmt(WIDE_ROWS)} + ${fmt(WIDE_ROWS)} rows (${(Buffer.byteLength(wide) / 1024 / 1024).toFixed(1)} MiB) with an Idempotency-Key: ` +
        `${(first.ms / 1000).toFixed(2)} s; its replay ${(replay.ms / 1000).toFixed(2)} s`);
    }
  });
}

run(main);
