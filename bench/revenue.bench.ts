// npm run bench:revenue — the book-wide revenue report (GET /v1/revenue) for 10,000 monthly contracts × 12 issued
// months, and the per-contract report (GET /v1/contracts/{id}/revenue) p50/p99, through the real app (inject:
// the full Fastify stack without a socket), beside one plain SQL aggregate of the same document lines per
// currency and month. Targets: the book ≤ 3 s; the per-contract report p99 ≤ 50 ms.
//
// The book is seeded with SQL (contracts, versions, calculations, documents and their lines), as issuing would
// have written them: a platform fee line and a usage line per month, every tenth contract with a prepaid grant
// and its drawdowns; then VACUUM ANALYZE and CHECKPOINT as the owner.
//
// Env: BENCH_CONTRACTS (10000), BENCH_REPORTS (200: per-contract reports timed), BENCH_BOOK_RUNS (3).
import { performance } from "node:perf_hooks";
import { fixedClock } from "../src/clock.js";
import { ContractTerms, Decimal } from "../src/domain/index.js";
import { run, withBench } from "./harness.js";

const int = (name: string, dflt: number) => Number.parseInt(process.env[name] ?? String(dflt), 10);
const CONTRACTS = int("BENCH_CONTRACTS", 10_000);
const REPORTS = int("BENCH_REPORTS", 200);
const BOOK_RUNS = int("BENCH_BOOK_RUNS", 3);
const log = (s: string) => process.stdout.write(`${s}\n`);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]!;

