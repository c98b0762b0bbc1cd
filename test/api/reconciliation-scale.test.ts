// A closed quarter of a real-world case at scale (DESIGN.md §7.1), through HTTP on a real PostgreSQL:
// 1,400 monthly contracts × 3 metrics, Q3 2026, ~31,500 usage events ingested in batches of up to 10,000,
// and the metering layer's and the billing system's rows for every key as the test builds them, with a
// known set of injected breaks and nothing else:
//   - late events (10 keys): ingested after the invoicedAt the billing rows carry → timing / watchlist;
//   - double-counted metered units (10 keys): M = 2R, I = R → metering / data, 0.00;
//   - a credit memo (1 key): invoices for the full raw plus a credit memo → credit / none;
//   - a mid-period amendment (1 contract, 2026-08-16, a new unit price) short on one metric → proration;
//   - unbilled overage (5 keys): invoiced for the included units only → under_bill / revops;
//   - one metered row for a customer no contract names → unmapped.
// Every other key matches (R = M = I). A second run of the same window, after the late events are billed,
// clears the watch-list.
//
// Quantities are deterministic, computed from the indexes (no randomness). Money is hand-computed from the
// terms below; see each injected class for the arithmetic.
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp, type TestApp } from "../helpers/app.js";
import { meter } from "../helpers/factories.js";

const Q3 = { periodStart: "2026-07-01T00:00:00Z", periodEnd: "2026-10-01T00:00:00Z" };
const ACCOUNTS = 1400;
const METRICS = ["api_calls", "storage_gb", "compute_min"] as const;
type Metric = (typeof METRICS)[number];
const MONTHS = [7, 8, 9] as const;

// Per-unit prices with included units per month: api_calls 1,000 included then 0.01; storage_gb 50 included
// then 0.10; compute_min nothing included, 0.05 (so its money is units × 0.05 whatever the spread).
const TERMS = { meters: [meter("api_calls", "0.01", "1000"), meter("storage_gb", "0.10", "50"), meter("compute_min", "0.05", "0")] };
// The amendment of the proration contract on 2026-08-16: compute_min at 0.08 from then on.
const AMENDED_TERMS = { meters: [meter("api_calls", "0.01", "1000"), meter("storage_gb", "0.10", "50"), meter("compute_min", "0.08", "0")] };
const AMENDED_FROM = "2026-08-16T00:00:00Z";

const customerOf = (i: number) => `acct-${String(i).padStart(4, "0")}`;
const aliasOf = (i: number) => `${customerOf(i)}-eu`;
/** Every ninth account has an alias: of each key's events in a month, all but the first arrive under it. */
const hasAlias = (i: number) => i % 9 === 4;
/** Half of the aliased accounts are invoiced under the alias, the rest under the customer. */
const invoicedUnderAlias = (i: number) => hasAlias(i) && i % 18 === 13;
const keyOf = (customerId: string, metric: string) => `${customerId}|${metric}`;

// The injected breaks: distinct accounts, so each contract has at most one broken key.
const TIMING = [13, 140, 277, 401, 555, 690, 812, 949, 1103, 1390]; // compute_min; 13 and 949 have an alias
const METERING = [21, 166, 302, 433, 579, 718, 860, 997, 1201, 1333]; // metric METRICS[k % 3]; 166 has an alias
const CREDIT = 640; // compute_min
const PRORATION = 777; // compute_min, the amended contract
const UNDER = [94, 350, 600, 1000, 1250]; // api_calls; 94 has an alias
const UNMAPPED = { customerId: "ghost-account-1", metric: "storage_gb", quantity: "50" };

const lateUnitsOf = (k: number) => 100 + 10 * k; // timing key k: 100, 110, …, 190 late units
const underMonthlyOf = (k: number) => 2000 + 100 * k; // under-bill key k: the same raw every month
const CREDIT_MONTHLY = 600;
const CREDIT_MEMO = 120;

const mm = (n: number) => String(n).padStart(2, "0");

/** One on-time event as the test generates it. */
interface Ev {
  eventId: string;
  customerId: string;
  metric: Metric;
  quantity: string;
  timestamp: string;
}

