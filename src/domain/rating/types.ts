// The rating engine's input and output. Money and quantities are decimal strings on both sides.
import { DomainError } from "../../errors.js";
import type { RatingExceptionKind } from "../exception-kinds.js";
import type { Aggregation, ContractTerms } from "../terms.js";
import type { Filter, Measure, MeasuredUsage } from "./measures.js";
import type { RoundingMode } from "../money.js";
import type { BillingPeriodUnit } from "../periods.js";

export const ENGINE_VERSION = "rating-engine/1.0.0";

export interface RatingContract {
  id: string;
  currency: string;
  timezone: string;
  billingPeriod: BillingPeriodUnit;
  /** Calendar date (YYYY-MM-DD) in `timezone`: the term starts at its local midnight. */
  startDate: string;
  /** Last day covered (inclusive), or null for an evergreen contract. */
  endDate: string | null;
  roundingMode: RoundingMode;
  allowTrueDown: boolean;
}

export type VersionKind = "original" | "amendment" | "ramp";

export interface ContractVersion {
  version: number;
  /** ISO 8601 instant from which these terms are in force (until the next version's effectiveFrom). */
  effectiveFrom: string;
  signedAt?: string | null;
  kind: VersionKind;
  reason?: string | null;
  /** Validated and defaulted terms (ContractTerms schema output). */
  terms: ContractTerms;
}

/** A half-open interval of instants [start, end). */
export interface PeriodRef {
  start: string;
  end: string;
}

/** A half-open window [from, to) of instants whose usage the caller sums. */
export interface UsageWindow {
  from: string;
  to: string;
}

/** The sum of one metric's non-voided usage in one window. A window/metric not listed has usage 0. */
export interface UsageAggregate {
  from: string;
  to: string;
  metric: string;
  quantity: string;
}

export interface CreditBalance {
  grantId: string;
  /** Grant amount minus the credits recorded by the latest issued document of every other period. */
  available: string;
}

export interface CreditAmount {
  grantId: string;
  amount: string;
  /** The grant's balance once this use is recorded (results only; absent in inputs and older documents). */
  balanceAfter?: string;
}

export interface RatingInput {
  contract: RatingContract;
  versions: ContractVersion[];
  /** Must be a billing period of the contract (as returned by the periods module). */
  period: PeriodRef;
  /** Per-metric sums for the windows of usageRequest(); rows for other windows are ignored. */
  usage: UsageAggregate[];
  /** The figures of usageRequest().measures (meters other than unfiltered sums); absent figures are 0. */
  measured?: MeasuredUsage[];
  /** Issued invoices minus credit memos plus external billings for this period. */
  alreadyBilled: string;
  /** Balances of grants; a grant absent from this list has its full amount available. */
  creditBalances: CreditBalance[];
  /** Credits recorded by the period's latest issued document ([] if none). */
  previousCreditsApplied: CreditAmount[];
  /** Periods with an issued document (only those overlapping `period` matter). */
  issuedPeriods: PeriodRef[];
}

/** What the engine will read: per-metric sums of `windows`, and the figure of each measure over its window. */
export interface UsageRequest {
  windows: UsageWindow[];
  measures: Array<{ from: string; to: string; measure: Measure }>;
  /** Some measure looks back before its window (latest, time_weighted): events before the period count too. */
  looksBack: boolean;
}

export interface UsageWindowsInput {
  contract: RatingContract;
  versions: ContractVersion[];
  period: PeriodRef;
}

export interface Segment {
  from: string;
  to: string;
  /** The version in force, or null for a part of the period with no version (missing_terms). */
  version: number | null;
  /** Segment length ÷ nominal period length, full precision. */
  fraction: string;
}

export interface LineSegment {
  from: string;
  to: string;
  version: number;
}

export type LineKind =
  | "platform_fee"
  | "usage"
  | "contract_discount"
  | "contract_cap"
  | "commitment_shortfall"
  | "credit_applied";

