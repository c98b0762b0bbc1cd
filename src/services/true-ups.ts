// True-ups (docs/rating.md): preview and issue share one path, rateContractPeriod(), which
// gathers every input the engine needs from the database and runs the pure engine. Preview stores the
// calculation; issue recomputes inside the issuing transaction (contract row locked), compares inputsHash
// with the preview's, checks exceptions, and writes the document, its lines, credit drawdowns, the
// idempotency record and the audit entry together.
import { createHash } from "node:crypto";
import type { Database } from "../db/client.js";
import { isUniqueViolation } from "../db/errors.js";
import { newId } from "../db/ids.js";
import { type Sql, type Tx, pgSql, sqlOf, withTransaction } from "../db/tx.js";
import {
  type ContractVersion,
  Decimal,
  type RatingContract,
  type RatingInput,
  type RatingResult,
  canonicalJson,
  fitsMoneyColumn,
  formatMoney,
  largestMoney,
  lastClosedPeriod,
  periodStartingAt,
  ratePeriod,
  usageWindows,
} from "../domain/index.js";
import type { Contract as ContractRow } from "../generated/prisma/client.js";
import { ProblemError, notFound, validationFailed } from "../http/problems.js";
import { appendAudit } from "./audit.js";
import { documentAttestation } from "./audit-digests.js";
import { lockContract, periodContractOf, toContractView } from "./contracts.js";
import { type ExceptionView, type RaiseException, getException, raiseException } from "./exceptions.js";
import { lateActivity, sumUsage } from "./usage-aggregates.js";

export interface Period {
  start: string;
  end: string;
}

interface IssuedDocumentRef {
  id: string;
  number: string;
  issuedAt: string;
}

/** Everything one rating of one contract period needs and produces. */
export interface PeriodRating {
  input: RatingInput;
  result: RatingResult;
  /** Exceptions only the database can see (late usage), in the engine's shape. */
  extraExceptions: Omit<RaiseException, "contractId" | "period" | "calculationId" | "owner">[];
  latestDocument: IssuedDocumentRef | null;
  /** What alreadyBilled is made of, one row per document or external billing: the backup CSV cites them. */
  billedBefore: BilledSource[];
}

/** One amount already billed for the period: a document issued here (credit memos negative) or an external billing. */
export interface BilledSource {
  source: "invoice" | "credit_memo" | "external_billing";
  /** The document number (INV-000001) or the external billing's reference. */
  reference: string;
  amount: string;
}

const money = (v: string) => new Decimal(v);

function ratingContractOf(c: ContractRow): RatingContract {
  const v = toContractView(c);
  return {
    id: v.id,
    currency: v.currency,
    timezone: v.timezone,
    billingPeriod: v.billingPeriod,
    startDate: v.startDate,
    endDate: v.endDate,
    roundingMode: v.roundingMode,
    allowTrueDown: v.allowTrueDown,
  };
}

async function loadVersions(sql: Sql, contractId: string): Promise<ContractVersion[]> {
  const rows = await sql.query<{ version: number; effective_from: Date; signed_at: Date; kind: string; reason: string; terms: unknown }>(
    `SELECT version, effective_from, signed_at, kind, reason, terms FROM contract_versions WHERE contract_id = $1::uuid ORDER BY version`,
    [contractId],
  );
  return rows.map((r) => ({
    version: r.version,
    effectiveFrom: r.effective_from.toISOString(),
    signedAt: r.signed_at.toISOString(),
    kind: r.kind as ContractVersion["kind"],
    reason: r.reason,
    terms: r.terms as ContractVersion["terms"],
  }));
}

