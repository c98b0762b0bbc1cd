// Billing a chunk of a run's contracts (the bill_contracts job, docs/billing-runs.md). One transaction per pass
// bills the oldest pending period of each contract of the chunk: the items are claimed (FOR UPDATE SKIP LOCKED,
// so a second copy of the job bills none of them twice), the contracts locked as issuing locks them, each
// period rated once and stored as its calculation (what a preview stores), and — with autoIssue, when
// something is due and nothing blocks — issued in the same transaction under the key
// billing-run:<contractId>:<periodStart>:<inputsHash>, with its item completed. The rating and the issue are
// one transaction, so the issue needs no second rating to prove its preview is not stale.
//
// Why a chunk: what every issue must serialize on (the gapless number, the audit chain, the commit's flush)
// is taken once per chunk and only at its end, for all its documents at once; that is what lets a month-end
// run bill thousands of contracts a minute. A database error in a chunk rolls it back whole; its contracts
// are then billed one by one (bill-contract.ts), so one contract's failure lands on its own item.
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { type BillingRunItemRow, type BillingRunRow, type ItemOutcome, claimPendingItems, completeItems, runById } from "../../db/queries/billing-runs.js";
import { insertCalculations } from "../../db/queries/calculations.js";
import { type ContractRecord, lockContracts } from "../../db/queries/contracts.js";
import { type DocumentInsert, databaseNow, insertDocuments } from "../../db/queries/documents.js";
import { idempotencyRecordsOf } from "../../db/queries/idempotency.js";
import { enqueueAlertEvaluation } from "../../db/queries/jobs.js";
import type { Sql } from "../../db/sql.js";
import { transaction } from "../../db/tx.js";
import { type RatingResult, itemDecision, periodStartingAt } from "../../domain/index.js";
import { DomainError } from "../../errors.js";
import { type AuditInput, appendAuditEntries } from "../audit/append.js";
import { documentAttestationsOf } from "../audit/digests.js";
import { periodContractOf } from "../contracts/read.js";
import { nextDocumentNumbers } from "../documents/numbering.js";
import type { DocumentView } from "../documents/read.js";
import type { ExceptionView } from "../exceptions/read.js";
import { type IdempotentRequest, storeIdempotentResponses } from "../idempotency.js";
import { emitWebhookEvents } from "../webhooks/emit.js";
import { ISSUE_SCOPE, documentIssuedEntry, documentOf } from "../true-ups/issue.js";
import { calculationOf } from "../true-ups/preview.js";
import { type PeriodRating, periodHasEnded, rateContractPeriod, recordExceptions } from "../true-ups/rate.js";
import { billContractItems, completeRunIfLast } from "./bill-contract.js";

/** Contracts per job: enough that a chunk's serialized tail is short per document, few enough to spread over the workers. */
export const BILLING_CHUNK = 25;

export async function billContracts(db: Database, runId: string, contractIds: readonly string[], now: Date): Promise<void> {
  const run = await runById(db.sql, runId);
  if (!run || run.status !== "running") return;
  // Each pass takes one period per contract (a later period's rating reads the earlier one's document).
  for (;;) {
    let billed: number;
    try {
      billed = await transaction(db, (sql) => billChunk(sql, run, contractIds, now));
    } catch {
      for (const contractId of contractIds) await billContractItems(db, run, contractId, now);
      break;
    }
    if (billed === 0) break;
  }
  await completeRunIfLast(db, runId);
}

interface Billed {
  item: BillingRunItemRow;
  /** The rating stored as a calculation; null when the rating was refused. */
  calculation: ReturnType<typeof calculationOf> | null;
  outcome: ItemOutcome;
  /** To be issued in this pass. */
  issue: { result: RatingResult; exceptions: ExceptionView[]; request: IdempotentRequest } | null;
  /** Its document once issued, and the document's audit entry. */
  document?: DocumentView;
  documentEntry?: AuditInput;
}