const TERMS = JSON.stringify(ContractTerms.parse({ platformFee: { amount: "1000.00" }, meters: [{ metric: "api_calls", pricing: { model: "per_unit", unitPrice: "0.01" } }] }));
const GRANT_TERMS = JSON.stringify(
  ContractTerms.parse({
    platformFee: { amount: "1000.00" },
    meters: [{ metric: "api_calls", pricing: { model: "per_unit", unitPrice: "0.01" } }],
    prepaidCredits: [{ id: "grant-2026", amount: "50000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
  }),
);

async function main() {
  // January 2027: every 2026 period has ended and is issued (finalized).
  // Load shedding off: the book computes for seconds, which would shed the requests after it (the closing note says so).
  await withBench({ name: "revenue", role: "admin", clock: fixedClock("2027-01-15T00:00:00Z"), poolSize: 4, maxEventLoopDelayMs: 60_000 }, async (b) => {
    const q = (text: string, params: unknown[] = []) => b.db.pool.query(text, params);
    const t0 = performance.now();
    await q(
      `INSERT INTO contracts (id, customer_id, account_ids, name, currency, timezone, billing_period, start_date, end_date, term_start, term_end,
                              rounding_mode, allow_true_down, created_by)
       SELECT uuidv7(), 'cust-' || g, '{}', 'bench ' || g, CASE WHEN g % 10 = 9 THEN 'EUR' ELSE 'USD' END, 'UTC', 'monthly', '2026-01-01', '2026-12-31',
              '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'half_up', true, 'bench'
       FROM generate_series(0, $1 - 1) g`,
      [CONTRACTS],
    );
    await q(
      `INSERT INTO contract_versions (id, contract_id, version, effective_from, signed_at, kind, reason, terms, created_by)
       SELECT uuidv7(), c.id, 1, c.term_start, c.term_start, 'original', 'bench',
              CASE WHEN right(c.customer_id, 1) = '0' THEN $2::jsonb ELSE $1::jsonb END, 'bench'
       FROM contracts c`,
      [TERMS, GRANT_TERMS],
    );
    // One calculation and one invoice per contract and month, numbered in one series.
    await q(
      `CREATE TEMP TABLE months AS
       SELECT c.id AS contract_id, c.currency, right(c.customer_id, 1) = '0' AS granted,
              (timestamptz '2026-01-01T00:00:00Z' + (m || ' months')::interval) AS period_start,
              (timestamptz '2026-01-01T00:00:00Z' + ((m + 1) || ' months')::interval) AS period_end,
              1000 + (hashtext(c.id::text || m) & 1023) AS usage,
              uuidv7() AS calc_id, uuidv7() AS doc_id, row_number() OVER () AS seq
       FROM contracts c CROSS JOIN generate_series(0, 11) m`,
    );
    await q(
      `INSERT INTO calculations (id, contract_id, period_start, period_end, engine_version, inputs_hash, inputs, result, total, already_billed, delta,
                                 action, currency, created_by)
       SELECT calc_id, contract_id, period_start, period_end, 'bench', md5(calc_id::text), '{}', '{}', 1000 + usage * 0.01, 0, 1000 + usage * 0.01,
              'invoice', currency, 'bench'
       FROM months`,
    );
    await q(
      `INSERT INTO documents (id, number, kind, kind_seq, contract_id, period_start, period_end, currency, subtotal, already_billed, amount,
                              credits_applied, calculation_id, inputs_hash, issued_at, issued_by)
       SELECT doc_id, 'INV-B' || lpad(seq::text, 9, '0'), 'invoice', 1000000 + seq, contract_id, period_start, period_end, currency,
              1000 + usage * 0.01, 0, CASE WHEN granted THEN 1000 ELSE 1000 + usage * 0.01 END,
              CASE WHEN granted THEN jsonb_build_array(jsonb_build_object('grantId', 'grant-2026', 'amount', (usage * 0.01)::text)) ELSE '[]' END,
              calc_id, md5(calc_id::text), period_end + interval '1 day', 'bench'
       FROM months`,
    );
    await q(
      `INSERT INTO document_lines (document_id, line_no, kind, metric, amount, explanation)
       SELECT doc_id, 1, 'platform_fee', NULL, 1000,
              jsonb_build_object('segment', jsonb_build_object('from', period_start, 'to', period_end, 'version', 1), 'fraction', '1')
       FROM months
       UNION ALL
       SELECT doc_id, 2, 'usage', 'api_calls', usage * 0.01,
              jsonb_build_object('meterId', 'api_calls', 'aggregation', 'sum', 'segment', jsonb_build_object('from', period_start, 'to', period_end, 'version', 1),
                                 'usage', usage::text, 'fraction', '1')
       FROM months`,
    );
    await q(
      `INSERT INTO credit_drawdowns (document_id, grant_id, contract_id, period_start, amount)
       SELECT doc_id, 'grant-2026', contract_id, period_start, usage * 0.01 FROM months WHERE granted`,
    );
    await b.analyze("contracts", "contract_versions", "documents", "document_lines", "credit_drawdowns", "calculations");
    await b.checkpoint();
    log(`seeded ${CONTRACTS.toLocaleString("en-US")} contracts × 12 issued months in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const get = async (url: string) => {
      const res = await b.app.inject({ method: "GET", url, headers: b.auth });
      if (res.statusCode !== 200) throw new Error(`GET ${url} → ${res.statusCode} ${res.body.slice(0, 300)}`);
      return res;
    };

    // The baseline: the same lines summed per currency and month in SQL (what a report without the rules costs).
    const baselineSql = `SELECT d.currency, date_trunc('month', d.period_start) AS month, dl.kind, sum(dl.amount)
                         FROM documents d JOIN document_lines dl ON dl.document_id = d.id GROUP BY 1, 2, 3`;
    await q(baselineSql);
    const baselineTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await q(baselineSql);
      baselineTimes.push(performance.now() - t);
    }
    const baseline = Math.min(...baselineTimes);

    const bookTimes: number[] = [];
    let book: any;
    for (let i = 0; i < BOOK_RUNS; i++) {
      const t = performance.now();
      book = (await get("/v1/revenue?from=2026-01&to=2026-12")).json();
      bookTimes.push(performance.now() - t);
    }
    const usd = book.books.find((x: any) => x.currency === "USD");
    const { rows: [check] } = await q(
      `SELECT sum(dl.amount)::text AS total FROM documents d JOIN document_lines dl ON dl.document_id = d.id
       WHERE d.currency = 'USD' AND d.period_start = '2026-03-01T00:00:00Z'`,
    );
    const march = usd.months.find((m: any) => m.month === "2026-03");
    if (!new Decimal(march.recognized.total).eq(check.total)) throw new Error(`the book's March ${march.recognized.total} ≠ the lines' ${check.total}`);

    const { rows: ids } = await q(`SELECT id::text AS id FROM contracts ORDER BY md5(id::text) LIMIT $1`, [REPORTS]);
    const one: number[] = [];
    for (const { id } of ids) {
      const t = performance.now();
      await get(`/v1/contracts/${id}/revenue?from=2026-01&to=2026-12`);
      one.push(performance.now() - t);
    }

    const bookMedian = pct(bookTimes, 50);
    log(`\nbook-wide report of ${CONTRACTS.toLocaleString("en-US")} contracts × 12 months (GET /v1/revenue, ${book.books.length} currencies):`);
    log(`  median ${(bookMedian / 1000).toFixed(2)} s of ${BOOK_RUNS} (${bookTimes.map((x) => (x / 1000).toFixed(2)).join(", ")} s) — target ≤ 3 s: ${bookMedian <= 3000 ? "OK" : "OVER TARGET"}`);
    log(`  plain SQL sum of the same lines per currency, month and kind: best ${baseline.toFixed(0)} ms of 3; ratio ${(bookMedian / baseline).toFixed(1)}`);
    log(`per-contract report (12 months), ${REPORTS} contracts: p50 ${pct(one, 50).toFixed(1)} ms, p99 ${pct(one, 99).toFixed(1)} ms — target p99 ≤ 50 ms: ${pct(one, 99) <= 50 ? "OK" : "OVER TARGET"}`);
  });
}

run(main);
