// What a reconciliation is asked to compare (DESIGN.md §7.1, step 1): the window, the unit conversions, the
// metering layer's rows and, optionally, the billing system's. Validated and normalised in one pass over up
// to 100,000 + 100,000 rows (a schema library costs more per row than the rest of the run); every bad path is
// named ("metered.3.quantity") and nothing is stored then. The HTTP schema documents the same rules.
import { type FieldIssue, ValidationError } from "../../errors.js";
import { Decimal } from "../money.js";
import { USAGE_RULES, checkId, normalizeQuantity, parseEventTimestamp } from "../usage-rules.js";

export const RECONCILIATION_LIMITS = {
  /**
   * The longest window: a year's close and a month of slack. Every break is rated over each billing period of
   * its contract in the window, so the window bounds a run's work.
   */
  maxWindowDays: 400,
  /** Rows of `metered` and, separately, of `invoiced` in one run. */
  maxRows: 100_000,
  invoiceRef: { maxLength: 200 },
  /** A conversion is a positive decimal: at most 20 integer and 18 fraction digits. */
  conversion: /^\d{1,20}(?:\.\d{1,18})?$/,
  /** An invoiced amount fits numeric(20,6) and may be negative (a billing system's adjustments). */
  amount: /^-?\d{1,14}(?:\.\d{1,6})?$/,
} as const;

export type InvoicedKind = "invoice" | "credit_memo";

export interface MeteredRow {
  customerId: string;
  metric: string;
  /** Normalised decimal (no leading or trailing zeros). */
  quantity: string;
}

export interface InvoicedRow extends MeteredRow {
  amount: string | null;
  invoiceRef: string | null;
  /** UTC, microseconds. */
  invoicedAt: string;
  invoicedAtMs: number;
  kind: InvoicedKind;
}

