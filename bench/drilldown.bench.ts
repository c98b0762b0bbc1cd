// node_modules/.bin/tsx bench/drilldown.bench.ts — a usage line's drill-down CSV (GET /v1/documents/:id/lines/
// :lineNo/events.csv) over real HTTP for a line of 1,000,000 events: events/s and the process RSS before,
// during (sampled every 50 ms) and after, beside a baseline in the same run: the same events, columns and order
// as `COPY (SELECT …) TO STDOUT (FORMAT csv)` read through pg, one statement for the whole line. Target:
// ≥ 100,000 events/s, RSS flat (the stream holds three pages, whatever the line's size).
//
// The contract is created and the document issued through the API; the events are loaded with SQL
// (generate_series) with properties, its rollups built by the service's own rebuild, then VACUUM ANALYZE and
// CHECKPOINT as the owner. Events of another metric and of another customer sit in the same index beside them.
//
// Env: BENCH_EVENTS (1000000), BENCH_RUNS (3).
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { stringify } from "csv-stringify/sync";
import pgLib from "pg";
import { fixedClock } from "../src/clock.js";
import { rebuildRollups } from "../src/db/queries/usage.js";
import { type Bench, run, withBench } from "./harness.js";

const int = (name: string, dflt: number) => Number.parseInt(process.env[name] ?? String(dflt), 10);
const EVENTS = int("BENCH_EVENTS", 1_000_000);
const RUNS = int("BENCH_RUNS", 3);
const CUSTOMER = "bench-drill";
const FROM = "2026-06-01T00:00:00Z";
const JUNE_SECONDS = 30 * 86_400;
const LOAD_CHUNK = 250_000;
const TARGET = 100_000;

const log = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Samples the process RSS while a measurement runs. */
function rssSampler() {
  let max = 0;
  let min = Number.POSITIVE_INFINITY;
  const sample = () => {
    const r = process.memoryUsage.rss();
    max = Math.max(max, r);
    min = Math.min(min, r);
  };
  sample();
  const timer = setInterval(sample, 50);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { min, max };
    },
  };
}

/**
 * COPY … TO STDOUT on a pg client without a library: a submittable query whose CopyData messages are counted
 * (bytes and records) as they arrive, as a client reading the CSV would.
 */
class CopyOut extends EventEmitter {
  bytes = 0;
  records = 0;
  private done!: (e?: unknown) => void;
  readonly finished = new Promise<void>((resolve, reject) => {
    this.done = (e) => (e ? reject(e) : resolve());
  });
  private error: unknown;
  constructor(readonly text: string) {
    super();
  }
  submit(connection: { query(text: string): void }) {
    connection.query(this.text);
  }
  handleCopyData(msg: { chunk: Buffer }) {
    this.bytes += msg.chunk.length;
    this.records++; // text COPY sends one CopyData message per row
  }
  handleCommandComplete() {}
  handleEmptyQuery() {}
  handleRowDescription() {}
  handleDataRow() {}
  handleError(e: unknown) {
    this.error = e;
  }
  handleReadyForQuery() {
    this.done(this.error);
  }
}

