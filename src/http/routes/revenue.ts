// Revenue routes (DESIGN.md §7.2): a contract's recognized revenue and deferred-revenue rollforward.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Clock } from "../../clock.js";
import type { Database } from "../../db/client.js";
import { z } from "zod";
import { bookRevenue } from "../../services/revenue/book-revenue.js";
import { contractRevenue } from "../../services/revenue/contract-revenue.js";
import { bookRevenueCsv, contractRevenueCsv } from "../../services/revenue/revenue-csv.js";
import { IdParams } from "../schemas/common.js";
import { READ, READ_ONE, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { BookQuery, BookRevenue, ContractRevenue, RevenueQuery } from "../schemas/revenue.js";

const badRange = invalid([{ path: "querystring.to", message: "must be at most 120 months after from" }], "the request querystring is not valid");

export const revenueRoutes: FastifyPluginAsyncZod<{ db: Database; clock: Clock }> = async (app, { db, clock }) => {
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
};
