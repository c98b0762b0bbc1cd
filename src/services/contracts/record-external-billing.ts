// Recording an amount billed elsewhere (e.g. the platform fee), counted in the already-billed amount of the
// billing period its span starts in. Unique per (contract, reference): a repeat with the same values returns
// the stored record, with other values it is a conflict.
import type { Database } from "../../db/client.js";
import { isUniqueViolation } from "../../db/errors.js";
import { newId } from "../../db/ids.js";
import { type ExternalBillingRow, alreadyBilled, externalBillingByReference, insertExternalBilling } from "../../db/queries/billing.js";
import { transaction } from "../../db/tx.js";
import { Decimal, fitsMoneyColumn, formatMoney, largestMoney, minorUnits } from "../../domain/money.js";
import { formatInstant, periodContaining } from "../../domain/periods.js";
import { type FieldIssue, conflict, invalid } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { lockContract, periodContractOf } from "./read.js";

export interface ExternalBillingInput {
  periodStart: string;
  periodEnd: string;
  amount: string;
  reference: string;
}

export interface ExternalBillingView {
  id: string;
  contractId: string;
  periodStart: string;
  periodEnd: string;
  amount: string;
  reference: string;
  createdAt: string;
}

function toBillingView(r: ExternalBillingRow, currency: string): ExternalBillingView {
  return {
    id: r.id,
    contractId: r.contract_id,
    periodStart: r.period_start.toISOString(),
    periodEnd: r.period_end.toISOString(),
    amount: formatMoney(new Decimal(r.amount), currency),
    reference: r.reference,
    createdAt: r.created_at.toISOString(),
  };
}

export async function recordExternalBilling(
  db: Database,
  actor: string,
  contractId: string,
  input: ExternalBillingInput,
): Promise<{ created: boolean; billing: ExternalBillingView }> {
  // A unique violation: a concurrent twin won the race; the retry reads it.
  return transaction(db, async (sql) => {
    const contract = await lockContract(sql, contractId);
    const start = Date.parse(input.periodStart);
    const end = Date.parse(input.periodEnd);
    const issues: FieldIssue[] = [];
    if (end <= start) issues.push({ field: "periodEnd", message: "must be after periodStart" });
    const period = periodContaining(periodContractOf(contract), formatInstant(start));
    if (!period) issues.push({ field: "periodStart", message: "must fall within the contract term" });
    else if (end > Date.parse(period.end))
      issues.push({ field: "periodEnd", message: `must not pass the end of the billing period it belongs to (${period.end})` });
    const digits = minorUnits(contract.currency);
    if (new Decimal(input.amount).decimalPlaces() > digits)
      issues.push({ field: "amount", message: `${contract.currency} amounts have at most ${digits} decimals` });
    if (issues.length || !period) throw invalid(issues);

    const existing = await externalBillingByReference(sql, contractId, input.reference);
    if (existing) {
      const same = existing.period_start.getTime() === start && existing.period_end.getTime() === end && new Decimal(existing.amount).equals(input.amount);
      if (!same) throw conflict(`reference "${input.reference}" is already recorded with other values`, { externalBillingId: existing.id });
      return { created: false, billing: toBillingView(existing, contract.currency) };
    }
    // Already billed for the period must stay storable (numeric(20,6)): refuse the billing that would pass it.
    const billed = new Decimal(await alreadyBilled(sql, contractId, period));
    const after = billed.plus(input.amount);
    if (!fitsMoneyColumn(after))
      throw conflict(
        `with this billing the period's already-billed amount would be ${formatMoney(after, contract.currency)}, more than the largest ` +
          `amount the service can hold (${largestMoney(contract.currency)} ${contract.currency})`,
        { alreadyBilled: formatMoney(billed, contract.currency), limit: largestMoney(contract.currency) },
      );
    const row = await insertExternalBilling(sql, {
      id: newId(),
      contractId,
      periodStart: new Date(start),
      periodEnd: new Date(end),
      amount: input.amount,
      reference: input.reference,
      createdBy: actor,
    });
    const billing = toBillingView(row, contract.currency);
    await appendAudit(sql, { actor, action: "external_billing.recorded", entityType: "contract", entityId: contractId, payload: { billing } });
    return { created: true, billing };
  }, { retryOn: isUniqueViolation });
}
