// Running a three-way reconciliation (DESIGN.md §7.1; docs/reconciliation.md): pull, normalize, match,
// classify, price, route — and store the run, its breaks and its audit entry in one transaction.
//
// One REPEATABLE READ snapshot: the raw side, the contracts and this service's documents are read as of
// one instant, so a batch ingested during the run is either wholly in it or wholly out of it.
import type { Database } from "../../db/client.js";
import { isUniqueViolation } from "../../db/errors.js";
import { newId } from "../../db/ids.js";
import { contractsWithVersions } from "../../db/queries/contracts.js";
import { type MeasureRequest, measureUsage } from "../../db/queries/measures.js";
import {
  type BreakInsert,
  contractsOfIdentifiers,
  documentUsage,
  insertBreaks,
  insertRun,
  lateUnits,
  previousRunOf,
  rawUsageByKey,
  timingKeysOf,
  unitsInWindows,
} from "../../db/queries/reconciliations.js";
import type { Sql } from "../../db/sql.js";
import { transaction } from "../../db/tx.js";
import {
  type BreakUnits,
  type ClassifiedKey,
  type ContractVersion,
  Decimal,
  type KeyFigures,
  type RatingInput,
  type ReconciliationRequest,
  ZERO,
  canonicalJson,
  classify,
  fitsMoneyColumn,
  formatDecimal,
  formatInstant,
  invoicedOf,
  keyOf,
  parseReconciliationRequest,
  periodSpanContaining,
  periodSpanAt,
  priceBreaks,
  sha256Hex,
  statementOf,
  usageRequest,
  watchlistOf,
} from "../../domain/index.js";
import type { ContractRecord, VersionRecord } from "../../db/queries/contracts.js";
import { conflict } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { emitWebhookEvent } from "../webhooks/emit.js";
import { idempotent } from "../idempotency.js";
import { toVersionView } from "../contracts/read.js";
import { ratingContractOf } from "../true-ups/rating-inputs.js";
import { type RunView, toRunView } from "./read.js";

const RUN_SCOPE = "POST /v1/reconciliations";

/** numeric(56,18): at most 38 integer digits. */
const LARGEST_QUANTITY = new Decimal("1e38");
const fitsQuantityColumn = (q: string) => new Decimal(q).abs().lt(LARGEST_QUANTITY);

export async function runReconciliation(
  db: Database,
  actor: string,
  body: unknown,
  idempotencyKey: string | undefined,
  now: Date,
): Promise<{ status: number; run: RunView; replayed: boolean }> {
  const request = parseReconciliationRequest(body);
  // The normalised request has a fixed shape and key order, so JSON.stringify is canonical here, and ~20× faster
  // than canonicalJson over 200,000 rows.
  const idem = idempotencyKey === undefined ? undefined : { scope: RUN_SCOPE, key: idempotencyKey, request: { digest: sha256Hex(JSON.stringify(request)) } };
  const { status, response, replayed } = await transaction(
    db,
    (sql) => idempotent(sql, idem, async () => ({ status: 201, response: await reconcile(sql, actor, request, now) })),
    // A twin request with the same key loses the race on the idempotency row; its retry replays the winner.
    { isolation: "repeatable read", retryOn: isUniqueViolation },
  );
  return { status, run: response, replayed };
}

/** One key as it is assembled from the three sources, in the metered unit. */
interface KeyAcc {
  customerId: string;
  metric: string;
  contractId: string | null;
  raw: Decimal;
  metered: Decimal;
  invoices: Decimal;
  creditMemos: Decimal;
  late: Decimal;
  lastInvoicedAtMs: number | null;
  /** The stored ids whose events make up `raw`, with their latest arrival (for the late units). */
  rawIds: { customerId: string; lastReceivedMs: number }[];
}

type Contract = ContractRecord & { versions: VersionRecord[] };