/** Gathers the engine's inputs for one contract period from the database and rates it. Preview and issue both call this. */
export async function rateContractPeriod(sql: Sql, contract: ContractRow, period: Period): Promise<PeriodRating> {
  const ratingContract = ratingContractOf(contract);
  const versions = await loadVersions(sql, contract.id);
  const windows = usageWindows({ contract: ratingContract, versions, period });
  const customerIds = [contract.customerId, ...contract.accountIds];

  const [usage, billed, balances, previous, issued, latest, billedBefore] = await Promise.all([
    sumUsage(sql, customerIds, windows),
    // Already billed (rule 11): invoices minus credit memos issued here, plus external billings whose span starts in the period.
    sql.query<{ amount: string }>(
      `SELECT (COALESCE((SELECT sum(CASE kind WHEN 'invoice' THEN amount ELSE -amount END) FROM documents
                         WHERE contract_id = $1::uuid AND period_start = $2::timestamptz), 0)
             + COALESCE((SELECT sum(amount) FROM external_billings
                         WHERE contract_id = $1::uuid AND period_start >= $2::timestamptz AND period_start < $3::timestamptz), 0))::text AS amount`,
      [contract.id, period.start, period.end],
    ),
    // Grant balances (rule 10): credits recorded by the latest issued document of every OTHER period.
    sql.query<{ grant_id: string; used: string }>(
      `WITH latest AS (
         SELECT DISTINCT ON (period_start) id, period_start FROM documents
         WHERE contract_id = $1::uuid ORDER BY period_start, issued_at DESC, kind_seq DESC)
       SELECT d.grant_id, sum(d.amount)::text AS used FROM credit_drawdowns d JOIN latest l ON l.id = d.document_id
       WHERE l.period_start <> $2::timestamptz GROUP BY d.grant_id`,
      [contract.id, period.start],
    ),
    sql.query<{ grant_id: string; amount: string }>(
      `SELECT d.grant_id, d.amount::text AS amount FROM credit_drawdowns d
       WHERE d.document_id = (SELECT id FROM documents WHERE contract_id = $1::uuid AND period_start = $2::timestamptz
                              ORDER BY issued_at DESC, kind_seq DESC LIMIT 1)`,
      [contract.id, period.start],
    ),
    sql.query<{ period_start: Date; period_end: Date }>(
      `SELECT DISTINCT period_start, period_end FROM documents WHERE contract_id = $1::uuid`,
      [contract.id],
    ),
    sql.query<{ id: string; number: string; issued_at: Date }>(
      `SELECT id::text AS id, number, issued_at FROM documents WHERE contract_id = $1::uuid AND period_start = $2::timestamptz
       ORDER BY issued_at DESC, kind_seq DESC LIMIT 1`,
      [contract.id, period.start],
    ),
    // The same rows as the already-billed sum above, one by one.
    sql.query<BilledSource>(
      `SELECT source, reference, amount FROM (
         SELECT kind AS source, number AS reference, (CASE kind WHEN 'invoice' THEN amount ELSE -amount END)::text AS amount, id
         FROM documents WHERE contract_id = $1::uuid AND period_start = $2::timestamptz
         UNION ALL
         SELECT 'external_billing', reference, amount::text, id
         FROM external_billings WHERE contract_id = $1::uuid AND period_start >= $2::timestamptz AND period_start < $3::timestamptz) b
       ORDER BY id`, // time-ordered ids: in the order they were recorded
      [contract.id, period.start, period.end],
    ),
  ]);

  // A grant's amount comes from the latest version that defines it (as the engine reads it).
  const grantAmounts = new Map<string, string>();
  for (const v of versions) for (const g of v.terms.prepaidCredits ?? []) grantAmounts.set(g.id, g.amount);
  const used = new Map(balances.map((b) => [b.grant_id, money(b.used)]));
  const creditBalances = [...grantAmounts].map(([grantId, amount]) => ({
    grantId,
    available: Decimal.max(0, money(amount).minus(used.get(grantId) ?? 0)).toFixed(),
  }));

  const input: RatingInput = {
    contract: ratingContract,
    versions,
    period,
    usage,
    alreadyBilled: billed[0]?.amount ?? "0",
    creditBalances,
    previousCreditsApplied: previous.map((p) => ({ grantId: p.grant_id, amount: p.amount })),
    issuedPeriods: issued.map((p) => ({ start: p.period_start.toISOString(), end: p.period_end.toISOString() })),
  };
  const result = ratePeriod(input);
  assertStorableAmounts(result);

  const latestDocument = latest[0] ? { id: latest[0].id, number: latest[0].number, issuedAt: latest[0].issued_at.toISOString() } : null;
  const extraExceptions: PeriodRating["extraExceptions"] = [];
  if (latestDocument) {
    // Late usage: events that arrived, or were voided, after the period's latest document was issued.
    const late = await lateActivity(sql, customerIds, period, latestDocument.issuedAt);
    if (late.arrived > 0 || late.voided > 0)
      extraExceptions.push({
        kind: "late_usage",
        subject: latestDocument.id,
        message: `${late.arrived} event(s) arrived and ${late.voided} were voided after ${latestDocument.number} was issued`,
        details: { document: latestDocument, eventsArrived: late.arrived, eventsVoided: late.voided },
      });
  }
  return { input, result, extraExceptions, latestDocument, billedBefore };
}

