// npm run bench:trueup — preview latency against the number of events in the period, and issue throughput.
// A real embedded PostgreSQL and the real app (through inject: the full Fastify stack without a socket).
// Events are loaded with SQL (generate_series) into usage_events and the hourly rollups exactly as
// ingestion would keep them; ingestion itself is measured by bench:ingest.
import { performance } from "node:perf_hooks";
import { fixedClock } from "../src/clock.js";
import { run, withBench } from "./harness.js";

const SIZES = (process.env.BENCH_SIZES ?? "100000,1000000,10000000").split(",").map((s) => Number.parseInt(s, 10));
const PREVIEWS = Number.parseInt(process.env.BENCH_PREVIEWS ?? "60", 10);
const CONTRACTS = Number.parseInt(process.env.BENCH_CONTRACTS ?? "1000", 10);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function main() {
  // The data is January 2026: a fixed clock keeps its late events inside the usage window whenever it runs.
  await withBench({ name: "trueup", role: "admin", clock: fixedClock("2026-03-01T00:00:00Z") }, async ({ db, app, auth, analyze }) => {
    const call = async (method: "GET" | "POST", url: string, payload?: object) => {
      const res = await app.inject({ method, url, payload, headers: auth });
      if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
      return res.json();
    };
    const meters = [
      { metric: "api_calls", included: "100000", pricing: { model: "per_unit", unitPrice: "0.0008" } },
      { metric: "storage_gb", pricing: { model: "graduated", tiers: [{ upTo: "1000", unitPrice: "0.10" }, { upTo: "100000", unitPrice: "0.05" }, { upTo: null, unitPrice: "0.01" }] } },
      { metric: "seats", pricing: { model: "volume", tiers: [{ upTo: "100", unitPrice: "10" }, { upTo: null, unitPrice: "8" }] } },
    ];

    console.log(`preview latency, contract with 3 meters, events in the period (${PREVIEWS} previews each):`);
    const rows: string[] = [];
    const big: { size: number; contractId: string; calcId: string }[] = [];
    const previewTimes = async (contractId: string) => {
      const times: number[] = [];
      let last: any;
      for (let i = 0; i < PREVIEWS + 5; i++) {
        const s = performance.now();
        last = await call("POST", `/v1/contracts/${contractId}/true-ups/preview`, { periodStart: "2026-01-01T00:00:00Z" });
        if (i >= 5) times.push(performance.now() - s); // the first few warm caches and JIT
      }
      return { times, last };
    };
    for (const size of SIZES) {
      const customerId = `bench-${size}`;
      const c = await call("POST", "/v1/contracts", {
        customerId, name: customerId, currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01",
        terms: { platformFee: { amount: "500.00" }, meters, commitment: { amount: "1000.00" } },
      });
      const t0 = performance.now();
      // size events spread evenly over January 2026 across the 3 metrics, then the rollups they imply.
      await db.pool.query(
        `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash)
         SELECT $1, 'e' || g, (ARRAY['api_calls','storage_gb','seats'])[1 + g % 3], 1 + (g % 7),
                timestamptz '2026-01-01 00:00:00+00' + (g * (2678400.0 / $2)) * interval '1 second', md5(g::text)
         FROM generate_series(0, $2 - 1) g`,
        [customerId, size],
      );
      await db.pool.query(
        `INSERT INTO usage_rollups (customer_id, metric, hour, quantity, events)
         SELECT customer_id, metric, date_trunc('hour', occurred_at, 'UTC'), sum(quantity), count(*)
         FROM usage_events WHERE customer_id = $1 GROUP BY 1, 2, 3`,
        [customerId],
      );
      await analyze("usage_events", "usage_rollups");
      const loadS = (performance.now() - t0) / 1000;
      const { times, last } = await previewTimes(c.id);
      big.push({ size, contractId: c.id, calcId: last.id });
      rows.push(`  ${String(size).padStart(10)} events: p50 ${pct(times, 50).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms (total ${last.total} USD; loaded in ${loadS.toFixed(1)} s)`);
      console.log(rows[rows.length - 1]);
    }

    console.log("\nthe same previews after the period's invoice was issued and 10 late events arrived (late_usage check):");
    for (const b of big) {
      await call("POST", `/v1/contracts/${b.contractId}/true-ups`, { calculationId: b.calcId });
      const late = Array.from({ length: 10 }, (_, i) => ({
        eventId: `late-${i}`, customerId: `bench-${b.size}`, metric: "api_calls", quantity: "1000", timestamp: "2026-01-31T12:00:00Z",
      }));
      await call("POST", "/v1/usage", { events: late });
      const { times, last } = await previewTimes(b.contractId);
      const kinds = last.exceptions.map((e: { kind: string }) => e.kind).join(",");
      console.log(`  ${String(b.size).padStart(10)} events: p50 ${pct(times, 50).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms (delta ${last.delta}; exceptions: ${kinds})`);
    }

    console.log(`\nissue throughput: ${CONTRACTS} contracts, each previewed then issued (4 in flight):`);
    const ids: { contract: string; calc: string }[] = [];
    const pre = performance.now();
    for (let i = 0; i < CONTRACTS; i++) {
      const customerId = `issue-${i}`;
      const c = await call("POST", "/v1/contracts", {
        customerId, name: customerId, currency: "USD", billingPeriod: "monthly", startDate: "2026-01-01",
        terms: { platformFee: { amount: "100.00" }, meters: [meters[0]] },
      });
      ids.push({ contract: c.id, calc: "" });
    }
    await db.pool.query(
      `INSERT INTO usage_events (customer_id, event_id, metric, quantity, occurred_at, body_hash)
       SELECT 'issue-' || (g % $1), 'i' || g, 'api_calls', 1000, timestamptz '2026-01-10 00:00:00+00' + (g % 500) * interval '1 minute', md5(g::text)
       FROM generate_series(0, $1 * 200 - 1) g`,
      [CONTRACTS],
    );
    await db.pool.query(
      `INSERT INTO usage_rollups (customer_id, metric, hour, quantity, events)
       SELECT customer_id, metric, date_trunc('hour', occurred_at, 'UTC'), sum(quantity), count(*)
       FROM usage_events WHERE customer_id LIKE 'issue-%' GROUP BY 1, 2, 3`,
    );
    for (const x of ids) x.calc = (await call("POST", `/v1/contracts/${x.contract}/true-ups/preview`, { periodStart: "2026-01-01T00:00:00Z" })).id;
    console.log(`  (set-up: ${((performance.now() - pre) / 1000).toFixed(1)} s)`);
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
    console.log(`  ${n} documents in ${secs.toFixed(2)} s: ${(n / secs).toFixed(0)} issues/s; latency p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms`);
  });
}

run(main);
