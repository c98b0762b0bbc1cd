// Previewing a true-up: rate the period as it stands and store the calculation, with the exceptions it
// raised and its audit entry, in one transaction. Issuing later recomputes it (issue.ts).
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { insertCalculation } from "../../db/queries/calculations.js";
import { type ContractRecord, contractById } from "../../db/queries/contracts.js";
import { transaction } from "../../db/tx.js";
import { type PeriodRef, lastClosedPeriod, periodStartingAt } from "../../domain/index.js";
import { invalid, notFound } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { periodContractOf } from "../contracts/read.js";
import { periodHasEnded, rateContractPeriod, recordExceptions } from "./rate.js";
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
    const { result } = rating;
    const createdAt = now.toISOString();
    // Exceptions first: the stored calculation keeps the ids of the exceptions it raised (an exception is
    // shared by every preview that sees it, so its own calculation_id names only the latest one).
    const exceptions = await recordExceptions(sql, contractId, rating, id);
    await insertCalculation(sql, {
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
    });
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
    return { ...result, id, periodClosed: periodHasEnded(period, now), exceptions, createdAt, createdBy: actor };
  });
}