/**
 * Money columns hold 14 integer digits (numeric(20,6)). Terms and usage that each pass validation can still
 * rate to more (a quantity near 10^29 at a 14-digit unit price, a platform fee plus a commitment at the
 * limit, external billings adding up past it): such a period cannot be stored, let alone invoiced, so the
 * preview (and the issue, which recomputes) is refused with a 409 naming the amounts, before anything is
 * written. Fix the data (void the usage, amend the terms, correct the billings) and preview again.
 */
function assertStorableAmounts(result: RatingResult): void {
  const over: { what: string; amount: string }[] = [];
  const check = (what: string, amount: string) => {
    if (!fitsMoneyColumn(money(amount))) over.push({ what, amount });
  };
  result.lines.forEach((l, i) => check(`lines.${i} (${l.kind}${l.metric ? ` ${l.metric}` : ""})`, l.amount));
  check("total", result.total);
  check("alreadyBilled", result.alreadyBilled);
  check("delta", result.delta);
  if (over.length > 0)
    throw new ProblemError(
      "conflict",
      `the period's amounts exceed the largest amount the service can bill (${largestMoney(result.currency)} ${result.currency}): ` +
        over.map((o) => `${o.what} = ${o.amount}`).join(", "),
      { limit: largestMoney(result.currency), amounts: over },
    );
}

/**
 * The subject an exception is stored under. Amount-driven exceptions carry the amount, so approving a
 * $30,000 materiality does not approve a later $300,000 one for the same period.
 */
function storedSubject(kind: string, subject: string, result: RatingResult): string {
  return kind === "materiality" || kind === "over_billed" ? `${subject}delta=${result.delta}` : subject;
}

async function recordExceptions(sql: Sql, contractId: string, rating: PeriodRating, calculationId: string | null): Promise<ExceptionView[]> {
  const owner = ownerOf(rating.input);
  const all = [
    ...rating.result.exceptions.map((e) => ({ ...e, subject: storedSubject(e.kind, e.subject, rating.result) })),
    ...rating.extraExceptions,
  ];
  const stored: ExceptionView[] = [];
  for (const e of all)
    stored.push(
      await raiseException(sql, {
        kind: e.kind as RaiseException["kind"],
        contractId,
        period: rating.result.period,
        subject: e.subject,
        message: e.message,
        details: e.details,
        calculationId,
        owner,
      }),
    );
  return stored;
}

/** Whom exceptions route to: the approvalOwner of the version in force at the end of the period. */
function ownerOf(input: RatingInput): string | null {
  const endMs = Date.parse(input.period.end);
  const inForce = [...input.versions].filter((v) => Date.parse(v.effectiveFrom) < endMs).sort((a, b) => b.version - a.version)[0];
  return inForce?.terms.approvalOwner ?? null;
}

/** A period [start, end) has ended once `now` reaches its end. */
function periodHasEnded(period: Period, now: Date): boolean {
  return Date.parse(period.end) <= now.getTime();
}

export interface CalculationView extends Omit<RatingResult, "exceptions"> {
  id: string;
  /** Whether the period had ended when it was rated; false: an estimate, which cannot be issued yet. */
  periodClosed: boolean;
  exceptions: ExceptionView[];
  createdAt: string;
  createdBy: string;
  inputs?: RatingInput;
}

