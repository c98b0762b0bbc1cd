// Amending a contract: a new effective-dated version (amendment or ramp), in one transaction with its audit entry.
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { insertVersion, lastVersionNumber } from "../../db/queries/contracts.js";
import { enqueueAlertEvaluation } from "../../db/queries/jobs.js";
import { transaction } from "../../db/tx.js";
import { contractIdentifiers } from "../../db/queries/usage.js";
import { lockIdentifiersForTerms, refreshRollupDimensions } from "../usage/rollup-dimensions.js";
import type { ContractTerms } from "../../domain/terms.js";
import { type FieldIssue, invalid } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { versionAttestation } from "../audit/digests.js";
import { type ContractVersionView, lockContract, toVersionView } from "./read.js";
import { checkTermsMoney } from "./terms-money.js";

export interface AmendmentInput {
  effectiveFrom: string;
  signedAt?: string | undefined;
  kind?: "amendment" | "ramp" | undefined;
  reason: string;
  terms: ContractTerms;
}

export async function amendContract(db: Database, actor: string, contractId: string, input: AmendmentInput): Promise<ContractVersionView> {
  return transaction(db, async (sql) => {
    // The ids first (never change once written), then the contract row: ingestion's lock order.
    await lockIdentifiersForTerms(sql, await contractIdentifiers(sql, contractId));
    const contract = await lockContract(sql, contractId);
    const issues: FieldIssue[] = [];
    const at = Date.parse(input.effectiveFrom);
    if (at < Date.parse(contract.termStart) || (contract.termEnd !== null && at >= Date.parse(contract.termEnd)))
      issues.push({ field: "effectiveFrom", message: "must fall within the contract term" });
    checkTermsMoney(input.terms, contract.currency, "terms", issues);
    if (issues.length) throw invalid(issues);
    const version = await insertVersion(sql, {
      id: newId(),
      contractId,
      version: (await lastVersionNumber(sql, contractId)) + 1,
      effectiveFrom: new Date(at),
      signedAt: input.signedAt ? new Date(input.signedAt) : new Date(),
      kind: input.kind ?? "amendment",
      reason: input.reason,
      terms: input.terms,
      createdBy: actor,
    });
    await refreshRollupDimensions(sql, [contract.customerId, ...contract.accountIds]);
    const view = toVersionView(version);
    const attests = await versionAttestation(sql, contractId, version.version);
    await appendAudit(sql, { actor, action: "contract.amended", entityType: "contract", entityId: contractId, payload: { version: view, attests } });
    // The amendment re-baselines the alerts (and may add some): evaluated once this commits.
    await enqueueAlertEvaluation(sql, [contractId]);
    return view;
  });
}
