// The three-way match of one key (customer + metric) and what it means (DESIGN.md §7.1, steps 3 to 5):
// raw events (R), the metering layer's units (M) and the invoiced units (I = invoices − credit memos), with
// the late units (L) beside them, all in the metered unit. The first rule that holds names the class; the
// class names who acts on it.
import { Decimal } from "../money.js";

/** In the order they are tried. Every class but `match` is a break. */
export const RECONCILIATION_CLASSES = ["match", "timing", "credit", "proration", "under_bill", "over_bill", "metering", "unmapped"] as const;
export type ReconciliationClass = (typeof RECONCILIATION_CLASSES)[number];

export type BreakSource = "metering" | "billing" | "both";
export type BreakOwner = "revops" | "csm" | "watchlist" | "data" | "none";

/** Step 5: who acts on a class. */
export const OWNER_OF: Record<ReconciliationClass, BreakOwner> = {
  match: "none",
  under_bill: "revops", // a catch-up charge decision
  over_bill: "csm", // a credit and a customer note
  timing: "watchlist", // late events: the next bill should carry them
  proration: "revops",
  credit: "none", // expected: a credit memo explains the difference
  metering: "data", // the bill is right, the metering layer is not
  unmapped: "revops", // usage or billing for a customer no contract names
};

/** Breaks that need no disposition before sign-off: what the watch-list follows, and expected credits. */
export const NO_DISPOSITION_NEEDED: ReadonlySet<ReconciliationClass> = new Set(["match", "timing", "credit"]);

export const DISPOSITIONS = ["catch_up_charge", "credit", "absorb", "no_action"] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

export interface KeyFigures {
  /** The customer maps to a contract in the window. */
  mapped: boolean;
  raw: Decimal;
  metered: Decimal;
  /** Invoiced units on invoices, and on credit memos (both non-negative). */
  invoices: Decimal;
  creditMemos: Decimal;
  /** Raw units of events received after the key's latest invoicedAt (0 when nothing is invoiced). */
  late: Decimal;
  /** A version of the contract takes effect strictly inside the window. */
  versionInside: boolean;
}

export interface Classification {
  class: ReconciliationClass;
  /** Which side is wrong; null for a match. */
  source: BreakSource | null;
  owner: BreakOwner;
}

export const invoicedOf = (k: Pick<KeyFigures, "invoices" | "creditMemos">): Decimal => k.invoices.minus(k.creditMemos);

/** Step 4: the first rule that holds, and the source. */
export function classify(k: KeyFigures): Classification {
  const cls = classOf(k);
  return { class: cls, source: sourceOf(k.raw, k.metered, invoicedOf(k)), owner: OWNER_OF[cls] };
}

function classOf(k: KeyFigures): ReconciliationClass {
  const r = k.raw, m = k.metered, i = invoicedOf(k);
  if (!k.mapped) return "unmapped";
  if (r.eq(m) && r.eq(i)) return "match";
  if (!k.late.isZero() && i.eq(r.minus(k.late))) return "timing";
  if (!i.eq(r) && k.invoices.eq(r) && !k.creditMemos.isZero()) return "credit";
  if (!i.eq(r) && k.versionInside) return "proration";
  if (i.lt(r)) return "under_bill";
  if (i.gt(r)) return "over_bill";
  return "metering"; // I = R, so M ≠ R
}

/** billing: M = R ≠ I; metering: M ≠ R and I equals M or R; both: all three differ; null: all agree. */
export function sourceOf(r: Decimal, m: Decimal, i: Decimal): BreakSource | null {
  if (m.eq(r)) return i.eq(r) ? null : "billing";
  return i.eq(m) || i.eq(r) ? "metering" : "both";
}
