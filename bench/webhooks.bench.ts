// npm run bench:webhooks — the delivery latency DESIGN.md §9 names: from a usage batch's commit (the HTTP
// response of POST /v1/usage) to the first delivery attempt's arrival at a receiver on 127.0.0.1, for batches
// touching up to 100 contracts. The real app listening on a free port, its job worker inline (evaluate_alerts
// coalesced per contract, then one deliver_webhook job per event), a real receiver answering 204.
//
// BENCH_CONTRACTS contracts (100), each with BENCH_BATCHES quantity alerts (25) at 50, 100, 150, … api_calls;
// BENCH_BATCHES batches, each bringing every contract 50 api_calls, so batch k crosses alert k of every
// contract: BENCH_CONTRACTS × BENCH_BATCHES crossings (2,500), each measured as the arrival of its event's
// first attempt − the response time of the batch that crossed it. By default a batch is sent once the
// previous batch's webhooks have all arrived (each batch's latency on its own); BENCH_INTERVAL_MS=n sends one
// every n ms instead, whether or not the previous one's have (a sustained stream: what the worker keeps up
// with). Printed beside a baseline taken in the same run: a bare HTTP POST of a body of the same size from
// this process to the same receiver. Target: p99 < 5 s (the process exits 1 otherwise, or when a crossing
// never arrives).
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { fixedClock } from "../src/clock.js";
import { type Received, startReceiver } from "../test/helpers/receiver.js";
import { run, withBench } from "./harness.js";

const int = (name: string, dflt: number) => Number.parseInt(process.env[name] ?? String(dflt), 10);
const CONTRACTS = int("BENCH_CONTRACTS", 100);
const BATCHES = int("BENCH_BATCHES", 25);
const INTERVAL_MS = int("BENCH_INTERVAL_MS", 0);
const BASELINE_POSTS = int("BENCH_BASELINE_POSTS", 500);
const STEP = 50;
const TARGET_P99_MS = 5000;
const NOW = "2026-11-15T12:00:00.000Z";

if (BATCHES > 50) throw new Error("BENCH_BATCHES is at most 50 (the alerts of one contract's terms)");

const log = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number) => n.toLocaleString("en-US");
const ms = (n: number) => `${fmt(Math.round(n))} ms`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
const customerOf = (i: number) => `wh-${String(i).padStart(4, "0")}`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function inParallel(n: number, jobs: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    for (let j = next++; j < jobs.length; j = next++) await jobs[j]!();
  }));
}

