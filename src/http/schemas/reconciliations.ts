// Reconciliation schemas (DESIGN.md §7.1). The request body is validated by the domain in one pass
// (domain/reconciliation/request.ts, up to 200,000 rows); the schema here documents the same rules.
import { z } from "zod";
import { DISPOSITIONS, RECONCILIATION_CLASSES, RECONCILIATION_LIMITS } from "../../domain/index.js";
import { USAGE_RULES } from "../../domain/usage-rules.js";
import { Id, Instant, Pagination, page } from "./common.js";

const Quantity = z.string().regex(USAGE_RULES.quantity.pattern).describe("Non-negative decimal string fitting numeric(38,9), in the metered unit");
const CustomerId = z.string().min(1).max(USAGE_RULES.customerId.maxLength).describe("A contract's customer id or one of its account ids (an alias)");
const Metric = z.string().min(1).max(USAGE_RULES.metric.maxLength).regex(USAGE_RULES.metric.pattern);

const MeteredRow = z
  .object({ customerId: CustomerId, metric: Metric, quantity: Quantity })
  .strict()
  .meta({ id: "MeteredRow", description: "What the metering layer counted for a customer and metric in the window (rows of one key add up)" });

const InvoicedRow = z
  .object({
    customerId: CustomerId,
    metric: Metric,
    quantity: Quantity,
    amount: z.string().regex(RECONCILIATION_LIMITS.amount).optional().describe("What the billing system charged (kept for reference; the break's money is rated from the contract)"),
    invoiceRef: z.string().min(1).max(RECONCILIATION_LIMITS.invoiceRef.maxLength).optional(),
    invoicedAt: Instant.describe("When it was invoiced: events received after the key's latest invoicedAt are its `late` units"),
    kind: z.enum(["invoice", "credit_memo"]).optional().describe("Default `invoice`; a credit memo's units are subtracted"),
  })
  .strict()
  .meta({ id: "InvoicedRow" });

export const ReconciliationBody = z
  .object({
    periodStart: Instant,
    periodEnd: Instant.describe(`After periodStart, at most ${RECONCILIATION_LIMITS.maxWindowDays} days later; the window is [periodStart, periodEnd)`),
    unitConversions: z
      .record(Metric, z.string().regex(RECONCILIATION_LIMITS.conversion))
      .optional()
      .describe("metric → positive factor from the contract's unit to the metered unit; raw units and this service's documents are multiplied by it (default 1)"),
    metered: z.array(MeteredRow).max(RECONCILIATION_LIMITS.maxRows).describe(`Required (may be empty); at most ${RECONCILIATION_LIMITS.maxRows} rows`),
    invoiced: z
      .array(InvoicedRow)
      .max(RECONCILIATION_LIMITS.maxRows)
      .optional()
      .describe(`At most ${RECONCILIATION_LIMITS.maxRows} rows. Omitted: this service's own latest document of each period inside the window, whatever its kind`),
  })
  .strict();

const ClassCount = z.object({
  keys: z.number().int(),
  units: z.string().describe("Σ (raw − invoiced) over the class's keys, in metered units"),
  amount: z.string().nullable().describe("Σ of the breaks' money; null when the run's priced keys are in several currencies (see byCurrency)"),
});
const Counts = z.object(Object.fromEntries(RECONCILIATION_CLASSES.map((c) => [c, ClassCount])) as Record<(typeof RECONCILIATION_CLASSES)[number], typeof ClassCount>);

export const Reconciliation = z
  .object({
    id: Id,
    period: z.object({ start: z.string(), end: z.string() }),
    status: z.enum(["open", "signed_off"]),
    counts: Counts.describe("Per class: the keys, the units and the money (the signed-off statement)"),
    totals: z.object({
      keys: z.number().int(),
      breaks: z.number().int().describe("Keys that are not a match"),
      underBilled: z.string().nullable().describe("Σ of the under_bill breaks' amounts, positive"),
      overBilled: z.string().nullable().describe("Σ of the over_bill breaks' amounts, as a positive decimal"),
    }),
    currency: z.string().nullable().describe("The one currency of the priced breaks; null when there are several (or none): then read byCurrency"),
    byCurrency: z.record(z.string(), z.object({ counts: Counts, underBilled: z.string(), overBilled: z.string() })),
    unitConversions: z.record(z.string(), z.string()),
    invoicedSource: z.enum(["caller", "documents"]).describe("`documents`: `invoiced` was omitted and this service's own documents were used"),
    rows: z.object({ metered: z.number().int(), invoiced: z.number().int() }),
    previousRunId: Id.nullable().describe("The latest earlier run of the same window, whose timing keys the watch-list follows"),
    watchlist: z.object({ cleared: z.number().int(), persisting: z.number().int() }),
    signedOff: z.object({ actor: z.string(), note: z.string(), at: z.string() }).nullable(),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .meta({ id: "Reconciliation" });

export const ReconciliationPage = page(Reconciliation);

export const Break = z
  .object({
    id: Id,
    runId: Id,
    contractId: Id.nullable(),
    customerId: z.string(),
    metric: z.string(),
    class: z.enum(RECONCILIATION_CLASSES.filter((c) => c !== "match") as [string, ...string[]]),
    source: z.enum(["metering", "billing", "both"]).nullable().describe("Which side is wrong; null when the three agree (an unmapped key)"),
    owner: z.enum(["revops", "csm", "watchlist", "data", "none"]),
    raw: z.string(),
    metered: z.string(),
    invoiced: z.string().describe("Invoices − credit memos"),
    late: z.string().describe("Raw units of events received after the key's latest invoicedAt"),
    units: z.string().describe("raw − invoiced, in metered units"),
    amount: z.string().nullable().describe("The usage charge for raw − the one for invoiced, at the contract's terms, rounded; negative: an over-bill; null: unmapped"),
    currency: z.string().nullable(),
    previousClass: z.enum(["timing"]).nullable(),
    lastInvoicedAt: z.string().nullable(),
    disposition: z.object({ decision: z.enum(DISPOSITIONS), note: z.string(), actor: z.string(), at: z.string() }).nullable(),
  })
  .meta({ id: "ReconciliationBreak" });

export const BreakPage = page(Break);

export const RunParams = z.object({ id: Id }).strict();
export const BreakParams = z.object({ id: Id, breakId: Id }).strict();

export const RunListQuery = Pagination.extend({ periodStart: Instant.optional(), periodEnd: Instant.optional() }).strict();

const BreakFilters = {
  class: Break.shape.class.optional(),
  owner: Break.shape.owner.optional(),
};
export const BreakListQuery = Pagination.extend(BreakFilters).strict();
export const BreakCsvQuery = z.object(BreakFilters).strict();

export const ResolveBreakBody = z.object({ decision: z.enum(DISPOSITIONS), note: z.string().min(1).max(2000) }).strict();
export const SignOffBody = z.object({ note: z.string().min(1).max(2000) }).strict();