function resolvePeriod(contract: ContractRow, periodStart: string | undefined, now: Date): Period {
  const pc = periodContractOf(toContractView(contract));
  if (periodStart !== undefined) {
    const p = periodStartingAt(pc, new Date(periodStart).toISOString());
    if (!p) throw validationFailed([{ path: "body.periodStart", message: "is not the start of a billing period of this contract" }]);
    return { start: p.start, end: p.end };
  }
  const p = lastClosedPeriod(pc, now.toISOString());
  if (!p) throw validationFailed([{ path: "body.periodStart", message: "the contract has no closed period yet: name the period to preview" }]);
  return { start: p.start, end: p.end };
}

export async function previewTrueUp(
  db: Database,
  actor: string,
  contractId: string,
  body: { periodStart?: string | undefined },
  now: Date,
): Promise<CalculationView> {
  return withTransaction(db, async (tx) => {
    const sql = sqlOf(tx);
    const contract = await tx.contract.findUnique({ where: { id: contractId } });
    if (!contract) throw notFound("contract", contractId);
    const period = resolvePeriod(contract, body.periodStart, now);
    const rating = await rateContractPeriod(sql, contract, period);
    const id = newId();
    const { result } = rating;
    const createdAt = now;
    // Exceptions first: the stored calculation keeps the ids of the exceptions it raised (an exception is
    // shared by every preview that sees it, so its own calculation_id names only the latest one).
    const exceptions = await recordExceptions(sql, contractId, rating, id);
    await sql.query(
      `INSERT INTO calculations (id, contract_id, period_start, period_end, engine_version, inputs_hash, inputs, result,
                                 total, already_billed, delta, action, currency, created_at, created_by)
       VALUES ($1::uuid, $2::uuid, $3::timestamptz, $4::timestamptz, $5, $6, $7::jsonb, $8::jsonb, $9::numeric, $10::numeric, $11::numeric, $12, $13, $14::timestamptz, $15)`,
      [
        id,
        contractId,
        period.start,
        period.end,
        result.engineVersion,
        result.inputsHash,
        JSON.stringify(rating.input),
        JSON.stringify({ ...result, extraExceptions: rating.extraExceptions, exceptionIds: exceptions.map((e) => e.id), billedBefore: rating.billedBefore }),
        result.total,
        result.alreadyBilled,
        result.delta,
        result.action,
        result.currency,
        createdAt.toISOString(),
        actor,
      ],
    );
    await appendAudit(sql, {
      actor,
      action: "calculation.created",
      entityType: "calculation",
      entityId: id,
      payload: {
        contractId,
        period,
        total: result.total,
        alreadyBilled: result.alreadyBilled,
        delta: result.delta,
        action: result.action,
        inputsHash: result.inputsHash,
        engineVersion: result.engineVersion,
        exceptions: exceptions.map((e) => ({ id: e.id, kind: e.kind, status: e.status })),
      },
    });
    return { ...result, id, periodClosed: periodHasEnded(period, createdAt), exceptions, createdAt: createdAt.toISOString(), createdBy: actor };
  });
}

