// Revenue schemas (DESIGN.md §7.2): the per-contract report.
import { z } from "zod";
import { Id } from "./common.js";

const Month = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "must be a month YYYY-MM");

export const RevenueQuery = z
  .object({
    from: Month.describe("First month, YYYY-MM, in the contract's timezone (included)"),
    to: Month.describe("Last month, YYYY-MM (included); at most 120 months after `from`"),
  })
  .strict();

const Money = z.string();

const Recognized = z.object({
  platformFee: Money.describe("Platform fees, ratable by the seconds of their segment in the month"),
  usage: Money.describe("Usage charges after discounts and caps (with the contract discount and cap lines), by the units used in the month"),
  commitment: Money.describe("Commitment shortfalls, in the period's last month"),
  breakage: Money.describe("Prepaid credit that expired unused, in the month of its expiresAt"),
  total: Money,
});

const CreditRow = z.object({
  grantId: z.string(),
  opening: Money,
  additions: Money.describe("The grant's amount, in the month of its grantedAt"),
  recognized: Money.describe("Credits applied to a period, placed in its months as the usage they paid for"),
  expired: Money.describe("In the month of expiresAt: the amount less the credits applied to every period starting before it"),
  closing: Money.describe("opening + additions − recognized − expired"),
});

export const RevenueMonth = z.object({
  month: z.string(),
  recognized: Recognized,
  basis: z.enum(["finalized", "unbilled"]).describe("`finalized`: every period of the month has an issued document, the source; `unbilled`: a fresh rating stands in"),
  billed: Money.describe("Invoices − credit memos and external billings, in the last month of the period they bill"),
  credits: z.array(CreditRow),
  catchUp: z
    .array(
      z.object({
        month: z.string().describe("The closed month the change belongs to"),
        component: z.enum(["platformFee", "usage", "commitment", "breakage", "billed"]),
        reason: z.enum(["delta_invoice", "credit_memo", "rerated"]).describe("`rerated`: an unbilled period's figures changed (usage, a void)"),
        documentId: z.string().nullable(),
        amount: z.string().describe("Negative for a credit memo; added to the component (and total), or to `billed`"),
      }),
    )
    .describe("In the first open month: every change since to a closed month"),
});

export const ContractRevenue = z
  .object({ contractId: Id, currency: z.string(), timezone: z.string(), months: z.array(RevenueMonth) })
  .meta({ id: "ContractRevenue" });

export const BookQuery = RevenueQuery.extend({ currency: z.string().regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as USD").optional() }).strict();

const Credits = z.object({ opening: Money, additions: Money, recognized: Money, expired: Money, closing: Money });

export const BookRevenue = z
  .object({
    books: z.array(
      z.object({
        currency: z.string(),
        months: z.array(z.object({ month: z.string(), recognized: Recognized, billed: Money, credits: Credits.describe("Summed over grants"), catchUp: z.array(z.unknown()) })),
      }),
    ),
  })
  .meta({ id: "BookRevenue" });

export const CloseBody = z
  .object({ month: Month.describe("Closes this month and every earlier one, book-wide"), note: z.string().min(1).max(2000) })
  .strict();

export const Close = z
  .object({
    month: z.string(),
    closedAt: z.string(),
    actor: z.string(),
    note: z.string(),
    unbilledPeriods: z.number().int().describe("Contract months closed while still unbilled (a fresh rating stood in)"),
    openExceptions: z.number().int().describe("Exceptions open when the books were closed"),
  })
  .meta({ id: "RevenueClose" });

export const ClosePage = z.object({ data: z.array(Close), nextCursor: z.string().nullable() });

export const JournalQuery = z
  .object({ month: Month, currency: z.string().regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as USD").optional() })
  .strict();

export const Journal = z
  .object({
    month: z.string(),
    lines: z.array(
      z.object({
        date: z.string().describe("The month's last day, YYYY-MM-DD"),
        account: z.string().describe("A REVENUE_ACCOUNTS name"),
        debit: Money,
        credit: Money,
        currency: z.string(),
        contractId: Id,
        documentId: z.string().nullable(),
        memo: z.string(),
      }),
    ),
    totals: z.array(
      z.object({ currency: z.string(), debit: Money, credit: Money, revenue: Money.describe("The revenue accounts' credits less debits: the month's recognized total") }),
    ),
  })
  .meta({ id: "RevenueJournal" });