export interface TierExplanation {
  tier: number;
  /** Scaled bounds: units above `from` up to and including `upTo` (null: no upper bound). */
  from: string;
  upTo: string | null;
  unitPrice: string;
  flatFee: string;
  units: string;
  amount: string;
}

export interface Line {
  kind: LineKind;
  /** usage lines: the meter's id (its metric unless it names one). */
  meterId?: string;
  metric?: string;
  /** usage lines: how the meter aggregates its events, and which events it counts (null: all of its metric). */
  aggregation?: Aggregation;
  filter?: Filter | null;
  unit?: string;
  /** The segment the line belongs to; null for period-level lines (commitment_shortfall, credit_applied). */
  segment: LineSegment | null;
  /** usage lines: units used in the segment; null on other lines. */
  usage: string | null;
  /** usage lines: included units × fraction. */
  included: string | null;
  /** usage lines: max(0, usage − included). */
  billable: string | null;
  pricingModel?: "per_unit" | "graduated" | "volume" | "package";
  unitPrice?: string;
  tiers?: TierExplanation[];
  packageSize?: string;
  packagePrice?: string;
  packages?: string;
  /** The segment's (or, for a shortfall, the period's) fraction of the nominal period; null for credits. */
  fraction: string | null;
  /** usage lines: charge before the meter discount and cap (unrounded). */
  gross?: string;
  /** usage lines: meter discount (unrounded, positive). */
  discount?: string;
  /** usage lines: amount removed by the meter cap (unrounded, positive). */
  capped?: string;
  /** The basis of a percentage or a cap: discountPercent, cap (scaled), the sum it applies to. */
  discountPercent?: string;
  cap?: string;
  base?: string;
  /** commitment_shortfall: the commitment, the usage charges compared with it, and its scope. */
  commitment?: string;
  usageCharges?: string;
  scope?: "period" | "term";
  /** commitment_shortfall of a term commitment: each period's usage charges. */
  periods?: Array<{ start: string; end: string; usageCharges: string }>;
  /** period commitment_shortfall: the commitment of each segment, amount × fraction (what the sum is made of). */
  commitmentParts?: Array<{ segment: LineSegment; amount: string; fraction: string; commitment: string }>;
  /** credit_applied: the grant, its available balance before this period's use, the balance after it, its expiry. */
  grantId?: string;
  available?: string;
  balanceAfter?: string;
  expiresAt?: string;
  /** The line's amount before rounding (full precision). */
  unroundedAmount: string;
  /** Rounded to the currency's minor unit with the contract's rounding mode. */
  amount: string;
  description: string;
}

export interface RatingException {
  kind: RatingExceptionKind;
  /** isBlocking(kind); the stored calculation result carries it. */
  blocking: boolean;
  /** A stable key within the calculation: a metric, a version number, a window; "" when none. */
  subject: string;
  message: string;
  details: Record<string, unknown>;
}

export type Action = "invoice" | "credit_memo" | "none";

export interface RatingResult {
  engineVersion: string;
  contractId: string;
  period: PeriodRef;
  currency: string;
  segments: Segment[];
  lines: Line[];
  total: string;
  alreadyBilled: string;
  delta: string;
  action: Action;
  creditsApplied: CreditAmount[];
  exceptions: RatingException[];
  /** sha256 of the normalized input and ENGINE_VERSION (see inputsHash). */
  inputsHash: string;
}

/**
 * Invalid engine input: a caller bug or bad data, never a rating outcome. `path` is in the engine's input
 * ("creditBalances[0].available"), not a request's, so it is answered as it is (a 400, validation_failed).
 */
export class RatingInputError extends DomainError {
  override name = "RatingInputError";
  constructor(
    readonly path: string,
    message: string,
  ) {
    super("validation_failed", `${path}: ${message}`, { errors: [{ path, message: `${path}: ${message}` }] });
  }
}