export async function getCalculation(db: Database, id: string): Promise<CalculationView> {
  const sql = pgSql(db.pool);
  type StoredResult = RatingResult & { extraExceptions?: unknown; exceptionIds?: string[]; billedBefore?: unknown };
  const [row] = await sql.query<{ id: string; contract_id: string; inputs: RatingInput; result: StoredResult; created_at: Date; created_by: string }>(
    `SELECT id::text AS id, contract_id::text AS contract_id, inputs, result, created_at, created_by FROM calculations WHERE id = $1::uuid`,
    [id],
  );
  if (!row) throw notFound("calculation", id);
  // The exceptions this calculation raised, with their current status (decisions taken since included).
  const views = await Promise.all((row.result.exceptionIds ?? []).map((e) => getException(sql, e)));
  const { extraExceptions: _extra, exceptions: _engine, exceptionIds: _ids, billedBefore: _billed, ...result } = row.result;
  return {
    ...result,
    id: row.id,
    periodClosed: periodHasEnded(result.period, row.created_at),
    exceptions: views,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    inputs: row.inputs,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Issuing

export interface DocumentLineView {
  lineNo: number;
  kind: string;
  metric: string | null;
  amount: string;
  explanation: Record<string, unknown>;
}

export interface DocumentView {
  id: string;
  number: string;
  kind: "invoice" | "credit_memo";
  contractId: string;
  period: Period;
  currency: string;
  lines: DocumentLineView[];
  subtotal: string;
  alreadyBilled: string;
  amount: string;
  /** Each grant's use by the period and its balance after this document (balanceAfter: absent on documents that predate it). */
  creditsApplied: { grantId: string; amount: string; balanceAfter?: string | undefined }[];
  calculationId: string;
  inputsHash: string;
  issuedAt: string;
  issuedBy: string;
}

const ISSUE_SCOPE = "POST /v1/contracts/:id/true-ups";

export async function issueTrueUp(
  db: Database,
  actor: string,
  contractId: string,
  body: { calculationId: string },
  idempotencyKey: string | undefined,
  now: Date,
): Promise<{ status: number; document: DocumentView; replayed: boolean }> {
  const requestHash = createHash("sha256").update(canonicalJson({ contractId, body })).digest("hex");
  for (let attempt = 0; ; attempt++) {
    try {
      return await withTransaction(db, (tx) => issueInTransaction(tx, actor, contractId, body.calculationId, idempotencyKey, requestHash, now));
    } catch (e) {
      // Two requests with one key on different contracts race on the idempotency row: the loser re-reads it.
      if (attempt < 3 && isUniqueViolation(e)) continue;
      throw e;
    }
  }
}

async function issueInTransaction(
  tx: Tx,
  actor: string,
  contractId: string,
  calculationId: string,
  idempotencyKey: string | undefined,
  requestHash: string,
  now: Date,
): Promise<{ status: number; document: DocumentView; replayed: boolean }> {
  const sql = sqlOf(tx);
  // The contract lock queues every issue of this contract; what follows sees the committed result of the previous one.
  const contract = await lockContract(tx, contractId);

  if (idempotencyKey !== undefined) {
    const [prior] = await sql.query<{ request_hash: string; status_code: number; response: DocumentView }>(
      `SELECT request_hash, status_code, response FROM idempotency_keys WHERE scope = $1 AND key = $2`,
      [ISSUE_SCOPE, idempotencyKey],
    );
    if (prior) {
      if (prior.request_hash !== requestHash)
        throw new ProblemError("idempotency_conflict", "this Idempotency-Key was used with a different request");
      return { status: prior.status_code, document: prior.response, replayed: true };
    }
  }

  const [calc] = await sql.query<{ id: string; contract_id: string; inputs_hash: string; period_start: Date; period_end: Date }>(
    `SELECT id::text AS id, contract_id::text AS contract_id, inputs_hash, period_start, period_end FROM calculations WHERE id = $1::uuid`,
    [calculationId],
  );
  if (!calc || calc.contract_id !== contractId) throw notFound("calculation", calculationId);
  const [existing] = await sql.query<{ id: string; number: string }>(
    `SELECT id::text AS id, number FROM documents WHERE calculation_id = $1::uuid`,
    [calculationId],
  );
  if (existing)
    throw new ProblemError("conflict", `calculation ${calculationId} was already issued as ${existing.number}`, { documentId: existing.id });

  const period = { start: calc.period_start.toISOString(), end: calc.period_end.toISOString() };
  // A period still running can be previewed (an estimate) but not billed: more usage may arrive in it.
  if (!periodHasEnded(period, now))
    throw new ProblemError("period_open", `the period ${period.start} to ${period.end} has not ended yet: it can be issued from ${period.end}`, { period });
  const rating = await rateContractPeriod(sql, contract, period);
  const { result } = rating;
  if (result.inputsHash !== calc.inputs_hash)
    throw new ProblemError("stale_preview", "the inputs changed since the preview (usage, versions, billings or credits): preview again", {
      previewInputsHash: calc.inputs_hash,
      currentInputsHash: result.inputsHash,
    });

  const exceptions = await recordExceptions(sql, contractId, rating, null);
  const blocking = exceptions.filter((e) => e.blocking && e.status !== "approved");
  if (blocking.length > 0)
    throw new ProblemError("blocking_exceptions", `${blocking.length} blocking exception(s) need an approve decision first`, {
      exceptions: blocking.map((e) => ({ id: e.id, kind: e.kind, subject: e.subject, status: e.status, message: e.message })),
    });
  if (result.action === "none")
    throw new ProblemError("nothing_to_issue", `the period is billed correctly (total ${result.total}, already billed ${result.alreadyBilled})`);

  const kind = result.action;
  const [counter] = await sql.query<{ last_number: number }>(
    `UPDATE document_counters SET last_number = last_number + 1 WHERE kind = $1 RETURNING last_number`,
    [kind],
  );
  const seq = counter!.last_number;
  const number = `${kind === "invoice" ? "INV" : "CM"}-${String(seq).padStart(6, "0")}`;
  const id = newId();
  const issuedAt = now.toISOString();
  const amount = formatMoney(money(result.delta).abs(), result.currency);
  const creditsApplied = result.creditsApplied.filter((c) => !money(c.amount).isZero());

  await sql.query(
    `INSERT INTO documents (id, number, kind, kind_seq, contract_id, period_start, period_end, currency, subtotal, already_billed,
                            amount, credits_applied, calculation_id, inputs_hash, issued_at, issued_by)
     VALUES ($1::uuid, $2, $3, $4, $5::uuid, $6::timestamptz, $7::timestamptz, $8, $9::numeric, $10::numeric, $11::numeric, $12::jsonb,
             $13::uuid, $14, $15::timestamptz, $16)`,
    [id, number, kind, seq, contractId, period.start, period.end, result.currency, result.total, result.alreadyBilled, amount,
      JSON.stringify(creditsApplied), calculationId, result.inputsHash, issuedAt, actor],
  );
  const lines: DocumentLineView[] = result.lines.map((l, i) => {
    const { kind: lineKind, metric, amount: lineAmount, ...explanation } = l;
    return { lineNo: i + 1, kind: lineKind, metric: metric ?? null, amount: lineAmount, explanation };
  });
  if (lines.length > 0)
    await sql.query(
      `INSERT INTO document_lines (document_id, line_no, kind, metric, amount, explanation)
       SELECT $1::uuid, l.line_no, l.kind, l.metric, l.amount, l.explanation
       FROM jsonb_to_recordset($2::jsonb) AS l(line_no int, kind text, metric text, amount numeric, explanation jsonb)`,
      [id, JSON.stringify(lines.map((l) => ({ line_no: l.lineNo, kind: l.kind, metric: l.metric, amount: l.amount, explanation: l.explanation })))],
    );
  // Drawdowns record the period's full credit use; a later document for the period supersedes them (rule 10).
  for (const c of creditsApplied)
    await sql.query(
      `INSERT INTO credit_drawdowns (document_id, grant_id, contract_id, period_start, amount) VALUES ($1::uuid, $2, $3::uuid, $4::timestamptz, $5::numeric)`,
      [id, c.grantId, contractId, period.start, c.amount],
    );

  const document: DocumentView = {
    id,
    number,
    kind,
    contractId,
    period,
    currency: result.currency,
    lines,
    subtotal: result.total,
    alreadyBilled: result.alreadyBilled,
    amount,
    creditsApplied,
    calculationId,
    inputsHash: result.inputsHash,
    issuedAt,
    issuedBy: actor,
  };
  if (idempotencyKey !== undefined)
    await sql.query(
      `INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response) VALUES ($1, $2, $3, 201, $4::jsonb)`,
      [ISSUE_SCOPE, idempotencyKey, requestHash, JSON.stringify(document)],
    );
  const { lines: _lines, ...header } = document; // the lines are in the document; the chain records its header
  await appendAudit(sql, {
    actor,
    action: "document.issued",
    entityType: "document",
    entityId: id,
    // attests: the digest of the document, its lines and drawdowns as stored, which a deep verify recomputes.
    payload: { ...header, approvedExceptions: exceptions.filter((e) => e.blocking).map((e) => e.id), attests: await documentAttestation(sql, id) },
  });
  return { status: 201, document, replayed: false };
}

