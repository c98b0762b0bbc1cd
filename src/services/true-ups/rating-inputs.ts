// Everything the rating engine needs for one contract period, read from the database in one place: the
// contract, its versions, the usage sums and meter figures of exactly the windows the engine's plan names, what was already
// billed for the period (and of what it is made), the grants' balances, the credits of the period's latest
// document and the periods already issued.
import { type BilledSource, billingHistory } from "../../db/queries/billing.js";
import { type ContractRecord, versionsOf } from "../../db/queries/contracts.js";
import { measureUsage } from "../../db/queries/measures.js";
import { sumUsage } from "../../db/queries/usage.js";
import type { Sql } from "../../db/sql.js";
import { type ContractVersion, type CreditBalance, Decimal, type PeriodRef, type RatingContract, type RatingInput, latestGrantDefinitions, usageRequest } from "../../domain/index.js";

export interface IssuedDocumentRef {
  id: string;
  number: string;
  issuedAt: string;
}

export interface RatingInputs {
  input: RatingInput;
  /** The contract's customer id and account ids: whose usage is the contract's. */
  customerIds: string[];
  /** A meter of the period reads events before it (latest, time_weighted): late events there matter too. */
  looksBack: boolean;
  latestDocument: IssuedDocumentRef | null;
  /** What alreadyBilled is made of, one row per document or external billing: the backup CSV cites them. */
  billedBefore: BilledSource[];
}

export function ratingContractOf(c: ContractRecord): RatingContract {
  return {
    id: c.id,
    currency: c.currency,
    timezone: c.timezone,
    billingPeriod: c.billingPeriod,
    startDate: c.startDate,
    endDate: c.endDate,
    roundingMode: c.roundingMode,
    allowTrueDown: c.allowTrueDown,
  };
}

async function versionsFor(sql: Sql, contractId: string): Promise<ContractVersion[]> {
  return (await versionsOf(sql, contractId)).map((r) => ({
    version: r.version,
    effectiveFrom: r.effective_from.toISOString(),
    signedAt: r.signed_at.toISOString(),
    kind: r.kind as ContractVersion["kind"],
    reason: r.reason,
    terms: r.terms as ContractVersion["terms"],
  }));
}

/** A grant's balance (rule 10): its amount, from the latest version that defines it, minus the credits other periods used. */
export function creditBalancesOf(versions: ContractVersion[], usedElsewhere: { grant_id: string; used: string }[]): CreditBalance[] {
  const grantAmounts = new Map([...latestGrantDefinitions(versions)].map(([id, g]) => [id, g.amount]));
  const used = new Map(usedElsewhere.map((b) => [b.grant_id, new Decimal(b.used)]));
  return [...grantAmounts].map(([grantId, amount]) => ({
    grantId,
    available: Decimal.max(0, new Decimal(amount).minus(used.get(grantId) ?? 0)).toFixed(),
  }));
}

export async function loadRatingInputs(sql: Sql, contract: ContractRecord, period: PeriodRef): Promise<RatingInputs> {
  const ratingContract = ratingContractOf(contract);
  const versions = await versionsFor(sql, contract.id);
  const customerIds = [contract.customerId, ...contract.accountIds];
  // One after the other: a transaction is one connection, which runs one query at a time anyway.
  const request = usageRequest({ contract: ratingContract, versions, period });
  const usage = await sumUsage(sql, customerIds, request.windows);
  const measured = await measureUsage(sql, customerIds, request.measures);
  const history = await billingHistory(sql, contract.id, period);
  const input: RatingInput = {
    contract: ratingContract,
    versions,
    period,
    usage,
    measured,
    alreadyBilled: history.already_billed,
    creditBalances: creditBalancesOf(versions, history.credits_used_elsewhere),
    previousCreditsApplied: history.latest_credits.map((p) => ({ grantId: p.grant_id, amount: p.amount })),
    issuedPeriods: history.issued_starts.map((start, i) => ({ start: start.toISOString(), end: history.issued_ends[i]!.toISOString() })),
  };
  return {
    input,
    customerIds,
    looksBack: request.looksBack,
    latestDocument:
      history.latest_id === null ? null : { id: history.latest_id, number: history.latest_number!, issuedAt: history.latest_issued_at!.toISOString() },
    billedBefore: history.billed_sources,
  };
}
