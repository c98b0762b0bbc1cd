// Schemas of the document routes: invoices and credit memos.
import { z } from "zod";
import { Id, Period, page } from "./common.js";

/** A grant's use by a period, and the balance it leaves (absent on documents issued before balances were recorded). */
export const CreditApplied = z.object({
  grantId: z.string(),
  amount: z.string(),
  balanceAfter: z.string().optional().describe("The grant's balance once this use is recorded: what the next period can draw"),
});

export const DocumentLine = z.object({
  lineNo: z.number().int(),
  kind: z.string(),
  meterId: z.string().optional().describe("usage lines: the meter's id (its metric unless the contract names one)"),
  metric: z.string().nullable(),
  amount: z.string(),
  explanation: z.record(z.string(), z.unknown()),
});

export const Document = z.object({
  id: Id,
  number: z.string().describe("INV-000001 / CM-000001, gapless per kind"),
  kind: z.enum(["invoice", "credit_memo"]),
  contractId: Id,
  period: Period,
  currency: z.string(),
  lines: z.array(DocumentLine),
  subtotal: z.string().describe("The period's full total"),
  alreadyBilled: z.string(),
  amount: z.string().describe("|delta|: due on an invoice, credited on a credit memo"),
  creditsApplied: z.array(CreditApplied),
  calculationId: Id,
  inputsHash: z.string(),
  issuedAt: z.string(),
  issuedBy: z.string(),
});

export const DocumentPage = page(Document);

/** A document's line: the document's id and the line's `lineNo` (1, 2, … as in `lines[].lineNo`). */
export const DocumentLineParams = z
  .object({
    id: Id,
    lineNo: z
      .string()
      .regex(/^[1-9]\d{0,8}$/, "must be a line number: 1, 2, … as in the document's lines[].lineNo")
      .transform(Number)
      .describe("The line's `lineNo` in the document"),
  })
  .strict();

/** One event behind a usage line, as the document saw it. */
export const LineEvent = z.object({
  eventId: z.string(),
  customerId: z.string().describe("The contract's customer id or one of its account ids"),
  metric: z.string(),
  quantity: z.string().describe("Decimal string, as stored (no trailing zeros)"),
  timestamp: z.string().describe("The event's instant as stored and measured: UTC, six fraction digits"),
  properties: z.record(z.string(), z.unknown()).nullable(),
  receivedAt: z.string().describe("When the service stored it (UTC, six fraction digits): at or before the document's issuedAt"),
  carriedOver: z
    .boolean()
    .describe("`latest` and `time_weighted` lines: the last event before the segment, which set the level the segment starts with"),
  voidedAfterIssue: z.boolean().describe("Voided after the document was issued: counted in the line as issued, no longer in a new preview"),
});

export const LineEventPage = page(LineEvent);
