// Reading contracts: one with its versions, a page of them, and the locked read every write on a contract
// starts with. The views here are the API's shape of a contract and a version.
import type { Database } from "../../db/client.js";
import * as contracts from "../../db/queries/contracts.js";
import type { ContractRecord, VersionRecord } from "../../db/queries/contracts.js";
import type { Sql } from "../../db/sql.js";
import type { RoundingMode } from "../../domain/money.js";
import type { BillingPeriodUnit, PeriodContract } from "../../domain/periods.js";
import type { ContractTerms } from "../../domain/terms.js";
import { notFound } from "../../errors.js";

export interface ContractVersionView {
  version: number;
  effectiveFrom: string;
  signedAt: string;
  kind: string;
  reason: string;
  terms: ContractTerms;
}

/** The contract as the API shows it: the stored record with its instants as ISO 8601 UTC. */
export type ContractView = ContractRecord;

export type ContractWithVersions = ContractView & { versions: ContractVersionView[] };

const iso = (instant: string) => new Date(instant).toISOString();

export function toContractView(c: ContractRecord): ContractView {
  return {
    id: c.id,
    customerId: c.customerId,
    accountIds: c.accountIds,
    name: c.name,
    currency: c.currency,
    timezone: c.timezone,
    billingPeriod: c.billingPeriod,
    startDate: c.startDate,
    endDate: c.endDate,
    termStart: iso(c.termStart),
    termEnd: c.termEnd === null ? null : iso(c.termEnd),
    roundingMode: c.roundingMode,
    allowTrueDown: c.allowTrueDown,
    createdAt: iso(c.createdAt),
  };
}

export function toVersionView(v: VersionRecord): ContractVersionView {
  return {
    version: v.version,
    effectiveFrom: iso(v.effectiveFrom),
    signedAt: iso(v.signedAt),
    kind: v.kind,
    reason: v.reason,
    terms: v.terms as ContractTerms,
  };
}

/** The fields period arithmetic needs. */
export const periodContractOf = (v: Pick<ContractView, "startDate" | "endDate" | "timezone" | "billingPeriod">): PeriodContract => ({
  startDate: v.startDate,
  endDate: v.endDate,
  timezone: v.timezone,
  billingPeriod: v.billingPeriod,
});

/** The version in force at `ms`: the latest effective at or before it (by effective date, then version number). */
export function versionInForceAt<V extends { effectiveFrom: string; version: number }>(versions: readonly V[], ms: number): V | undefined {
  return [...versions]
    .filter((v) => Date.parse(v.effectiveFrom) <= ms)
    .sort((a, b) => Date.parse(a.effectiveFrom) - Date.parse(b.effectiveFrom) || a.version - b.version)
    .pop();
}

export async function getContract(db: Database, id: string): Promise<ContractWithVersions> {
  const c = await contracts.contractWithVersions(db.sql, id);
  if (!c) throw notFound("contract", id);
  return { ...toContractView(c), versions: c.versions.map(toVersionView) };
}

export async function listContracts(db: Database, q: { customerId?: string | undefined; limit: number; after?: string | undefined }): Promise<ContractView[]> {
  return (await contracts.listContracts(db.sql, q)).map(toContractView);
}

/** The contract, locked for the rest of the transaction (amendments, issues and billings on one contract queue up). */
export async function lockContract(sql: Sql, id: string): Promise<ContractRecord> {
  const contract = await contracts.lockContract(sql, id);
  if (!contract) throw notFound("contract", id);
  return contract;
}
