// npm run bench:http — what the HTTP stack costs. In one run: an embedded PostgreSQL, migrations, the real app
// listening on a free port with a real API key; autocannon on GET /v1/contracts/{id} (auth, rate limit, a
// database read, zod serialisation), then on a bare Fastify app answering the same JSON from memory. Prints
// both requests/s, their ratio (target ≥ 0.3), and a CPU profile of the real app grouped by package.
import { Session } from "node:inspector/promises";
import autocannon from "autocannon";
import Fastify from "fastify";
import { ratioToBaseline, run, withBench } from "./harness.js";

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);

async function load(url: string, headers: Record<string, string> = {}, duration = DURATION) {
  const result = await autocannon({ url, connections: CONNECTIONS, duration, headers });
  const non2xx = result.non2xx + result.errors + result.timeouts;
  if (non2xx > 0) throw new Error(`${url}: ${non2xx} failed requests`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, total: result.requests.total };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

function category(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "node (native)";
  if (url.includes("/node_modules/")) {
    const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url.slice(url.lastIndexOf("/node_modules/")))?.[1] ?? "?";
    if (pkg.startsWith("@prisma/") || pkg === "prisma") return "prisma";
    if (pkg === "pg" || pkg.startsWith("pg-") || pkg === "postgres-array" || pkg === "pgpass") return "pg";
    if (pkg === "zod" || pkg === "fastify-type-provider-zod") return "zod";
    if (pkg === "fastify" || pkg.startsWith("@fastify/") || ["find-my-way", "light-my-request", "avvio", "fast-json-stringify", "secure-json-parse", "fast-querystring", "toad-cache", "process-warning"].includes(pkg))
      return "fastify";
    if (pkg === "pino" || pkg.startsWith("pino-") || pkg === "sonic-boom") return "pino";
    if (pkg === "autocannon" || pkg === "hdr-histogram-js" || pkg === "reinterval" || pkg === "retimer") return "autocannon (load generator)";
    if (pkg === "tsx" || pkg === "esbuild") return "tsx";
    return pkg;
  }
  if (url.includes("/src/")) return "ours (src/)";
  if (url.startsWith("node:")) return "node (core)";
  return url;
}

async function profileWhile<T>(run: () => Promise<T>): Promise<{ result: T; byCategory: [string, number][]; topFunctions: [string, number][] }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  const result = await run();
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  const nodes = new Map<number, ProfileNode>((profile.nodes as ProfileNode[]).map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples!.forEach((id: number, i: number) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas![i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of self) {
    const n = nodes.get(id)!;
    const cat = category(n.callFrame.url, n.callFrame.functionName);
    cats.set(cat, (cats.get(cat) ?? 0) + us);
    const where = n.callFrame.url ? `${n.callFrame.url.replace(/^.*\/(node_modules|src)\//, "$1/")}:${n.callFrame.lineNumber + 1}` : "";
    const key = `${n.callFrame.functionName || "(anonymous)"} ${where} [${cat}]`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const pct = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, (100 * v) / total] as [string, number]);
  return { result, byCategory: pct(cats), topFunctions: pct(fns).slice(0, 15) };
}

async function main() {
  const poolSize = Number(process.env.DB_POOL_SIZE ?? 10);
  await withBench({ name: "http", role: "admin", poolSize, listen: true }, async ({ base: address, auth }) => {
    const created = await fetch(`${address}/v1/contracts`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        customerId: "bench-acme",
        accountIds: ["bench-acme-eu"],
        name: "Bench contract",
        currency: "USD",
        billingPeriod: "monthly",
        startDate: "2026-01-01",
        endDate: "2026-12-31",
        terms: {
          platformFee: { amount: "10000.00" },
          meters: [{ metric: "api_calls", included: "1000000", pricing: { model: "per_unit", unitPrice: "0.08" } }],
        },
      }),
    });
    if (created.status !== 201) throw new Error(`create contract: ${created.status} ${await created.text()}`);
    const contract = (await created.json()) as { id: string };
    const url = `${address}/v1/contracts/${contract.id}`;
    const sample = await (await fetch(url, { headers: auth })).json();

    const bare = Fastify({ logger: false });
    bare.get("/v1/contracts/:id", async () => sample);
    const bareAddress = await bare.listen({ port: 0, host: "127.0.0.1" });

    process.stdout.write(`autocannon: ${CONNECTIONS} connections, ${DURATION} s each (load generator in this process)\n`);
    await load(url, auth, 2); // warm-up: JIT, pool connections, Prisma's query plan cache
    await load(`${bareAddress}/v1/contracts/${contract.id}`, {}, 2);
    const real = await load(url, auth);
    const baseline = await load(`${bareAddress}/v1/contracts/${contract.id}`);
    await bare.close();

    const { ratio, text } = ratioToBaseline(real.rps, baseline.rps, 0.3);
    const row = (name: string, r: typeof real) =>
      `  ${name.padEnd(44)} ${r.rps.toFixed(0).padStart(8)} req/s   p50 ${String(r.p50).padStart(3)} ms   p99 ${String(r.p99).padStart(3)} ms`;
    process.stdout.write(`${row("GET /v1/contracts/{id} (real app)", real)}\n`);
    process.stdout.write(`${row("bare Fastify, same JSON from memory", baseline)}\n`);
    process.stdout.write(`  ratio real / bare: ${text}\n\n`);

    const { byCategory, topFunctions } = await profileWhile(() => load(url, auth, Math.min(DURATION, 5)));
    process.stdout.write("CPU profile of the real app under load (self time, this process):\n");
    for (const [cat, p] of byCategory.filter(([, p]) => p >= 0.5)) process.stdout.write(`  ${p.toFixed(1).padStart(5)}%  ${cat}\n`);
    process.stdout.write("top functions:\n");
    for (const [fn, p] of topFunctions) process.stdout.write(`  ${p.toFixed(1).padStart(5)}%  ${fn}\n`);
    if (process.env.BENCH_STRICT && ratio < 0.3) process.exitCode = 1;
  });
}

run(main);
