// Issuing a true-up: the document of a previewed calculation, exactly once. Inside one transaction, with the
// contract locked: recompute the preview and refuse when its inputs changed (stale_preview), when blocking
// exceptions are not approved or nothing is due; then write the document (gapless number), its lines, the
// credit drawdowns, the idempotency record and the audit entry together.
import type { Database } from "../../db/client.js";
import { isUniqueViolation } from "../../db/errors.js";
import { newId } from "../../db/ids.js";
import { databaseNow, documentOfCalculation, insertDocument } from "../../db/queries/documents.js";
import { calculationToIssue } from "../../db/queries/calculations.js";
import type { ContractRecord } from "../../db/queries/contracts.js";
import type { Sql } from "../../db/sql.js";
import { enqueueAlertEvaluation } from "../../db/queries/jobs.js";
import { transaction } from "../../db/tx.js";
import { Decimal, type RatingResult, formatMoney } from "../../domain/index.js";
import { DomainError, conflict, notFound } from "../../errors.js";
import { type AuditInput, appendAudit } from "../audit/append.js";
import { type Attestation, documentAttestation } from "../audit/digests.js";
import { lockContract } from "../contracts/read.js";
import { nextDocumentNumber } from "../documents/numbering.js";
import type { DocumentLineView, DocumentView } from "../documents/read.js";
import { idempotent } from "../idempotency.js";
import type { ExceptionView } from "../exceptions/read.js";
import { emitWebhookEvent } from "../webhooks/emit.js";
import { periodHasEnded, rateContractPeriod, recordExceptions } from "./rate.js";

/** The idempotency scope of issuing (a billing run replays its issues through it). */
export const ISSUE_SCOPE = "POST /v1/contracts/:id/true-ups";

export async function issueTrueUp(
  db: Database,
  actor: string,
  contractId: string,
  body: { calculationId: string },
  idempotencyKey: string | undefined,
  now: Date,
): Promise<{ status: number; document: DocumentView; replayed: boolean }> {
  const request = idempotencyKey === undefined ? undefined : { scope: ISSUE_SCOPE, key: idempotencyKey, request: { contractId, body } };
  // Two requests with one key on different contracts race on the idempotency row: the loser's retry reads it.
  const { status, response, replayed } = await transaction(
    db,
    async (sql) => {
      // The contract lock queues every issue of this contract; what follows sees the committed result of the previous one.
      const contract = await lockContract(sql, contractId);
      return idempotent(sql, request, async () => ({
        status: 201,
        response: await issueDocument(sql, actor, contractId, contract, body.calculationId, now),
      }));
    },
    { retryOn: isUniqueViolation },
  );
  return { status, document: response, replayed };
}

async function issueDocument(
  sql: Sql,
  actor: string,
  contractId: string,
  contract: ContractRecord,
  calculationId: string,
  now: Date,
): Promise<DocumentView> {
  const calc = await calculationToIssue(sql, calculationId);
  if (!calc || calc.contract_id !== contractId) throw notFound("calculation", calculationId);
  const existing = await documentOfCalculation(sql, calculationId);
  if (existing) throw conflict(`calculation ${calculationId} was already issued as ${existing.number}`, { documentId: existing.id });

  const period = { start: calc.period_start.toISOString(), end: calc.period_end.toISOString() };
  // A period still running can be previewed (an estimate) but not billed: more usage may arrive in it.
  if (!periodHasEnded(period, now))
    throw new DomainError("period_open", `the period ${period.start} to ${period.end} has not ended yet: it can be issued from ${period.end}`, { period });
  const rating = await rateContractPeriod(sql, contract, period);
  const { result } = rating;
  if (result.inputsHash !== calc.inputs_hash)
    throw new DomainError("stale_preview", "the inputs changed since the preview (usage, versions, billings or credits): preview again", {
      previewInputsHash: calc.inputs_hash,
      currentInputsHash: result.inputsHash,
    });

  const exceptions = await recordExceptions(sql, contractId, rating, null);
  const blocking = exceptions.filter((e) => e.blocking && e.status !== "approved");
  if (blocking.length > 0)
    throw new DomainError("blocking_exceptions", `${blocking.length} blocking exception(s) need an approve decision first`, {
      exceptions: blocking.map((e) => ({ id: e.id, kind: e.kind, subject: e.subject, status: e.status, message: e.message })),
    });
  if (result.action === "none")
    throw new DomainError("nothing_to_issue", `the period is billed correctly (total ${result.total}, already billed ${result.alreadyBilled})`);

  const { seq, number } = await nextDocumentNumber(sql, result.action);
  // The database's clock, not `now`: late usage is what was received after the document, on the clock that
  // stamps arrivals (previews' late_usage, reconciliation's late units). `now` decides whether the period ended.
  const issuedAt = await databaseNow(sql);
  const document = documentOf(result, { id: newId(), number, contractId, calculationId, issuedAt, issuedBy: actor });
  await insertDocument(sql, { ...document, kindSeq: seq });
  await appendAudit(sql, documentIssuedEntry(document, exceptions, await documentAttestation(sql, document.id)));
  await emitWebhookEvent(sql, "document.issued", document);
  // An issued document changes the balances a credit_balance alert watches.
  await enqueueAlertEvaluation(sql, [contractId]);
  return document;
}

/** The document a rating issues: its lines numbered from 1, the credits that moved, who and when. */
export function documentOf(
  result: RatingResult,
  d: { id: string; number: string; contractId: string; calculationId: string; issuedAt: string; issuedBy: string },
): DocumentView {
  const lines: DocumentLineView[] = result.lines.map((l, i) => {
    const { kind: lineKind, meterId, metric, amount: lineAmount, ...explanation } = l;
    return { lineNo: i + 1, kind: lineKind, ...(meterId === undefined ? {} : { meterId }), metric: metric ?? null, amount: lineAmount, explanation };
  });
  if (result.action === "none") throw new Error("a rating with nothing due has no document");
  return {
    id: d.id,
    number: d.number,
    kind: result.action,
    contractId: d.contractId,
    period: result.period,
    currency: result.currency,
    lines,
    subtotal: result.total,
    alreadyBilled: result.alreadyBilled,
    amount: formatMoney(new Decimal(result.delta).abs(), result.currency),
    creditsApplied: result.creditsApplied.filter((c) => !new Decimal(c.amount).isZero()),
    calculationId: d.calculationId,
    inputsHash: result.inputsHash,
    issuedAt: d.issuedAt,
    issuedBy: d.issuedBy,
  };
}

/** The document.issued audit entry: the header (the chain records it; the lines are in the document) and what it attests. */
export function documentIssuedEntry(document: DocumentView, exceptions: readonly ExceptionView[], attests: Attestation): AuditInput {
  const { lines: _lines, ...header } = document;
  return {
    actor: document.issuedBy,
    action: "document.issued",
    entityType: "document",
    entityId: document.id,
    // attests: the digest of the document, its lines and drawdowns as stored, which a deep verify recomputes.
    payload: { ...header, approvedExceptions: exceptions.filter((e) => e.blocking).map((e) => e.id), attests },
  };
}