/** The normal usage of account i, metric j, month m: 2 or 3 events with quantities from the indexes. */
function normalParts(i: number, j: number, m: number): { quantity: number; day: number }[] {
  const parts = 2 + ((i + j + m) % 2);
  const modulus = [1500, 40, 900][j]!;
  return Array.from({ length: parts }, (_, p) => ({
    quantity: 1 + ((i * 131 + j * 977 + m * 37 + p * 613) % modulus),
    day: 2 + p * 9 + (i % 7),
  }));
}

/** The usage the test ingests on time for a key and month (the injected keys with their own figures). */
function partsOf(i: number, metric: Metric, m: number): { quantity: number; day: number }[] {
  const j = METRICS.indexOf(metric);
  if (metric === "api_calls" && UNDER.includes(i)) {
    const monthly = underMonthlyOf(UNDER.indexOf(i));
    return [{ quantity: monthly / 2, day: 5 }, { quantity: monthly / 2, day: 20 }];
  }
  if (metric === "compute_min" && i === CREDIT) return [{ quantity: CREDIT_MONTHLY / 2, day: 6 }, { quantity: CREDIT_MONTHLY / 2, day: 21 }];
  if (metric === "compute_min" && i === PRORATION) {
    // 1,000 units in July (the original version, 0.05) and 1,000 in September (the amendment, 0.08); none in August.
    if (m === 8) return [];
    return [{ quantity: 500, day: 10 }, { quantity: 500, day: 20 }];
  }
  return normalParts(i, j, m);
}

interface KeyFigures {
  customerId: string;
  metric: Metric;
  /** On-time raw units per month, and under the alias per month. */
  monthly: Record<number, number>;
  aliasMonthly: Record<number, number>;
  late: number;
}

/** Runs `fn` over `items` with at most `width` at a time, in order of start. */
async function pool<T, R>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const at = next++;
        out[at] = await fn(items[at]!, at);
      }
    }),
  );
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The database's clock: events received after it are late for an invoice stamped with it. */
async function dbNow(t: TestApp): Promise<string> {
  const { rows } = await t.db.pool.query<{ now: Date }>("SELECT clock_timestamp() AS now");
  return rows[0]!.now.toISOString();
}

async function reconcile(t: TestApp, body: Record<string, unknown>) {
  const res = await t.post("/v1/reconciliations", body, "writer");
  expect(res.statusCode, res.body.slice(0, 2000)).toBe(201);
  return res.json();
}

