// What-if (docs/rating.md, "What-if"): a period's real usage rated twice, with the contract's versions and
// with proposed terms, side by side. Read-only: no calculation, no exception, no audit entry, nothing to issue.
import type { Database } from "../../db/client.js";
import { creditsUsedElsewhere } from "../../db/queries/billing.js";
import { type ContractRecord, contractById } from "../../db/queries/contracts.js";
import { measureUsage } from "../../db/queries/measures.js";
import { sumUsage } from "../../db/queries/usage.js";
import { transaction } from "../../db/tx.js";
import {
  type ContractVersion,
  type PeriodRef,
  type RatingResult,
  Decimal,
  formatMoney,
  lastClosedPeriod,
  periodStartingAt,
  ratePeriod,
  usageRequest,
} from "../../domain/index.js";
import type { ContractTerms } from "../../domain/terms.js";
import { type FieldIssue, invalid, notFound } from "../../errors.js";
import { periodContractOf } from "../contracts/read.js";
import { checkTermsMoney } from "../contracts/terms-money.js";
import { periodHasEnded } from "./rate.js";
import { creditBalancesOf, loadRatingInputs } from "./rating-inputs.js";

export interface SimulationInput {
  terms: ContractTerms;
  periodStart?: string | undefined;
}

/** A full rating as a preview's calculation shows it, without what only a stored one has (id, inputsHash, stored exceptions). */
export type SimulatedRating = Omit<RatingResult, "inputsHash"> & { periodClosed: boolean };

export interface Simulation {
  period: PeriodRef;
  current: SimulatedRating;
  proposed: SimulatedRating;
  difference: { total: string; perMeter: { meterId: string; current: string; proposed: string; difference: string }[] };
}

/** The period named by its start, or else the contract's last closed period (as a preview resolves it). */
function resolvePeriod(contract: ContractRecord, periodStart: string | undefined, now: Date): PeriodRef | FieldIssue {
  const pc = periodContractOf(contract);
  if (periodStart !== undefined) {
    const p = periodStartingAt(pc, new Date(periodStart).toISOString());
    return p ? { start: p.start, end: p.end } : { field: "periodStart", message: "is not the start of a billing period of this contract" };
  }
  const p = lastClosedPeriod(pc, now.toISOString());
  return p ? { start: p.start, end: p.end } : { field: "periodStart", message: "the contract has no closed period yet: name the period to simulate" };
}

/**
 * The versions of the proposed rating: `terms` as one version in force from the period's start to its end,
 * numbered after the last, with the kept versions those that took effect before the period (so a term
 * commitment's earlier periods, and a spike check's baseline, are rated as they were) and none from the
 * period's start on (no tie with the proposal, nothing later replacing it). The contract's other properties
 * (currency, timezone, calendar, rounding, true-downs) are its own.
 */
function proposedVersions(versions: readonly ContractVersion[], terms: ContractTerms, period: PeriodRef, now: Date): ContractVersion[] {
  const startMs = Date.parse(period.start);
  const before = versions.filter((v) => Date.parse(v.effectiveFrom) < startMs);
  const number = Math.max(0, ...versions.map((v) => v.version)) + 1;
  return [...before, { version: number, effectiveFrom: period.start, signedAt: now.toISOString(), kind: "amendment", reason: "simulation", terms }];
}

function view(result: RatingResult, period: PeriodRef, now: Date): SimulatedRating {
  const { inputsHash: _, ...rest } = result;
  return { ...rest, periodClosed: periodHasEnded(period, now) };
}

/** Each meter's usage charges: its usage lines (every segment; meter discounts and caps applied), by meter id. */
function chargesByMeter(result: RatingResult): Map<string, Decimal> {
  const byMeter = new Map<string, Decimal>();
  for (const l of result.lines)
    if (l.kind === "usage" && l.meterId !== undefined) byMeter.set(l.meterId, (byMeter.get(l.meterId) ?? new Decimal(0)).plus(l.amount));
  return byMeter;
}

export async function simulateTerms(db: Database, contractId: string, body: SimulationInput, now: Date): Promise<Simulation> {
  return transaction(
    db,
    async (sql) => {
      const contract = await contractById(sql, contractId);
      if (!contract) throw notFound("contract", contractId);
      // The terms as an amendment's (the body's schema is the same ContractTerms), then the period.
      const issues: FieldIssue[] = [];
      checkTermsMoney(body.terms, contract.currency, "terms", issues);
      const period = resolvePeriod(contract, body.periodStart, now);
      if ("field" in period) issues.push(period);
      if (issues.length || "field" in period) throw invalid(issues);

      const { input, customerIds } = await loadRatingInputs(sql, contract, period);
      const current = ratePeriod(input);
      // The proposal reads the usage its own meters measure (other metrics, filters or aggregations perhaps),
      // and its grants' balances net of what other periods drew from grants of the same id.
      const versions = proposedVersions(input.versions, body.terms, period, now);
      const request = usageRequest({ contract: input.contract, versions, period });
      const usage = await sumUsage(sql, customerIds, request.windows);
      const measured = await measureUsage(sql, customerIds, request.measures);
      const usedElsewhere = await creditsUsedElsewhere(sql, contract.id, period.start);
      const proposed = ratePeriod({ ...input, versions, usage, measured, creditBalances: creditBalancesOf(versions, usedElsewhere) });

      const money = (d: Decimal) => formatMoney(d, contract.currency);
      const before = chargesByMeter(current);
      const after = chargesByMeter(proposed);
      const perMeter = [...new Set([...before.keys(), ...after.keys()])].map((meterId) => {
        const c = before.get(meterId) ?? new Decimal(0);
        const p = after.get(meterId) ?? new Decimal(0);
        return { meterId, current: money(c), proposed: money(p), difference: money(p.minus(c)) };
      });
      return {
        period,
        current: view(current, period, now),
        proposed: view(proposed, period, now),
        difference: { total: money(new Decimal(proposed.total).minus(current.total)), perMeter },
      };
    },
    // Nothing may be written, and both ratings read one snapshot.
    { isolation: "repeatable read", readOnly: true },
  );
}
