// The one path preview and issue share (docs/rating.md): gather the period's inputs, run the pure engine,
// refuse amounts that cannot be stored, add the exceptions only the database can see, and raise them all.
import { lateActivity } from "../../db/queries/usage.js";
import type { ContractRecord } from "../../db/queries/contracts.js";
import type { Sql } from "../../db/sql.js";
import { type PeriodRef, type RatingInput, type RatingResult, Decimal, fitsMoneyColumn, largestMoney, ratePeriod } from "../../domain/index.js";
import { conflict } from "../../errors.js";
import { type RaiseException, raiseException } from "../exceptions/raise.js";
import type { ExceptionView } from "../exceptions/read.js";
import { type RatingInputs, loadRatingInputs } from "./rating-inputs.js";

/** Everything one rating of one contract period needs and produces. */
export interface PeriodRating extends Omit<RatingInputs, "customerIds" | "looksBack"> {
  result: RatingResult;
  /** Exceptions only the database can see (late usage), in the engine's shape. */
  extraExceptions: Omit<RaiseException, "contractId" | "period" | "calculationId" | "owner">[];
}

/** Gathers the engine's inputs for one contract period from the database and rates it. */
export async function rateContractPeriod(sql: Sql, contract: ContractRecord, period: PeriodRef): Promise<PeriodRating> {
  const { customerIds, looksBack, ...inputs } = await loadRatingInputs(sql, contract, period);
  const result = ratePeriod(inputs.input);
  assertStorableAmounts(result);
  const { latestDocument } = inputs;
  const extraExceptions: PeriodRating["extraExceptions"] = [];
  if (latestDocument) {
    // Late usage: events that arrived, or were voided, after the period's latest document was issued; for a
    // meter that looks back (latest, time_weighted), also those of earlier periods, which change its level.
    const late = await lateActivity(sql, customerIds, period, latestDocument.issuedAt, looksBack);
    if (late.arrived > 0 || late.voided > 0)
      extraExceptions.push({
        kind: "late_usage",
        subject: latestDocument.id,
        message: `${late.arrived} event(s) arrived and ${late.voided} were voided after ${latestDocument.number} was issued`,
        details: { document: latestDocument, eventsArrived: late.arrived, eventsVoided: late.voided },
      });
  }
  return { ...inputs, result, extraExceptions };
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
    if (!fitsMoneyColumn(new Decimal(amount))) over.push({ what, amount });
  };
  result.lines.forEach((l, i) => check(`lines.${i} (${l.kind}${l.metric ? ` ${l.metric}` : ""})`, l.amount));
  check("total", result.total);
  check("alreadyBilled", result.alreadyBilled);
  check("delta", result.delta);
  if (over.length > 0)
    throw conflict(
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

/** Whom exceptions route to: the approvalOwner of the version in force at the end of the period. */
function ownerOf(input: RatingInput): string | null {
  const endMs = Date.parse(input.period.end);
  const inForce = [...input.versions].filter((v) => Date.parse(v.effectiveFrom) < endMs).sort((a, b) => b.version - a.version)[0];
  return inForce?.terms.approvalOwner ?? null;
}

/** Raises (or refreshes) every exception of the rating, the engine's and the database's. */
export async function recordExceptions(sql: Sql, contractId: string, rating: PeriodRating, calculationId: string | null): Promise<ExceptionView[]> {
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

/** A period [start, end) has ended once `now` reaches its end. */
export function periodHasEnded(period: PeriodRef, now: Date): boolean {
  return Date.parse(period.end) <= now.getTime();
}