/** One pass over the chunk, in the caller's transaction; returns the number of items it completed. */
async function billChunk(sql: Sql, run: BillingRunRow, contractIds: readonly string[], now: Date): Promise<number> {
  const claimed = await claimPendingItems(sql, run.id, contractIds);
  const items = claimed.filter((item, i) => i === 0 || claimed[i - 1]!.contract_id !== item.contract_id); // oldest per contract
  if (items.length === 0) return 0;
  const contracts = new Map((await lockContracts(sql, items.map((i) => i.contract_id))).map((c) => [c.id, c]));
  const billed: Billed[] = [];
  for (const item of items) billed.push(await rateItem(sql, run, contracts.get(item.contract_id)!, item, now));
  // The same inputs issued under their key already (the one-by-one path issued, then crashed before its item): that document is the item's.
  const priors = await idempotencyRecordsOf(sql, ISSUE_SCOPE, billed.flatMap((b) => (b.issue ? [b.issue.request.key] : [])));
  for (const b of billed) {
    const prior = b.issue && (priors.get(b.issue.request.key)?.response as DocumentView | undefined);
    if (!prior) continue;
    b.issue = null;
    b.outcome = { ...b.outcome, documentId: prior.id, calculationId: prior.calculationId };
  }
  await insertCalculations(sql, billed.flatMap((b) => (b.calculation ? [b.calculation.record] : [])));
  const issuing = billed.filter((b) => b.issue !== null);
  await completeItems(
    sql,
    run.id,
    billed.map((b) => ({ contractId: b.item.contract_id, periodStart: b.item.period_start, outcome: b.outcome })),
  );
  await enqueueAlertEvaluation(sql, issuing.map((b) => b.item.contract_id)); // a document changes the balances credit_balance alerts watch
  // What follows serializes issues book-wide (the number counter, then the audit chain, until COMMIT): last, and in a few statements.
  const documents = await issueDocuments(sql, run.created_by, issuing);
  await emitWebhookEvents(sql, "document.issued", documents);
  await appendAuditEntries(
    sql,
    billed.flatMap((b) => [...(b.calculation ? [b.calculation.entry] : []), ...(b.documentEntry ? [b.documentEntry] : [])]),
  );
  return items.length;
}

/** Rates one item's period, raises its exceptions and decides its outcome (as a preview, then an issue, would). */
async function rateItem(sql: Sql, run: BillingRunRow, contract: ContractRecord, item: BillingRunItemRow, now: Date): Promise<Billed> {
  const failed = (error: string): Billed => ({ item, calculation: null, issue: null, outcome: { status: "failed", documentId: null, blockingExceptionIds: [], error } });
  const period = periodStartingAt(periodContractOf(contract), item.period_start.toISOString());
  if (!period) return failed(`${item.period_start.toISOString()} is no longer the start of a billing period of the contract`);
  let rating: PeriodRating;
  try {
    rating = await rateContractPeriod(sql, contract, { start: period.start, end: period.end });
  } catch (e) {
    // Refused before anything was written (amounts the service cannot store): this item fails, the chunk goes on.
    if (e instanceof DomainError) return failed(`${e.code}: ${e.message}`);
    throw e;
  }
  const id = newId();
  const exceptions = await recordExceptions(sql, contract.id, rating, id);
  const calculation = calculationOf(rating, { id, contractId: contract.id, period: { start: period.start, end: period.end }, exceptions, now, actor: run.created_by });
  const calc = calculation.view;
  const outcome = (status: ItemOutcome["status"], extra: Partial<ItemOutcome> = {}): Billed => ({
    item,
    calculation,
    issue: null,
    outcome: { status, documentId: null, blockingExceptionIds: [], error: null, calculationId: id, ...extra },
  });
  const decision = itemDecision(calc, run.auto_issue);
  if (decision.status === "blocked") return outcome("blocked", { blockingExceptionIds: decision.blockingExceptionIds });
  if (decision.status !== "issue") return outcome(decision.status);
  if (!periodHasEnded(calc.period, now)) return outcome("failed", { error: `period_open: the period ${calc.period.start} to ${calc.period.end} has not ended yet` });
  const key = `billing-run:${contract.id}:${item.period_start.toISOString()}:${calc.inputsHash}`;
  // The document's id is chosen now, so the item is completed before the numbers are taken.
  return { ...outcome("issued", { documentId: newId() }), issue: { result: rating.result, exceptions, request: { scope: ISSUE_SCOPE, key, request: { contractId: contract.id, body: { calculationId: id } } } } };
}

/** The pass's documents: numbered in one counter update per kind, stored with their idempotency records. */
async function issueDocuments(sql: Sql, actor: string, issuing: Billed[]): Promise<DocumentView[]> {
  if (issuing.length === 0) return [];
  // The database's clock, as issueTrueUp stamps documents: late usage is what was received after it.
  const issuedAt = await databaseNow(sql);
  const inserts: DocumentInsert[] = [];
  for (const kind of ["invoice", "credit_memo"] as const) {
    const ofKind = issuing.filter((b) => b.issue!.result.action === kind);
    const numbers = await nextDocumentNumbers(sql, kind, ofKind.length);
    for (const [i, b] of ofKind.entries()) {
      const { seq, number } = numbers[i]!;
      b.document = documentOf(b.issue!.result, { id: b.outcome.documentId!, number, contractId: b.item.contract_id, calculationId: b.calculation!.record.id, issuedAt, issuedBy: actor });
      inserts.push({ ...b.document, kindSeq: seq });
    }
  }
  await insertDocuments(sql, inserts);
  await storeIdempotentResponses(sql, issuing.map((b) => ({ req: b.issue!.request, status: 201, response: b.document })));
  const attestations = await documentAttestationsOf(sql, issuing.map((b) => b.document!.id));
  for (const [i, b] of issuing.entries()) b.documentEntry = documentIssuedEntry(b.document!, b.issue!.exceptions, attestations[i]!);
  return issuing.map((b) => b.document!);
}