async function reconcile(sql: Sql, actor: string, req: ReconciliationRequest, now: Date): Promise<RunView> {
  const { periodStart: from, periodEnd: to } = req;
  const conversion = (metric: string) => new Decimal(req.unitConversions[metric] ?? 1);

  // Step 1 — pull.
  const raw = await rawUsageByKey(sql, from, to);
  const ownDocuments = req.invoiced === null ? await documentUsage(sql, from, to) : [];

  // Step 2 — normalize: an account alias becomes its contract's customer.
  const identifiers = new Set<string>();
  for (const r of raw) identifiers.add(r.customer_id);
  for (const r of req.metered) identifiers.add(r.customerId);
  for (const r of req.invoiced ?? []) identifiers.add(r.customerId);
  const contractOfId = await contractsOfIdentifiers(sql, [...identifiers], from, to);
  const contractIds = new Set([...contractOfId.values(), ...ownDocuments.map((d) => d.contract_id)]);
  const contracts = new Map((await contractsWithVersions(sql, [...contractIds])).map((c) => [c.id, c]));

  const keys = new Map<string, KeyAcc>();
  const keyFor = (id: string, metric: string, contractId = contractOfId.get(id) ?? null): KeyAcc => {
    const customerId = contractId ? contracts.get(contractId)!.customerId : id;
    const k = keyOf(customerId, metric);
    let acc = keys.get(k);
    if (!acc) {
      acc = { customerId, metric, contractId, raw: ZERO, metered: ZERO, invoices: ZERO, creditMemos: ZERO, late: ZERO, lastInvoicedAtMs: null, rawIds: [] };
      keys.set(k, acc);
    }
    return acc;
  };
  for (const r of raw) {
    const acc = keyFor(r.customer_id, r.metric);
    acc.raw = acc.raw.plus(new Decimal(r.quantity).times(conversion(r.metric)));
    acc.rawIds.push({ customerId: r.customer_id, lastReceivedMs: r.last_received_at.getTime() });
  }
  for (const r of req.metered) {
    const acc = keyFor(r.customerId, r.metric);
    acc.metered = acc.metered.plus(r.quantity);
  }
  const invoiced = (acc: KeyAcc, units: Decimal, kind: "invoice" | "credit_memo", atMs: number) => {
    if (kind === "credit_memo") acc.creditMemos = acc.creditMemos.plus(units);
    else acc.invoices = acc.invoices.plus(units);
    if (acc.lastInvoicedAtMs === null || atMs > acc.lastInvoicedAtMs) acc.lastInvoicedAtMs = atMs;
  };
  for (const r of req.invoiced ?? []) invoiced(keyFor(r.customerId, r.metric), new Decimal(r.quantity), r.kind, r.invoicedAtMs);
  // This service's own documents: the latest of each period counts whatever its kind (nothing is subtracted).
  for (const d of ownDocuments)
    invoiced(keyFor(d.customer_id, d.metric, d.contract_id), new Decimal(d.usage).times(conversion(d.metric)), "invoice", d.issued_at.getTime());

  // Step 3 — the late units: only keys with an event received after their latest invoice are read again.
  const lateAsks: { key: KeyAcc; customerId: string; metric: string; since: Date }[] = [];
  for (const acc of keys.values()) {
    if (acc.lastInvoicedAtMs === null) continue;
    for (const id of acc.rawIds)
      if (id.lastReceivedMs >= acc.lastInvoicedAtMs) lateAsks.push({ key: acc, customerId: id.customerId, metric: acc.metric, since: new Date(acc.lastInvoicedAtMs) });
  }
  const late = await lateUnits(sql, from, to, lateAsks);
  lateAsks.forEach((a, i) => {
    const q = late.get(i);
    if (q !== undefined) a.key.late = a.key.late.plus(new Decimal(q).times(conversion(a.metric)));
  });

  // Step 4 — classify.
  const versionInside = new Set<string>();
  for (const c of contracts.values())
    if (c.versions.some((v) => { const ms = Date.parse(v.effectiveFrom); return ms > req.periodStartMs && ms < req.periodEndMs; })) versionInside.add(c.id);
  const classified = [...keys.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, acc]) => {
      const figures: KeyFigures = {
        mapped: acc.contractId !== null,
        raw: acc.raw,
        metered: acc.metered,
        invoices: acc.invoices,
        creditMemos: acc.creditMemos,
        late: acc.late,
        versionInside: acc.contractId !== null && versionInside.has(acc.contractId),
      };
      return { key, acc, figures, ...classify(figures) };
    });

  // Money — the engine rates R and I for each break of a contract, over its periods in the window.
  const toPrice = new Map<string, Map<string, BreakUnits>>();
  for (const k of classified) {
    if (k.class === "match" || k.class === "unmapped" || k.acc.contractId === null) continue;
    const c = conversion(k.acc.metric);
    let metrics = toPrice.get(k.acc.contractId);
    if (!metrics) toPrice.set(k.acc.contractId, (metrics = new Map()));
    metrics.set(k.acc.metric, { raw: k.figures.raw.dividedBy(c), invoiced: invoicedOf(k.figures).dividedBy(c) });
  }
  const pricing = [...toPrice].map(([contractId, metrics]) => {
    const contract = contracts.get(contractId)!;
    return { contract, metrics, periods: periodsToPrice(contract, req, new Set(metrics.keys())) };
  });
  await readUsage(sql, pricing.flatMap((p) => p.periods));
  const amounts = new Map<string, Decimal>();
  for (const { contract, metrics, periods } of pricing) {
    const charges = priceBreaks(ratingContractOf(contract), periods.map((p) => p.input), metrics);
    for (const [metric, charge] of charges) amounts.set(keyOf(contract.customerId, metric), charge.amount);
  }

  // The watch-list: the previous run of this window and its timing keys.
  const runId = newId();
  const previousRunId = await previousRunOf(sql, from, to, runId);
  const previousTiming = new Set(previousRunId ? (await timingKeysOf(sql, previousRunId)).map((r) => keyOf(r.customer_id, r.metric)) : []);
  const classOf = new Map(classified.map((k) => [k.key, k.class]));
  const watchlist = watchlistOf(previousTiming, (key) => classOf.get(key) ?? "match");

  const statementKeys: ClassifiedKey[] = classified.map((k) => {
    const contract = k.acc.contractId ? contracts.get(k.acc.contractId)! : null;
    const amount = k.class === "match" ? ZERO : (amounts.get(k.key) ?? (k.class === "unmapped" ? null : ZERO));
    return {
      customerId: k.acc.customerId,
      metric: k.acc.metric,
      class: k.class,
      units: k.figures.raw.minus(invoicedOf(k.figures)),
      amount: k.class === "unmapped" ? null : amount,
      currency: k.class === "unmapped" || !contract ? null : contract.currency,
    };
  });
  const statement = statementOf(statementKeys);

  const breaks: BreakInsert[] = [];
  classified.forEach((k, i) => {
    if (k.class === "match") return;
    const s = statementKeys[i]!;
    breaks.push({
      id: newId(),
      contractId: k.acc.contractId,
      customerId: k.acc.customerId,
      metric: k.acc.metric,
      class: k.class,
      source: k.source,
      owner: k.owner,
      raw: formatDecimal(k.figures.raw),
      metered: formatDecimal(k.figures.metered),
      invoiced: formatDecimal(invoicedOf(k.figures)),
      late: formatDecimal(k.figures.late),
      units: formatDecimal(s.units),
      amount: s.amount === null ? null : s.amount.toFixed(),
      currency: s.currency,
      previousClass: previousTiming.has(k.key) ? "timing" : null,
      lastInvoicedAt: k.acc.lastInvoicedAtMs === null ? null : formatInstant(k.acc.lastInvoicedAtMs),
    });
  });

  // What cannot be stored is refused, not truncated: a conversion can push a quantity past numeric(56,18), and
  // a price past numeric(20,6) (a 409 as for a true-up whose amounts do not fit).
  const tooLarge = breaks.filter((b) => [b.raw, b.metered, b.invoiced, b.late, b.units].some((q) => !fitsQuantityColumn(q)) || (b.amount !== null && !fitsMoneyColumn(new Decimal(b.amount))));
  if (tooLarge.length > 0)
    throw conflict(`${tooLarge.length} break(s) have quantities or amounts too large to store (check unitConversions)`, {
      keys: tooLarge.slice(0, 100).map((b) => ({ customerId: b.customerId, metric: b.metric, raw: b.raw, units: b.units, amount: b.amount })),
    });

  const createdAt = now.toISOString();
  const invoicedSource = req.invoiced === null ? "documents" : "caller";
  await insertRun(sql, {
    id: runId,
    periodStart: from,
    periodEnd: to,
    unitConversions: req.unitConversions,
    invoicedSource,
    meteredRows: req.metered.length,
    invoicedRows: req.invoiced?.length ?? ownDocuments.length,
    counts: statement.counts,
    totals: statement.totals,
    currency: statement.currency,
    byCurrency: statement.byCurrency,
    previousRunId,
    watchlist,
    createdAt,
    createdBy: actor,
  });
  await insertBreaks(sql, runId, breaks);
  await appendAudit(sql, {
    actor,
    action: "reconciliation.created",
    entityType: "reconciliation",
    entityId: runId,
    payload: {
      period: { start: from, end: to },
      invoicedSource,
      rows: { metered: req.metered.length, invoiced: req.invoiced?.length ?? ownDocuments.length },
      unitConversions: req.unitConversions,
      counts: statement.counts,
      totals: statement.totals,
      byCurrency: statement.byCurrency,
      previousRunId,
      watchlist,
      // The breaks as stored: a later reader recomputes this from the rows.
      breaksDigest: sha256Hex(canonicalJson(breaks)),
    },
  });
  const view = toRunView({
    id: runId,
    period_start: new Date(req.periodStartMs),
    period_end: new Date(req.periodEndMs),
    unit_conversions: req.unitConversions,
    invoiced_source: invoicedSource,
    metered_rows: req.metered.length,
    invoiced_rows: req.invoiced?.length ?? ownDocuments.length,
    counts: statement.counts,
    totals: statement.totals,
    currency: statement.currency,
    by_currency: statement.byCurrency,
    previous_run_id: previousRunId,
    watchlist,
    created_at: now,
    created_by: actor,
    signed_off_actor: null,
    signed_off_note: null,
    signed_off_at: null,
  });
  await emitWebhookEvent(sql, "reconciliation.completed", view);
  return view;
}