async function load(b: Bench): Promise<void> {
  const t0 = performance.now();
  const jobs: Promise<void>[] = [];
  const insert = async (lo: number, hi: number, customer: string, metric: string) => {
    await b.db.pool.query(
      `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, properties, body_hash)
       SELECT $3, $4 || '-' || lpad(g::text, 9, '0'), $4, 1 + (g * 7919) % 100,
              timestamptz '${FROM}' + (g * (${JUNE_SECONDS}.0 / $5)) * interval '1 second',
              jsonb_build_object('region', (ARRAY['eu', 'us', 'ap'])[1 + g % 3], 'host', 'host-' || (g % 50)), md5(g::text)
       FROM generate_series($1::bigint, $2::bigint) g`,
      [lo, hi, customer, metric, EVENTS],
    );
  };
  // Two at a time: the line's events, then as many neighbours (another metric of the customer, another customer).
  const chunks: Array<() => Promise<void>> = [];
  for (let lo = 0; lo < EVENTS; lo += LOAD_CHUNK) {
    const hi = Math.min(EVENTS, lo + LOAD_CHUNK) - 1;
    chunks.push(() => insert(lo, hi, CUSTOMER, "api_calls"));
  }
  const neighbours = Math.min(EVENTS, 200_000);
  chunks.push(() => insert(0, neighbours - 1, CUSTOMER, "storage_gb"), () => insert(0, neighbours - 1, "bench-other", "api_calls"));
  let next = 0;
  for (let w = 0; w < 2; w++) jobs.push((async () => { for (let j = next++; j < chunks.length; j = next++) await chunks[j]!(); })());
  await Promise.all(jobs);
  const t1 = performance.now();
  await rebuildRollups(b.db.sql, [{ customer_id: CUSTOMER, metric: "api_calls" }, { customer_id: CUSTOMER, metric: "storage_gb" }]);
  await b.analyze("usage_events", "usage_rollups");
  await b.checkpoint();
  log(`loaded ${fmt(EVENTS)} + ${fmt(2 * neighbours)} events in ${((t1 - t0) / 1000).toFixed(0)} s; rollups, VACUUM ANALYZE, CHECKPOINT in ${((performance.now() - t1) / 1000).toFixed(0)} s`);
}

