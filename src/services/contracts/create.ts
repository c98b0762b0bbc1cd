// Creating a contract with its version 1, in one transaction ending with its audit entry.
import type { Database } from "../../db/client.js";
import { isExclusionViolation } from "../../db/errors.js";
import { newId } from "../../db/ids.js";
import { insertContract, insertIdentifiers, insertVersion, overlappingIdentifiers } from "../../db/queries/contracts.js";
import { transaction } from "../../db/tx.js";
import { lockIdentifiersForTerms, refreshRollupDimensions } from "../usage/rollup-dimensions.js";
import { isKnownCurrency } from "../../domain/money.js";
import { contractTerm, isValidTimezone } from "../../domain/periods.js";
import type { ContractTerms } from "../../domain/terms.js";
import { type FieldIssue, conflict, invalid } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { versionAttestation } from "../audit/digests.js";
import { type ContractWithVersions, toContractView, toVersionView } from "./read.js";
import { checkTermsMoney } from "./terms-money.js";

export interface CreateContractInput {
  customerId: string;
  accountIds?: string[] | undefined;
  name: string;
  currency: string;
  timezone?: string | undefined;
  billingPeriod: "monthly" | "quarterly" | "annual";
  startDate: string;
  endDate?: string | null | undefined;
  roundingMode?: "half_up" | "half_even" | undefined;
  allowTrueDown?: boolean | undefined;
  signedAt?: string | undefined;
  terms: ContractTerms;
}

/** Checks that need more than the request schema: currency, timezone, dates, identifiers, money precision. */
function checkContract(input: CreateContractInput): void {
  const issues: FieldIssue[] = [];
  if (!isKnownCurrency(input.currency)) issues.push({ field: "currency", message: `"${input.currency}" is not an active ISO 4217 currency code` });
  const tz = input.timezone ?? "UTC";
  if (!isValidTimezone(tz)) issues.push({ field: "timezone", message: `"${tz}" is not an IANA time zone` });
  if (input.endDate && input.endDate < input.startDate) issues.push({ field: "endDate", message: "must not be before startDate" });
  const ids = [input.customerId, ...(input.accountIds ?? [])];
  ids.forEach((id, i) => {
    if (ids.indexOf(id) !== i) issues.push({ field: i === 0 ? "customerId" : `accountIds.${i - 1}`, message: `"${id}" is listed twice` });
  });
  if (issues.length === 0) checkTermsMoney(input.terms, input.currency, "terms", issues);
  if (issues.length) throw invalid(issues);
}

export async function createContract(db: Database, actor: string, input: CreateContractInput): Promise<ContractWithVersions> {
  checkContract(input);
  const timezone = input.timezone ?? "UTC";
  const endDate = input.endDate ?? null;
  const term = contractTerm({ startDate: input.startDate, endDate, timezone, billingPeriod: input.billingPeriod });
  const termStart = new Date(term.startMs);
  const termEnd = term.endMs === null ? null : new Date(term.endMs);
  const identifiers = [input.customerId, ...(input.accountIds ?? [])];
  const id = newId();
  try {
    return await transaction(db, async (sql) => {
      await lockIdentifiersForTerms(sql, identifiers);
      const contract = await insertContract(sql, {
        id,
        customerId: input.customerId,
        accountIds: input.accountIds ?? [],
        name: input.name,
        currency: input.currency,
        timezone,
        billingPeriod: input.billingPeriod,
        startDate: input.startDate,
        endDate,
        termStart,
        termEnd,
        roundingMode: input.roundingMode ?? "half_up",
        allowTrueDown: input.allowTrueDown ?? false,
        createdBy: actor,
      });
      const version = await insertVersion(sql, {
        id: newId(),
        contractId: id,
        version: 1,
        effectiveFrom: termStart,
        signedAt: input.signedAt ? new Date(input.signedAt) : new Date(),
        kind: "original",
        reason: "original terms",
        terms: input.terms,
        createdBy: actor,
      });
      await insertIdentifiers(sql, id, identifiers, termStart, termEnd);
      await refreshRollupDimensions(sql, identifiers);
      const view = { ...toContractView(contract), versions: [toVersionView(version)] };
      // attests: the digest of version 1 and the contract's header as stored, which a deep verify recomputes.
      const attests = await versionAttestation(sql, id, 1);
      await appendAudit(sql, { actor, action: "contract.created", entityType: "contract", entityId: id, payload: { contract: view, attests } });
      return view;
    });
  } catch (e) {
    if (isExclusionViolation(e)) {
      const taken = await overlappingIdentifiers(db.sql, identifiers, termStart, termEnd);
      throw conflict(`${taken.map((t) => `"${t.identifier}"`).join(", ") || "an identifier"} already maps to an active contract in this term`, {
        conflicts: taken,
      });
    }
    throw e;
  }
}
