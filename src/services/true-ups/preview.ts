// Previewing a true-up: rate the period as it stands and store the calculation, with the exceptions it
// raised and its audit entry, in one transaction. Issuing later recomputes it (issue.ts).
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { type CalculationInsert, insertCalculation } from "../../db/queries/calculations.js";
import { type ContractRecord, contractById } from "../../db/queries/contracts.js";
import { transaction } from "../../db/tx.js";
import { type PeriodRef, lastClosedPeriod, periodStartingAt } from "../../domain/index.js";
import { invalid, notFound } from "../../errors.js";
import { type AuditInput, appendAudit } from "../audit/append.js";
import { periodContractOf } from "../contracts/read.js";
import type { ExceptionView } from "../exceptions/read.js";
import { type PeriodRating, periodHasEnded, rateContractPeriod, recordExceptions } from "./rate.js";
import type { CalculationView } from "./read.js";

/** The period named by its start, or else the contract's last closed period. */
function resolvePeriod(contract: ContractRecord, periodStart: string | undefined, now: Date): PeriodRef {
  const pc = periodContractOf(contract);
  if (periodStart !== undefined) {
    const p = periodStartingAt(pc, new Date(periodStart).toISOString());
    if (!p) throw invalid([{ field: "periodStart", message: "is not the start of a billing period of this contract" }]);
    return { start: p.start, end: p.end };
  }
  const p = lastClosedPeriod(pc, now.toISOString());
  if (!p) throw invalid([{ field: "periodStart", message: "the contract has no closed period yet: name the period to preview" }]);
  return { start: p.start, end: p.end };
}

export async function previewTrueUp(
  db: Database,
  actor: string,
  contractId: string,
  body: { periodStart?: string | undefined },
  now: Date,
): Promise<CalculationView> {
  return transaction(db, async (sql) => {
    const contract = await contractById(sql, contractId);
    if (!contract) throw notFound("contract", contractId);
    const period = resolvePeriod(contract, body.periodStart, now);
    const rating = await rateContractPeriod(sql, contract, period);
    const id = newId();
    // Exceptions first: the stored calculation keeps the ids of the exceptions it raised (an exception is
    // shared by every preview that sees it, so its own calculation_id names only the latest one).
    const exceptions = await recordExceptions(sql, contractId, rating, id);
    const calculation = calculationOf(rating, { id, contractId, period, exceptions, now, actor });
    await insertCalculation(sql, calculation.record);
    await appendAudit(sql, calculation.entry);
    return calculation.view;
  });
}

/** A rating as a stored calculation, its calculation.created audit entry and its view (what the preview answers). */
export function calculationOf(
  rating: PeriodRating,
  c: { id: string; contractId: string; period: PeriodRef; exceptions: ExceptionView[]; now: Date; actor: string },
): { record: CalculationInsert; entry: AuditInput; view: CalculationView } {
  const { result } = rating;
  const { id, contractId, period, exceptions, actor } = c;
  const createdAt = c.now.toISOString();
  const record: CalculationInsert = {
    id,
    contractId,
    period,
    engineVersion: result.engineVersion,
    inputsHash: result.inputsHash,
    inputs: rating.input,
    result: { ...result, extraExceptions: rating.extraExceptions, exceptionIds: exceptions.map((e) => e.id), billedBefore: rating.billedBefore },
    total: result.total,
    alreadyBilled: result.alreadyBilled,
    delta: result.delta,
    action: result.action,
    currency: result.currency,
    createdAt,
    createdBy: actor,
  };
  const entry: AuditInput = {
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
  };
  return { record, entry, view: { ...result, id, periodClosed: periodHasEnded(period, c.now), exceptions, createdAt, createdBy: actor } };
}