export interface ReconciliationRequest {
  periodStart: string;
  periodEnd: string;
  periodStartMs: number;
  periodEndMs: number;
  /** metric → factor from the contract's unit to the metered unit (absent: 1). */
  unitConversions: Record<string, string>;
  metered: MeteredRow[];
  /** null: take this service's own latest documents of each period inside the window. */
  invoiced: InvoicedRow[] | null;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const TOP_FIELDS = new Set(["periodStart", "periodEnd", "unitConversions", "metered", "invoiced"]);
const METERED_FIELDS = new Set(["customerId", "metric", "quantity"]);
const INVOICED_FIELDS = new Set(["customerId", "metric", "quantity", "amount", "invoiceRef", "invoicedAt", "kind"]);

/** The request normalised, or a ValidationError naming every bad path. */
export function parseReconciliationRequest(body: unknown): ReconciliationRequest {
  if (!isPlainObject(body)) throw new ValidationError([{ field: "", message: "must be an object { periodStart, periodEnd, metered, … }" }]);
  const issues: FieldIssue[] = [];
  for (const k of Object.keys(body)) if (!TOP_FIELDS.has(k)) issues.push({ field: k, message: "is not a field of a reconciliation" });

  const start = instantOf(body.periodStart, "periodStart", issues);
  const end = instantOf(body.periodEnd, "periodEnd", issues);
  if (start && end && end.ms <= start.ms) issues.push({ field: "periodEnd", message: "must be after periodStart" });
  else if (start && end && end.ms - start.ms > RECONCILIATION_LIMITS.maxWindowDays * 86_400_000)
    issues.push({ field: "periodEnd", message: `must be at most ${RECONCILIATION_LIMITS.maxWindowDays} days after periodStart (a year and a month)` });

  // No prototype: a metric may be named "constructor" or "__proto__" (the metric rule allows both).
  const unitConversions: Record<string, string> = Object.create(null) as Record<string, string>;
  if (body.unitConversions !== undefined) {
    if (!isPlainObject(body.unitConversions)) issues.push({ field: "unitConversions", message: "must be an object { metric: decimal string }" });
    else
      // In metric order, so that two requests that differ only in key order are one request (idempotency).
      for (const [metric, factor] of Object.entries(body.unitConversions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const field = `unitConversions.${metric}`;
        const badMetric = checkId(metric, USAGE_RULES.metric);
        if (badMetric) issues.push({ field, message: `the metric ${badMetric}` });
        else if (typeof factor !== "string" || !RECONCILIATION_LIMITS.conversion.test(factor) || new Decimal(factor).isZero())
          issues.push({ field, message: "must be a positive decimal string (at most 20 integer and 18 fraction digits)" });
        else unitConversions[metric] = new Decimal(factor).toFixed();
      }
  }

  const metered = rowsOf(body.metered, "metered", true, issues, (row, path) => meteredRow(row, path, METERED_FIELDS, issues));
  // A billing system's export repeats a few invoice dates thousands of times: each is parsed once.
  const instants = new Map<string, { iso: string; ms: number } | string>();
  const invoiced = rowsOf(body.invoiced, "invoiced", false, issues, (row, path) => invoicedRow(row, path, issues, instants));
  if (issues.length > 0 || !start || !end) throw new ValidationError(issues);
  return {
    periodStart: start.iso,
    periodEnd: end.iso,
    periodStartMs: start.ms,
    periodEndMs: end.ms,
    unitConversions,
    metered: metered ?? [],
    invoiced,
  };
}

function instantOf(value: unknown, field: string, issues: FieldIssue[], seen?: Map<string, { iso: string; ms: number } | string>): { iso: string; ms: number } | null {
  if (typeof value !== "string") {
    issues.push({ field, message: value === undefined ? "is required" : "must be an ISO 8601 instant string" });
    return null;
  }
  let parsed = seen?.get(value);
  if (parsed === undefined) {
    parsed = parseEventTimestamp(value);
    if (seen && seen.size < 10_000) seen.set(value, parsed);
  }
  if (typeof parsed === "string") {
    issues.push({ field, message: parsed });
    return null;
  }
  return parsed;
}

function rowsOf<T>(value: unknown, field: string, required: boolean, issues: FieldIssue[], parse: (row: unknown, path: string) => T | null): T[] | null {
  if (value === undefined && !required) return null;
  if (!Array.isArray(value)) {
    issues.push({ field, message: value === undefined ? "is required (it may be empty)" : "must be an array of rows" });
    return null;
  }
  if (value.length > RECONCILIATION_LIMITS.maxRows) {
    issues.push({ field, message: `must hold at most ${RECONCILIATION_LIMITS.maxRows} rows` });
    return null;
  }
  const rows: T[] = [];
  for (let i = 0; i < value.length; i++) {
    const row = parse(value[i], `${field}.${i}`);
    if (row !== null) rows.push(row);
  }
  return rows;
}

function meteredRow(row: unknown, path: string, fields: ReadonlySet<string>, issues: FieldIssue[]): MeteredRow | null {
  if (!isPlainObject(row)) {
    issues.push({ field: path, message: "must be an object { customerId, metric, quantity }" });
    return null;
  }
  const before = issues.length;
  for (const k of Object.keys(row)) if (!fields.has(k)) issues.push({ field: `${path}.${k}`, message: "is not a field of this row" });
  const badCustomer = checkId(row.customerId, USAGE_RULES.customerId);
  if (badCustomer) issues.push({ field: `${path}.customerId`, message: badCustomer });
  const badMetric = checkId(row.metric, USAGE_RULES.metric);
  if (badMetric) issues.push({ field: `${path}.metric`, message: badMetric });
  const quantity = typeof row.quantity === "string" ? normalizeQuantity(row.quantity) : null;
  if (quantity === null) issues.push({ field: `${path}.quantity`, message: USAGE_RULES.quantity.message });
  if (issues.length > before) return null;
  return { customerId: row.customerId as string, metric: row.metric as string, quantity: quantity! };
}

function invoicedRow(row: unknown, path: string, issues: FieldIssue[], instants: Map<string, { iso: string; ms: number } | string>): InvoicedRow | null {
  const before = issues.length;
  const base = meteredRow(row, path, INVOICED_FIELDS, issues);
  if (!isPlainObject(row)) return null;
  const { amount, invoiceRef, invoicedAt, kind = "invoice" } = row;
  if (amount !== undefined && (typeof amount !== "string" || !RECONCILIATION_LIMITS.amount.test(amount)))
    issues.push({ field: `${path}.amount`, message: "must be a decimal string fitting numeric(20,6) (never a JSON number)" });
  if (invoiceRef !== undefined && (typeof invoiceRef !== "string" || invoiceRef.length === 0 || invoiceRef.length > RECONCILIATION_LIMITS.invoiceRef.maxLength || invoiceRef.includes("\u0000")))
    issues.push({ field: `${path}.invoiceRef`, message: `must be 1 to ${RECONCILIATION_LIMITS.invoiceRef.maxLength} characters without NUL` });
  const at = instantOf(invoicedAt, `${path}.invoicedAt`, issues, instants);
  if (kind !== "invoice" && kind !== "credit_memo") issues.push({ field: `${path}.kind`, message: 'must be "invoice" or "credit_memo"' });
  if (issues.length > before || !base || !at) return null;
  return {
    ...base,
    // As sent (validated): the billing system's figure, kept for reference; the break's money is rated.
    amount: amount === undefined ? null : (amount as string),
    invoiceRef: (invoiceRef as string | undefined) ?? null,
    invoicedAt: at.iso,
    invoicedAtMs: at.ms,
    kind: kind as InvoicedKind,
  };
}
