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
