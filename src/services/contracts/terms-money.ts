// Money precision of what a contract charges as such: shared by creating a contract and amending it.
import { Decimal, minorUnits } from "../../domain/money.js";
import type { ContractTerms } from "../../domain/terms.js";
import type { FieldIssue } from "../../errors.js";

/** Amounts a customer is charged as such (fees, commitments, caps, grants) must fit the currency's minor unit. */
export function checkTermsMoney(terms: ContractTerms, currency: string, at: string, issues: FieldIssue[]): void {
  const digits = minorUnits(currency);
  const check = (value: string | undefined | null, field: string) => {
    if (value == null) return;
    if (new Decimal(value).decimalPlaces() > digits) issues.push({ field: `${at}.${field}`, message: `${currency} amounts have at most ${digits} decimals` });
  };
  check(terms.platformFee?.amount, "platformFee.amount");
  check(terms.commitment?.amount, "commitment.amount");
  check(terms.cap?.amount, "cap.amount");
  check(terms.materialityThreshold, "materialityThreshold");
  terms.prepaidCredits.forEach((g, i) => check(g.amount, `prepaidCredits.${i}.amount`));
  terms.meters.forEach((m, i) => check(m.cap?.amount, `meters.${i}.cap.amount`));
}