async function main() {
  const receiver = await startReceiver();
  let failed = false;
  try {
    await withBench({ name: "webhooks", role: "admin", clock: fixedClock(NOW), listen: true, maxEventLoopDelayMs: 60_000 }, async (b) => {
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

      const t0 = performance.now();
      const { secret } = await call("POST", "/v1/webhook-endpoints", { url: receiver.url, eventTypes: ["usage.threshold_crossed"], description: "bench" });
      const terms = {
        meters: [{ metric: "api_calls", included: "100", pricing: { model: "per_unit", unitPrice: "1" } }],
        alerts: Array.from({ length: BATCHES }, (_, k) => ({ id: `q${k}`, kind: "quantity", metric: "api_calls", threshold: String(STEP * (k + 1)) })),
      };
      const contractOf = new Map<string, string>(); // contract id → customer
      await inParallel(8, Array.from({ length: CONTRACTS }, (_, i) => async () => {
        const c = await call("POST", "/v1/contracts", {
          customerId: customerOf(i), name: customerOf(i), currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01", terms,
        });
        contractOf.set(c.id, customerOf(i));
      }));
      log(`${fmt(CONTRACTS)} contracts with ${BATCHES} alerts each created through the API in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

      // The baseline: a bare POST from this process to the same receiver, a body of a webhook's size; after a warm-up.
      const sample = JSON.stringify({ type: "usage.threshold_crossed", timestamp: NOW, data: { id: randomUUID(), contractId: randomUUID(), alertId: "q10", kind: "quantity", metric: "api_calls", grantId: null, threshold: "550", value: "550", share: null, period: { start: "2026-11-01T00:00:00.000Z", end: "2026-12-01T00:00:00.000Z" }, version: 1, firedAt: NOW } });
      const bare = async () => {
        const t = performance.now();
        const res = await fetch(receiver.url, { method: "POST", headers: { "content-type": "application/json" }, body: sample });
        await res.arrayBuffer();
        return performance.now() - t;
      };
      for (let i = 0; i < 50; i++) await bare();
      const baseline: number[] = [];
      for (let i = 0; i < BASELINE_POSTS; i++) baseline.push(await bare());
      baseline.sort((x, y) => x - y);
      receiver.received.length = 0;

      // Every crossing's first attempt, by (contract, alert), as the receiver's requests come in.
      const expected = CONTRACTS * BATCHES;
      const first = new Map<string, Received>();
      const perBatch = new Array<number>(BATCHES).fill(0);
      let seen = 0;
      const collect = () => {
        for (; seen < receiver.received.length; seen++) {
          const r = receiver.received[seen]!;
          const data = JSON.parse(r.body).data;
          const key = `${data.contractId}|${data.alertId}`;
          if (first.has(key)) continue;
          first.set(key, r);
          perBatch[Number(String(data.alertId).slice(1))]!++;
        }
      };
      const waitUntil = async (done: () => boolean, ms: number) => {
        const deadline = Date.now() + ms;
        for (collect(); !done() && Date.now() < deadline; collect()) await sleep(10);
        return done();
      };

      // The batches: batch k brings every contract to STEP × (k + 1) api_calls, crossing its alert q<k>.
      const committedAt: number[] = [];
      const batchMs: number[] = [];
      const started = performance.now();
      let seq = 0;
      for (let k = 0; k < BATCHES; k++) {
        if (INTERVAL_MS > 0) {
          const due = started + k * INTERVAL_MS;
          if (performance.now() < due) await sleep(due - performance.now());
        } else if (k > 0 && !(await waitUntil(() => perBatch[k - 1] === CONTRACTS, 60_000))) {
          break; // reported below
        }
        const events = Array.from({ length: CONTRACTS }, (_, i) =>
          [0, 1].map((j) => ({
            eventId: `b${k}-${i}-${j}-${++seq}`,
            customerId: customerOf(i),
            metric: "api_calls",
            quantity: String(STEP / 2),
            timestamp: new Date(Date.parse("2026-11-02T00:00:00Z") + (k * 2 + j) * 3_600_000).toISOString(),
          })),
        ).flat();
        const t = performance.now();
        const res = await call("POST", "/v1/usage", { events });
        committedAt[k] = Date.now(); // the receiver stamps arrivals with Date.now() in this same process
        batchMs[k] = performance.now() - t;
        if (res.accepted !== events.length) throw new Error(`batch ${k}: ${JSON.stringify(res).slice(0, 300)}`);
      }
      const sent = performance.now();
      await waitUntil(() => first.size === expected, 120_000);
      const drained = performance.now();
      if (first.size < expected) {
        failed = true;
        log(`only ${fmt(first.size)} of ${fmt(expected)} crossings arrived (per batch: ${perBatch.join(", ")})`);
        return;
      }

      // Each request verifies (the specification's reference library); one webhook-id per crossing.
      const ids = new Set<string>();
      for (const r of receiver.received) {
        receiver.verify(secret, r);
        ids.add(String(r.headers["webhook-id"]));
      }
      if (ids.size !== expected) throw new Error(`expected ${expected} distinct webhook-ids, got ${ids.size}`);
      const alerts = await b.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM alerts");
      if (alerts.rows[0]!.n !== expected) throw new Error(`expected ${expected} alerts, got ${alerts.rows[0]!.n}`);

      const latencies: number[] = [];
      for (const [key, r] of first) {
        const [contractId, alertId] = key.split("|") as [string, string];
        if (!contractOf.has(contractId)) throw new Error(`a webhook for an unknown contract ${contractId}`);
        const k = Number(alertId.slice(1));
        latencies.push(r.at - committedAt[k]!);
      }
      latencies.sort((x, y) => x - y);
      const p = (q: number) => percentile(latencies, q);
      const p99 = p(99);
      batchMs.sort((x, y) => x - y);

      const pace = INTERVAL_MS > 0 ? `one every ${fmt(INTERVAL_MS)} ms` : "each once the previous one's webhooks had arrived";
      log(`\n${fmt(BATCHES)} batches of ${fmt(CONTRACTS * 2)} events (${fmt(CONTRACTS)} contracts each), ${pace}; ` +
        `POST /v1/usage median ${ms(percentile(batchMs, 50))}, max ${ms(batchMs.at(-1)!)}`);
      log(`${fmt(expected)} crossings, ${fmt(receiver.received.length)} requests received (${fmt(ids.size)} distinct webhook-ids, all verified), ` +
        `the last ${ms(drained - sent)} after the last batch; ${fmt(Math.round(expected / ((drained - started) / 1000)))} crossings/s overall`);
      log(`\nbatch commit → first delivery attempt at the receiver:`);
      log(`  p50 ${ms(p(50))}   p95 ${ms(p(95))}   p99 ${ms(p99)}   max ${ms(latencies.at(-1)!)}   (min ${ms(latencies[0]!)})`);
      log(`  target p99 < ${ms(TARGET_P99_MS)}: ${p99 < TARGET_P99_MS ? "OK" : "OVER TARGET"}`);
      const b50 = percentile(baseline, 50);
      const b99 = percentile(baseline, 99);
      log(`baseline, a bare POST of ${fmt(Buffer.byteLength(sample))} bytes from this process to the same receiver (${fmt(BASELINE_POSTS)}, one at a time):`);
      log(`  p50 ${b50.toFixed(2)} ms   p99 ${b99.toFixed(2)} ms`);
      log(`  ratios: p50 ${fmt(Math.round(p(50) / b50))}×, p99 ${fmt(Math.round(p99 / b99))}× the bare POST`);
      if (p99 >= TARGET_P99_MS) failed = true;
    });
  } finally {
    await receiver.close();
  }
  if (failed) process.exitCode = 1;
}

run(main);
