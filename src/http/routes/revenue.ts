// Revenue routes (DESIGN.md §7.2): a contract's recognized revenue and deferred-revenue rollforward.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Clock } from "../../clock.js";
import type { Database } from "../../db/client.js";
import { contractRevenue } from "../../services/revenue/contract-revenue.js";
import { IdParams } from "../schemas/common.js";
import { READ_ONE, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { ContractRevenue, RevenueQuery } from "../schemas/revenue.js";

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
};