/** Every break of a run, page by page through the cursors. */
async function breaksOf(t: TestApp, runId: string, limit = 500): Promise<{ breaks: any[]; pages: number }> {
  const breaks: any[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await t.get(`/v1/reconciliations/${runId}/breaks?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, "reader");
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json();
    expect(page.data.length).toBeLessThanOrEqual(limit);
    breaks.push(...page.data);
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  return { breaks, pages };
}

/** The fields of one CSV record (quoted with "" escapes, or bare: the writer leaves empty values unquoted). */
function cellsOf(line: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    let value = "";
    if (line[at] === '"') {
      for (at++; ; at++) {
        if (line[at] === '"' && line[at + 1] === '"') (value += '"'), at++;
        else if (line[at] === '"') break;
        else if (at >= line.length) throw new Error(`unterminated field in ${line}`);
        else value += line[at];
      }
      at++;
    } else {
      const end = line.indexOf(",", at);
      value = line.slice(at, end < 0 ? line.length : end);
      at = end < 0 ? line.length : end;
    }
    out.push(value);
    if (at >= line.length) return out;
    if (line[at] !== ",") throw new Error(`expected a comma at ${at} in ${line}`);
    at++;
  }
}

interface ExpectedBreak {
  contractId: string | null;
  class: string;
  source: string | null;
  owner: string;
  raw: string;
  metered: string;
  invoiced: string;
  late: string;
  units: string;
  amount: string | null;
  currency: string | null;
}

const pick = (b: any): ExpectedBreak => ({
  contractId: b.contractId,
  class: b.class,
  source: b.source,
  owner: b.owner,
  raw: b.raw,
  metered: b.metered,
  invoiced: b.invoiced,
  late: b.late,
  units: b.units,
  amount: b.amount,
  currency: b.currency,
});

describe("a closed quarter at scale: 1,400 accounts × 3 metrics", () => {
  const t = useTestApp();

  const contractIds: string[] = [];
  const figures = new Map<string, KeyFigures>();
  const lateEvents: Ev[] = [];
  let invoicedAt = "";
  let metered: { customerId: string; metric: string; quantity: string }[] = [];
  let invoiced: Record<string, unknown>[] = [];
  /** The expected breaks of the first run, by customer|metric. */
  const expected = new Map<string, ExpectedBreak>();
  const timings: Record<string, number> = {};
  let firstRun: any;
  let firstBreaks: any[] = [];

  const figuresOf = (i: number, metric: Metric) => figures.get(keyOf(customerOf(i), metric))!;
  const rawOf = (f: KeyFigures) => MONTHS.reduce((s, m) => s + f.monthly[m]!, 0) + f.late;

  beforeAll(async () => {
    const started = Date.now();
    const lap = (name: string) => (timings[name] = Date.now() - started);

    // Contracts, 8 at a time, through POST /v1/contracts.
    const created = await pool(
      Array.from({ length: ACCOUNTS }, (_, i) => i),
      8,
      (i) =>
        t.createContract({
          customerId: customerOf(i),
          name: `Scale ${customerOf(i)}`,
          currency: "USD",
          billingPeriod: "monthly",
          startDate: "2026-01-01",
          endDate: "2026-12-31",
          ...(hasAlias(i) ? { accountIds: [aliasOf(i)] } : {}),
          terms: TERMS,
        }),
    );
    created.forEach((c, i) => (contractIds[i] = c.id));
    const amended = await t.post(`/v1/contracts/${contractIds[PRORATION]}/amendments`, { effectiveFrom: AMENDED_FROM, reason: "compute repriced", terms: AMENDED_TERMS }, "writer");
    expect(amended.statusCode, amended.body).toBe(201);
    lap("contracts");

    // On-time usage: every key, every month.
    const onTime: Ev[] = [];
    for (let i = 0; i < ACCOUNTS; i++)
      for (const metric of METRICS) {
        const f: KeyFigures = { customerId: customerOf(i), metric, monthly: {}, aliasMonthly: {}, late: 0 };
        for (const m of MONTHS) {
          f.monthly[m] = 0;
          f.aliasMonthly[m] = 0;
          partsOf(i, metric, m).forEach((part, p) => {
            const underAlias = hasAlias(i) && p > 0;
            onTime.push({
              eventId: `e-${i}-${metric}-${m}-${p}`,
              customerId: underAlias ? aliasOf(i) : customerOf(i),
              metric,
              quantity: String(part.quantity),
              timestamp: `2026-${mm(m)}-${mm(part.day)}T${mm((i * 7 + p) % 24)}:${mm((i * 13) % 60)}:00Z`,
            });
            f.monthly[m] = f.monthly[m]! + part.quantity;
            if (underAlias) f.aliasMonthly[m] = f.aliasMonthly[m]! + part.quantity;
          });
        }
        figures.set(keyOf(f.customerId, metric), f);
      }
    for (let at = 0; at < onTime.length; at += 10_000) {
      const batch = onTime.slice(at, at + 10_000);
      const counts = await t.ingest(batch);
      expect(counts).toMatchObject({ accepted: batch.length, duplicates: 0, conflicts: [] });
    }
    lap("ingest");

    // The invoice instant: after every on-time event, before every late one.
    await sleep(20);
    invoicedAt = await dbNow(t);
    await sleep(20);

    // Late events of the timing keys (September, under the alias when the account has one).
    TIMING.forEach((i, k) => {
      const half = lateUnitsOf(k) / 2;
      for (const [p, ts] of ["2026-09-28T08:00:00Z", "2026-09-30T20:00:00Z"].entries())
        lateEvents.push({ eventId: `late-${i}-${p}`, customerId: hasAlias(i) ? aliasOf(i) : customerOf(i), metric: "compute_min", quantity: String(half), timestamp: ts });
      figuresOf(i, "compute_min").late = lateUnitsOf(k);
    });
    expect(await t.ingest(lateEvents)).toMatchObject({ accepted: lateEvents.length, duplicates: 0 });

    // The metering layer: one row per key and month (aliased accounts: one row per stored id), the late
    // units included (it saw everything); double the raw on the metering keys; plus one unmapped row.
    const doubled = new Set(METERING.map((i, k) => keyOf(customerOf(i), METRICS[k % 3]!)));
    for (const [key, f] of figures) {
      const factor = doubled.has(key) ? 2 : 1;
      const i = Number(f.customerId.slice(5));
      for (const m of MONTHS) {
        const late = m === 9 ? f.late : 0;
        if (hasAlias(i)) {
          metered.push({ customerId: f.customerId, metric: f.metric, quantity: String(factor * (f.monthly[m]! - f.aliasMonthly[m]!)) });
          metered.push({ customerId: aliasOf(i), metric: f.metric, quantity: String(factor * (f.aliasMonthly[m]! + late)) });
        } else metered.push({ customerId: f.customerId, metric: f.metric, quantity: String(factor * (f.monthly[m]! + late)) });
      }
    }
    metered.push(UNMAPPED);

    // The billing system: one invoice row per key and month, for what had arrived by invoicedAt (so the
    // timing keys' September rows miss the late units). Under-bills: the included 1,000 only. The credit
    // key: full invoices plus one credit memo. The proration key: July in full, September short.
    for (const [, f] of figures) {
      const i = Number(f.customerId.slice(5));
      const billedAs = invoicedUnderAlias(i) ? aliasOf(i) : f.customerId;
      for (const m of MONTHS) {
        let quantity = f.monthly[m]!;
        if (f.metric === "api_calls" && UNDER.includes(i)) quantity = 1000;
        if (f.metric === "compute_min" && i === PRORATION) quantity = m === 7 ? 1000 : m === 8 ? 0 : 600;
        invoiced.push({ customerId: billedAs, metric: f.metric, quantity: String(quantity), invoiceRef: `in_${i}_${m}`, invoicedAt, kind: "invoice" });
      }
    }
    invoiced.push({ customerId: customerOf(CREDIT), metric: "compute_min", quantity: String(CREDIT_MEMO), amount: "6.00", invoiceRef: `cm_${CREDIT}`, invoicedAt, kind: "credit_memo" });

    // The expected breaks, figures and money by hand.
    const usd = (n: number) => n.toFixed(2);
    TIMING.forEach((i, k) => {
      const f = figuresOf(i, "compute_min");
      const r = rawOf(f), l = lateUnitsOf(k);
      // compute_min has nothing included: the money is the late units × 0.05 (5.00 for 100, … 9.50 for 190).
      expected.set(keyOf(f.customerId, f.metric), {
        contractId: contractIds[i]!, class: "timing", source: "billing", owner: "watchlist",
        raw: String(r), metered: String(r), invoiced: String(r - l), late: String(l), units: String(l), amount: usd(l * 0.05), currency: "USD",
      });
    });
    METERING.forEach((i, k) => {
      const f = figuresOf(i, METRICS[k % 3]!);
      const r = rawOf(f);
      expected.set(keyOf(f.customerId, f.metric), {
        contractId: contractIds[i]!, class: "metering", source: "metering", owner: "data",
        raw: String(r), metered: String(2 * r), invoiced: String(r), late: "0", units: "0", amount: "0.00", currency: "USD",
      });
    });
    {
      // Credit: R = 3 × 600 = 1,800, invoices 1,800, a 120-unit credit memo → I = 1,680; 120 × 0.05 = 6.00.
      const f = figuresOf(CREDIT, "compute_min");
      expect(rawOf(f)).toBe(1800);
      expected.set(keyOf(f.customerId, f.metric), {
        contractId: contractIds[CREDIT]!, class: "credit", source: "billing", owner: "none",
        raw: "1800", metered: "1800", invoiced: "1680", late: "0", units: "120", amount: "6.00", currency: "USD",
      });
    }
    {
      // Proration: R = 1,000 in July (version 1, 0.05) + 1,000 in September (the amendment, 0.08) → 50 + 80 = 130.00.
      // I = 1,600, spread over the periods in proportion to R: 800 in July, 800 in September → 40 + 64 = 104.00.
      // Money 26.00 (not 400 × 0.08 = 32.00: which month the billing system was short in is not known to the engine).
      const f = figuresOf(PRORATION, "compute_min");
      expect(rawOf(f)).toBe(2000);
      expected.set(keyOf(f.customerId, f.metric), {
        contractId: contractIds[PRORATION]!, class: "proration", source: "billing", owner: "revops",
        raw: "2000", metered: "2000", invoiced: "1600", late: "0", units: "400", amount: "26.00", currency: "USD",
      });
    }
    UNDER.forEach((i, k) => {
      // Under-bill k: R = 3 × (2,000 + 100k), the same every month; I = 3 × 1,000 (the included units), spread as R:
      // 1,000 a month, nothing billable. Money: 3 × (1,000 + 100k) billable × 0.01 = 30.00 + 3.00k.
      const monthly = underMonthlyOf(k);
      expected.set(keyOf(customerOf(i), "api_calls"), {
        contractId: contractIds[i]!, class: "under_bill", source: "billing", owner: "revops",
        raw: String(3 * monthly), metered: String(3 * monthly), invoiced: "3000", late: "0", units: String(3 * (monthly - 1000)),
        amount: usd(30 + 3 * k), currency: "USD",
      });
    });
    expected.set(keyOf(UNMAPPED.customerId, UNMAPPED.metric), {
      contractId: null, class: "unmapped", source: "metering", owner: "revops",
      raw: "0", metered: "50", invoiced: "0", late: "0", units: "0", amount: null, currency: null,
    });

    firstRun = await reconcile(t, { ...Q3, metered, invoiced });
    lap("run 1");
    firstBreaks = (await breaksOf(t, firstRun.id)).breaks;
    lap("breaks 1");
  }, 300_000);

  it("generated the quarter it meant to", () => {
    expect(contractIds).toHaveLength(ACCOUNTS);
    expect(new Set(contractIds).size).toBe(ACCOUNTS);
    expect(figures.size).toBe(ACCOUNTS * METRICS.length);
    expect(expected.size).toBe(TIMING.length + METERING.length + 1 + 1 + UNDER.length + 1);
    expect(metered.length).toBeLessThanOrEqual(100_000);
    expect(invoiced.length).toBeLessThanOrEqual(100_000);
    console.info(`[reconciliation-scale] timings (ms since start): ${JSON.stringify(timings)}`);
  });

  it("finds exactly the injected breaks, each with its class, source, units, money and owner", async () => {
    expect(firstRun.totals.keys).toBe(ACCOUNTS * METRICS.length + 1);
    expect(firstRun.totals.breaks).toBe(expected.size);
    expect(firstRun.status).toBe("open");
    expect(firstRun.currency).toBe("USD");
    expect(firstRun.invoicedSource).toBe("caller");
    expect(firstRun.rows).toEqual({ metered: metered.length, invoiced: invoiced.length });
    expect(firstRun.previousRunId).toBeNull();
    expect(firstRun.watchlist).toEqual({ cleared: 0, persisting: 0 });

    const actual = new Map(firstBreaks.map((b) => [keyOf(b.customerId, b.metric), b]));
    expect(actual.size).toBe(firstBreaks.length); // one break per key
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, want] of expected) expect({ key, ...pick(actual.get(key)) }).toEqual({ key, ...want });
    for (const b of firstBreaks) expect(b).toMatchObject({ runId: firstRun.id, previousClass: null, disposition: null });

    // The same breaks through smaller pages (the cursors carry on where the last page ended).
    const small = await breaksOf(t, firstRun.id, 5);
    expect(small.pages).toBe(Math.ceil(firstBreaks.length / 5));
    expect(small.breaks.map((b) => b.id)).toEqual(firstBreaks.map((b) => b.id));

    // The statement: counts per class, units and money summed by hand.
    const timingUnits = TIMING.reduce((s, _, k) => s + lateUnitsOf(k), 0); // 1,450
    const underUnits = UNDER.reduce((s, _, k) => s + 3 * (underMonthlyOf(k) - 1000), 0); // 18,000
    expect(firstRun.counts).toEqual({
      match: { keys: ACCOUNTS * METRICS.length - (expected.size - 1), units: "0", amount: "0.00" },
      timing: { keys: 10, units: String(timingUnits), amount: "72.50" },
      credit: { keys: 1, units: "120", amount: "6.00" },
      proration: { keys: 1, units: "400", amount: "26.00" },
      under_bill: { keys: 5, units: String(underUnits), amount: "180.00" },
      over_bill: { keys: 0, units: "0", amount: "0.00" },
      metering: { keys: 10, units: "0", amount: "0.00" },
      unmapped: { keys: 1, units: "0", amount: "0.00" },
    });
    expect(firstRun.totals).toEqual({ keys: 4201, breaks: 28, underBilled: "180.00", overBilled: "0.00" });
    expect(await t.get(`/v1/reconciliations/${firstRun.id}`, "reader").then((r) => r.json())).toEqual(firstRun);
  });

  it("writes one CSV row per break, with the break's figures", async () => {
    const csv = await t.get(`/v1/reconciliations/${firstRun.id}/breaks.csv`, "reader");
    expect(csv.statusCode).toBe(200);
    expect(csv.headers["content-type"]).toMatch(/^text\/csv/);
    const [header, ...rows] = csv.body.trim().split("\r\n");
    const columns = cellsOf(header!);
    expect(columns.slice(0, 15)).toEqual(["id", "contractId", "customerId", "metric", "class", "source", "owner", "raw", "metered", "invoiced", "late", "units", "amount", "currency", "previousClass"]);
    expect(rows).toHaveLength(firstBreaks.length);
    const byId = new Map(firstBreaks.map((b) => [b.id, b]));
    const seen = new Set<string>();
    for (const line of rows) {
      const values = cellsOf(line);
      expect(values).toHaveLength(columns.length);
      const cells = Object.fromEntries(values.map((v, c) => [columns[c]!, v]));
      const b = byId.get(cells.id!);
      expect(b, line).toBeDefined();
      expect(seen.has(cells.id!)).toBe(false);
      seen.add(cells.id!);
      expect(cells).toMatchObject({
        contractId: b.contractId ?? "", customerId: b.customerId, metric: b.metric, class: b.class, source: b.source ?? "", owner: b.owner,
        raw: b.raw, metered: b.metered, invoiced: b.invoiced, late: b.late, units: b.units, amount: b.amount ?? "", currency: b.currency ?? "", previousClass: "",
      });
    }
    expect(seen.size).toBe(firstBreaks.length);
  });

  it("clears the watch-list once the late events are billed, in a second run of the same window", async () => {
    const started = Date.now();
    await sleep(20);
    const billedAgainAt = await dbNow(t);
    expect(Date.parse(billedAgainAt)).toBeGreaterThan(Date.parse(invoicedAt));
    // The billing system bills the late units: the timing keys' September rows now carry them, stamped after them.
    const lateOfAccount = new Map(TIMING.map((i, k) => [i, lateUnitsOf(k)]));
    const rebilled = invoiced.map((row: any) => {
      const september = /^in_(\d+)_9$/.exec(row.invoiceRef);
      const late = row.metric === "compute_min" && row.kind === "invoice" && september ? lateOfAccount.get(Number(september[1])) : undefined;
      return late === undefined ? row : { ...row, quantity: String(Number(row.quantity) + late), invoiceRef: `${row.invoiceRef}_r`, invoicedAt: billedAgainAt };
    });
    expect(rebilled.filter((r: any) => r.invoicedAt === billedAgainAt)).toHaveLength(TIMING.length);

    const second = await reconcile(t, { ...Q3, metered, invoiced: rebilled });
    expect(second.previousRunId).toBe(firstRun.id);
    expect(second.watchlist).toEqual({ cleared: TIMING.length, persisting: 0 });
    expect(second.counts.timing).toEqual({ keys: 0, units: "0", amount: "0.00" });
    expect(second.counts.match.keys).toBe(firstRun.counts.match.keys + TIMING.length);
    expect(second.totals).toEqual({ keys: 4201, breaks: 18, underBilled: "180.00", overBilled: "0.00" });

    // Every other break is still there, as it was; none of them was on the watch-list.
    const { breaks } = await breaksOf(t, second.id);
    const stillExpected = [...expected].filter(([, b]) => b.class !== "timing");
    expect(breaks.map((b) => keyOf(b.customerId, b.metric)).sort()).toEqual(stillExpected.map(([k]) => k).sort());
    const byKey = new Map(breaks.map((b) => [keyOf(b.customerId, b.metric), b]));
    for (const [key, want] of stillExpected) expect({ key, ...pick(byKey.get(key)) }).toEqual({ key, ...want });
    for (const b of breaks) expect(b.previousClass).toBeNull();
    console.info(`[reconciliation-scale] second run and its breaks: ${Date.now() - started} ms`);
  });
});
