// Revenue routes (DESIGN.md §7.2): a contract's recognized revenue and deferred-revenue rollforward.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Clock } from "../../clock.js";
import type { Database } from "../../db/client.js";
import { z } from "zod";
import { bookRevenue } from "../../services/revenue/book-revenue.js";
import { closeBooks, listCloses } from "../../services/revenue/close-books.js";
import { revenueJournal } from "../../services/revenue/journal.js";
import type { Accounts } from "../../domain/index.js";
import { contractRevenue } from "../../services/revenue/contract-revenue.js";
import { bookRevenueCsv, contractRevenueCsv, journalCsv } from "../../services/revenue/revenue-csv.js";
import { IdParams } from "../schemas/common.js";
import { actorOf } from "../plugins/auth.js";
import { Pagination, decodeCursor, pageOf } from "../schemas/common.js";
import { READ, READ_ONE, WRITE, forbiddenUnless, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { BookQuery, BookRevenue, Close, CloseBody, ClosePage, ContractRevenue, Journal, JournalQuery, RevenueQuery } from "../schemas/revenue.js";
import { IdempotencyHeaders } from "../schemas/true-ups.js";

const badRange = invalid([{ path: "querystring.to", message: "must be at most 120 months after from" }], "the request querystring is not valid");

export const revenueRoutes: FastifyPluginAsyncZod<{ db: Database; clock: Clock; accounts: Accounts }> = async (app, { db, clock, accounts }) => {
  app.get(
    "/contracts/:id/revenue",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getContractRevenue",
        tags: ["revenue"],
        summary: "Recognized revenue and the deferred-revenue rollforward of a contract, per month",
        description:
          "Every month of [from, to] inside the contract's term, in its timezone (docs/revenue.md): platform fees by time, usage by the " +
          "units used in each month, commitment shortfalls in the period's last month, breakage in the month a grant expires, each " +
          "spread with cumulative rounding so a period's months add up to its lines to the cent; `basis` `finalized` (the period's " +
          "latest issued document) or `unbilled` (a fresh rating); `billed`; and per prepaid grant the rollforward " +
          "`{ opening, additions, recognized, expired, closing }`.",
        params: IdParams,
        querystring: RevenueQuery,
        response: {
          200: ContractRevenue.meta({ description: "The months of the range" }),
          ...problems(READ_ONE, {
            400: invalid([{ path: "querystring.to", message: "must be at most 120 months after from" }], "the request querystring is not valid"),
            404: notFoundIn("contract"),
          }),
        },
      },
    },
    async (request) => contractRevenue(db, request.params.id, request.query, clock.now()),
  );

  app.get(
    "/contracts/:id/revenue.csv",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getContractRevenueCsv",
        tags: ["revenue"],
        summary: "The contract's revenue report as CSV: one row per month, credits summed over grants",
        params: IdParams,
        querystring: RevenueQuery,
        produces: ["text/csv"],
        response: {
          200: z.string().meta({ description: "text/csv (UTF-8), columns named as the JSON (`recognized.usage`, `credits.closing`, …)" }),
          ...problems(READ_ONE, { 400: badRange, 404: notFoundIn("contract") }),
        },
      },
    },
    async (request, reply) =>
      reply.type("text/csv; charset=utf-8").send(contractRevenueCsv(await contractRevenue(db, request.params.id, request.query, clock.now()))),
  );

  app.get(
    "/revenue",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getBookRevenue",
        tags: ["revenue"],
        summary: "The whole book's recognized revenue and rollforward, per month and currency",
        description: "Every contract's months (each in its own timezone) summed per month and currency; only `currency` when given.",
        querystring: BookQuery,
        response: { 200: BookRevenue.meta({ description: "One book per currency" }), ...problems(READ, { 400: badRange }) },
      },
    },
    async (request) => bookRevenue(db, request.query, clock.now()),
  );

  app.get(
    "/revenue.csv",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getBookRevenueCsv",
        tags: ["revenue"],
        summary: "The book-wide revenue report as CSV: one row per currency and month",
        querystring: BookQuery,
        produces: ["text/csv"],
        response: { 200: z.string().meta({ description: "text/csv (UTF-8), columns named as the JSON" }), ...problems(READ, { 400: badRange }) },
      },
    },
    async (request, reply) => reply.type("text/csv; charset=utf-8").send(bookRevenueCsv(await bookRevenue(db, request.query, clock.now()))),
  );

  app.post(
    "/revenue/closes",
    {
      config: { role: "approver" },
      schema: {
        operationId: "closeRevenueMonth",
        tags: ["revenue"],
        summary: "Close a month of the books, and every earlier one, book-wide",
        description:
          "Each contract's months up to `month` (in its own timezone) are stored as they stand and never change; a later change to " +
          "one (a delta invoice for late usage, a credit memo, a void) shows in the first open month's `catchUp`. A month that has " +
          "not ended everywhere (before the next month's 1st, 12:00 UTC) → 409 `period_open`; a month at or before the latest " +
          "closed one → 409 `conflict` (months cannot be reopened). Open exceptions and unbilled periods do not block a close; they " +
          "are counted in its answer. Audited; `Idempotency-Key` replays the first answer.",
        headers: IdempotencyHeaders,
        body: CloseBody.meta({ examples: [{ month: "2026-10", note: "October close, reviewed with the controller" }] }),
        response: {
          201: Close.meta({ description: "The close" }),
          ...problems([...WRITE, 409], {
            403: forbiddenUnless("approver"),
            409: {
              description: "`period_open`: the month has not ended everywhere; `conflict`: the books are closed through this month or a later one; `idempotency_conflict`",
              examples: [{ summary: "Already closed", code: "conflict", detail: "the books are closed through 2026-10: months cannot be reopened or closed twice" }],
            },
          }),
        },
      },
    },
    async (request, reply) => {
      const { status, close, replayed } = await closeBooks(db, actorOf(request), request.body, request.headers["idempotency-key"], clock.now());
      if (replayed) reply.header("Idempotent-Replayed", "true");
      return reply.code(status).send(close);
    },
  );

  app.get(
    "/revenue/closes",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listRevenueCloses",
        tags: ["revenue"],
        summary: "The closes of the books, newest first",
        querystring: Pagination.strict(),
        response: { 200: ClosePage.meta({ description: "One page of closes" }), ...problems(READ) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const before = decodeCursor(cursor, (s) => /^\d{4}-\d{2}$/.test(s));
      return pageOf(await listCloses(db, { before, limit: limit + 1 }), limit, (c) => c.month);
    },
  );

  const journalDescription =
    "Every contract's month of the book as balanced double-entry lines (docs/revenue.md): billed amounts from the receivable to " +
    "deferred revenue, recognition from deferred revenue (or, in a month still unbilled, the unbilled receivable) to the revenue " +
    "accounts, breakage, and each catch-up of a closed month on its own lines. Account names from REVENUE_ACCOUNTS. Debits equal " +
    "credits to the cent, per currency; the revenue accounts' net credit is the month's recognized total.";
  app.get(
    "/revenue/journal",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getRevenueJournal",
        tags: ["revenue"],
        summary: "Journal entries of a month for an ERP",
        description: journalDescription,
        querystring: JournalQuery,
        response: { 200: Journal.meta({ description: "The month's lines and their totals" }), ...problems(READ) },
      },
    },
    async (request) => revenueJournal(db, request.query, accounts, clock.now()),
  );

  app.get(
    "/revenue/journal.csv",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getRevenueJournalCsv",
        tags: ["revenue"],
        summary: "Journal entries of a month as CSV",
        description: journalDescription,
        querystring: JournalQuery,
        produces: ["text/csv"],
        response: { 200: z.string().meta({ description: "text/csv: date, account, debit, credit, currency, contractId, documentId, memo" }), ...problems(READ) },
      },
    },
    async (request, reply) => reply.type("text/csv; charset=utf-8").send(journalCsv(await revenueJournal(db, request.query, accounts, clock.now()))),
  );
};