const versionOf = (v: VersionRecord): ContractVersion => ({ ...toVersionView(v), kind: v.kind as ContractVersion["kind"] });

/** A rating input of one billing period of a broken contract, and the usage it still needs (clipped windows). */
interface PeriodToPrice {
  input: RatingInput;
  customerIds: string[];
  /** Each window the engine reads × each broken metric, clipped to the reconciliation's window. */
  usage: { from: string; to: string; metric: string; clippedFrom: string; clippedTo: string }[];
  measures: { original: { from: string; to: string }; clipped: MeasureRequest }[];
}

/**
 * The rating inputs of the contract's billing periods overlapping the window, for `metrics`, with the usage
 * to read: each window the engine asks for, clipped to the reconciliation's window. Nothing is billed or
 * credited in them: only the usage lines are read.
 */
function periodsToPrice(c: Contract, req: ReconciliationRequest, metrics: ReadonlySet<string>): PeriodToPrice[] {
  const contract = ratingContractOf(c);
  const versions = c.versions.map(versionOf);
  const customerIds = [c.customerId, ...c.accountIds];
  const out: PeriodToPrice[] = [];
  let span = periodSpanContaining(contract, Math.max(req.periodStartMs, Date.parse(c.termStart)));
  for (; span !== null && span.startMs < req.periodEndMs; span = periodSpanAt(contract, span.index + 1)) {
    const { startMs, endMs } = span;
    const period = { start: formatInstant(startMs), end: formatInstant(endMs) };
    const request = usageRequest({ contract, versions, period });
    // Windows of this period only (a term commitment's or a spike's other periods are not usage lines here), clipped.
    const clip = (from: string, to: string) => {
      const f = Date.parse(from), t = Date.parse(to);
      if (f < startMs || t > endMs) return null;
      const cf = Math.max(f, req.periodStartMs), ct = Math.min(t, req.periodEndMs);
      return cf < ct ? { from: formatInstant(cf), to: formatInstant(ct) } : null;
    };
    const usage: PeriodToPrice["usage"] = [];
    for (const w of request.windows) {
      const clipped = clip(w.from, w.to);
      if (clipped) for (const metric of metrics) usage.push({ from: w.from, to: w.to, metric, clippedFrom: clipped.from, clippedTo: clipped.to });
    }
    const measures = request.measures.flatMap((m) => {
      const clipped = metrics.has(m.measure.metric) ? clip(m.from, m.to) : null;
      return clipped ? [{ original: { from: m.from, to: m.to }, clipped: { ...clipped, measure: m.measure } }] : [];
    });
    out.push({
      input: { contract, versions, period, usage: [], measured: [], alreadyBilled: "0", creditBalances: [], previousCreditsApplied: [], issuedPeriods: [] },
      customerIds,
      usage,
      measures,
    });
  }
  return out;
}