async function main() {
  // Load shedding off (maxEventLoopDelayMs): the bench measures a stream, not how a busy machine sheds requests.
  await withBench({ name: "drilldown", role: "admin", clock: fixedClock("2026-11-15T12:00:00Z"), listen: true, maxEventLoopDelayMs: 60_000 }, async (b) => {
    const call = async (method: "GET" | "POST", path: string, body?: unknown) => {
      const res = await fetch(`${b.base}${path}`, {
        method,
        headers: { ...b.auth, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 500)}`);
      return JSON.parse(text);
    };
    const contract = await call("POST", "/v1/contracts", {
      customerId: CUSTOMER, name: "drill-down bench", currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01",
      terms: { meters: [{ metric: "api_calls", pricing: { model: "per_unit", unitPrice: "0.0001" } }, { metric: "storage_gb", aggregation: "time_weighted", pricing: { model: "per_unit", unitPrice: "0.01" } }] },
    });
    await load(b);
    const calc = await call("POST", `/v1/contracts/${contract.id}/true-ups/preview`, { periodStart: FROM });
    for (const e of calc.exceptions.filter((x: any) => x.blocking)) await call("POST", `/v1/exceptions/${e.id}/resolve`, { decision: "approve", note: "bench" });
    const doc = await call("POST", `/v1/contracts/${contract.id}/true-ups`, { calculationId: calc.id });
    const line = doc.lines.find((l: any) => l.kind === "usage" && l.metric === "api_calls");
    const { from, to } = line.explanation.segment;
    log(`document ${doc.number}: line ${line.lineNo} (${line.metric}, usage ${line.explanation.usage}) over [${from}, ${to})`);

    // The baseline: the same events, columns and order, as PostgreSQL writes CSV itself.
    const ts = (c: string) => `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
    const copySql = `COPY (
      SELECT e.event_id, e.customer_id, e.metric, trim_scale(e.quantity), ${ts("e.occurred_at")}, e.properties::text, ${ts("e.received_at")},
             false, e.voided_at IS NOT NULL
      FROM usage_events e
      WHERE e.customer_id = '${CUSTOMER}' AND e.metric = 'api_calls' AND e.occurred_at >= '${from}' AND e.occurred_at < '${to}'
        AND e.received_at <= '${doc.issuedAt}' AND (e.voided_at IS NULL OR e.voided_at > '${doc.issuedAt}')
      ORDER BY e.occurred_at, e.received_at, e.customer_id, e.event_id
    ) TO STDOUT WITH (FORMAT csv, HEADER, FORCE_QUOTE *)`;
    const baseline: number[] = [];
    let copied = { records: 0, bytes: 0 };
    for (let i = 0; i < RUNS; i++) {
      const client = new pgLib.Client({ connectionString: b.pg.runtimeUrl });
      await client.connect();
      try {
        const t = performance.now();
        const copy = client.query(new CopyOut(copySql) as never) as unknown as CopyOut;
        await copy.finished;
        baseline.push(performance.now() - t);
        copied = { records: copy.records - 1, bytes: copy.bytes };
      } finally {
        await client.end();
      }
    }
    if (copied.records !== EVENTS) throw new Error(`the baseline copied ${copied.records} events, expected ${EVENTS}`);

    // The drill-down over real HTTP, read as a client reads it: chunk by chunk, rows counted.
    const url = `${b.base}/v1/documents/${doc.id}/lines/${line.lineNo}/events.csv`;
    const times: number[] = [];
    const cpu: number[] = [];
    const rss: Array<{ before: number; min: number; max: number; after: number }> = [];
    let bytes = 0;
    for (let i = 0; i < RUNS; i++) {
      global.gc?.();
      const before = process.memoryUsage.rss();
      const sampler = rssSampler();
      const cpu0 = process.cpuUsage();
      const t = performance.now();
      const res = await fetch(url, { headers: b.auth });
      if (res.status !== 200 || !res.body) throw new Error(`GET events.csv → ${res.status} ${await res.text()}`);
      let newlines = 0;
      bytes = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        for (let k = chunk.indexOf(10); k !== -1; k = chunk.indexOf(10, k + 1)) newlines++;
      }
      times.push(performance.now() - t);
      const used = process.cpuUsage(cpu0);
      cpu.push(used.user + used.system);
      const { min, max } = sampler.stop();
      rss.push({ before, min, max, after: process.memoryUsage.rss() });
      if (newlines !== EVENTS + 1) throw new Error(`the CSV had ${newlines - 1} rows, expected ${EVENTS}`);
    }

    // What csv-stringify alone costs (the writer of the service's other CSV files, and of this one before
    // PostgreSQL wrote it): the first 5,000 rows as strings, stringified as often as the line has pages.
    const { rows: sample } = await b.db.pool.query<string[]>({
      text: copySql.replace(/^COPY \(/, "").replace(/\) TO STDOUT.*$/s, "") + " LIMIT 5000",
      rowMode: "array",
    });
    const records = sample.map((r) => r.map((v) => (v === null ? "" : String(v))));
    const w0 = process.cpuUsage();
    const w = performance.now();
    for (let done = 0; done < EVENTS; done += records.length) stringify(records, { quoted: true, quoted_empty: true, record_delimiter: "\r\n" });
    const writerMs = performance.now() - w;
    const writerCpu = process.cpuUsage(w0);

    const http = median(times);
    const copy = Math.min(...baseline);
    const rate = (EVENTS / http) * 1000;
    log(`\n${fmt(EVENTS)} events of one usage line as CSV (${mib(bytes)}; COPY's ${mib(copied.bytes)}):`);
    log(`  GET …/events.csv over HTTP: median ${(http / 1000).toFixed(2)} s of ${RUNS} (${times.map((x) => (x / 1000).toFixed(2)).join(", ")} s) = ` +
      `${fmt(rate)} events/s — target ≥ ${fmt(TARGET)} events/s: ${rate >= TARGET ? "OK" : "BELOW TARGET"}`);
    log(`  COPY (SELECT …) TO STDOUT through pg: best ${(copy / 1000).toFixed(2)} s of ${RUNS} = ${fmt((EVENTS / copy) * 1000)} events/s; ratio HTTP / COPY ${(http / copy).toFixed(2)}`);
    log(`  process CPU during the HTTP runs (server and the in-process client): median ${(median(cpu) / EVENTS).toFixed(1)} µs per event`);
    log(`  csv-stringify alone on the same rows (for comparison; not on this route's path): ${fmt((EVENTS / writerMs) * 1000)} events/s, ${((writerCpu.user + writerCpu.system) / EVENTS).toFixed(1)} µs CPU per event`);
    for (const [i, r] of rss.entries())
      log(`  RSS run ${i + 1}: before ${mib(r.before)}, during ${mib(r.min)}–${mib(r.max)}, after ${mib(r.after)} (peak − before: ${mib(r.max - r.before)})`);
  });
}

run(main);