/** Fills in the periods' usage (one statement for all of them) and figures (per contract, only for meters that need them). */
async function readUsage(sql: Sql, periods: readonly PeriodToPrice[]): Promise<void> {
  const asks: { customerId: string; metric: string; from: string; to: string }[] = [];
  const owners: { period: PeriodToPrice; row: number }[] = [];
  for (const p of periods)
    p.usage.forEach((u, row) => {
      for (const customerId of p.customerIds) {
        asks.push({ customerId, metric: u.metric, from: u.clippedFrom, to: u.clippedTo });
        owners.push({ period: p, row });
      }
    });
  const units = await unitsInWindows(sql, asks);
  const totals = new Map<PeriodToPrice, Map<number, Decimal>>();
  for (const [i, q] of units) {
    const { period, row } = owners[i]!;
    let rows = totals.get(period);
    if (!rows) totals.set(period, (rows = new Map()));
    rows.set(row, (rows.get(row) ?? ZERO).plus(q));
  }
  for (const p of periods) {
    const rows = totals.get(p) ?? new Map<number, Decimal>();
    p.input.usage = [...rows].map(([row, q]) => ({ from: p.usage[row]!.from, to: p.usage[row]!.to, metric: p.usage[row]!.metric, quantity: formatDecimal(q) }));
    if (p.measures.length === 0) continue;
    const figures = await measureUsage(sql, p.customerIds, p.measures.map((m) => m.clipped));
    p.input.measured = figures.map((f) => {
      const m = p.measures.find((x) => x.clipped.from === f.from && x.clipped.to === f.to && x.clipped.measure === f.measure)!;
      return { ...f, from: m.original.from, to: m.original.to };
    });
  }
}
