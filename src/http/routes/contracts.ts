// Contract routes: parse, call one use case, shape the response.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { amendContract, createContract, getContract, listContracts, recordExternalBilling } from "../../services/contracts.js";
import { actorOf } from "../plugins/auth.js";
import { IdParams, Pagination, decodeCursor, pageOf, problemResponses } from "../schemas/common.js";
import {
  AmendmentBody,
  Contract,
  ContractPage,
  ContractVersion,
  CreateContractBody,
  ExternalBilling,
  ExternalBillingBody,
  amendmentExample,
  contractExample,
  contractPageExample,
  contractResponseExample,
  externalBillingExample,
  externalBillingResponseExample,
  versionResponseExample,
} from "../schemas/contracts.js";

export const contractRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.post(
    "/contracts",
    {
      config: { role: "writer" },
      schema: {
        tags: ["contracts"],
        summary: "Create a contract with version 1",
        description:
          "Creates the contract and its original version, effective at local midnight of startDate in the contract's timezone. " +
          "A customer or account id may map to one contract at a time: an overlapping term for any of them is a 409. " +
          "Amounts charged as such (fees, commitments, caps, grants, thresholds) may not have more decimals than the currency's minor unit. " +
          "startDate, endDate and signedAt must be in the years 1970 to 2199 (an evergreen contract has endDate null, not 9999-12-31). " +
          "Text anywhere in a request (ids, names, terms, notes, query strings) must not contain NUL characters or unpaired UTF-16 " +
          "surrogates (→ 400): PostgreSQL cannot store the first and UTF-8 would silently replace the second.",
        body: CreateContractBody.meta({ examples: [contractExample] }),
        response: { 201: Contract.meta({ examples: [contractResponseExample] }), ...problemResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await createContract(db, actorOf(request), request.body)),
  );

  app.get(
    "/contracts",
    {
      config: { role: "reader" },
      schema: {
        tags: ["contracts"],
        summary: "List contracts, oldest first",
        description: "`customerId` matches the contract's customer id or any of its account ids.",
        querystring: Pagination.extend({ customerId: z.string().min(1).max(200).optional() }).strict(),
        response: { 200: ContractPage.meta({ examples: [contractPageExample] }), ...problemResponses },
      },
    },
    async (request) => {
      const { limit, cursor, customerId } = request.query;
      const after = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listContracts(db, { customerId, after, limit: limit + 1 }), limit, (c) => c.id);
    },
  );

  app.get(
    "/contracts/:id",
    {
      config: { role: "reader" },
      schema: {
        tags: ["contracts"],
        summary: "A contract with all its versions",
        params: IdParams,
        response: { 200: Contract.meta({ examples: [contractResponseExample] }), ...problemResponses },
      },
      // The hottest read: its view is built field by field from typed SQL (and tested against the create
      // response), so it skips the zod re-validation of the response; the schema still documents it.
      serializerCompiler: () => (data) => JSON.stringify(data),
    },
    async (request) => getContract(db, request.params.id),
  );

  app.post(
    "/contracts/:id/amendments",
    {
      config: { role: "writer" },
      schema: {
        tags: ["contracts"],
        summary: "Add a version (amendment or ramp) effective from an instant",
        description:
          "The terms fully replace the previous version's from `effectiveFrom` on; periods that straddle it are split into " +
          "prorated segments. Two versions sharing an effectiveFrom, or a version taking effect inside a period that already has an " +
          "issued document, are accepted but raise a blocking `amendment_conflict` on the next preview.",
        params: IdParams,
        body: AmendmentBody.meta({ examples: [amendmentExample] }),
        response: { 201: ContractVersion.meta({ examples: [versionResponseExample] }), ...problemResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await amendContract(db, actorOf(request), request.params.id, request.body)),
  );

  app.post(
    "/contracts/:id/external-billings",
    {
      config: { role: "writer" },
      schema: {
        tags: ["contracts"],
        summary: "Record an amount billed elsewhere (e.g. the platform fee)",
        description:
          "Counts toward `alreadyBilled` of the billing period containing `periodStart`; the span must lie within that period. " +
          "`reference` is unique per contract: repeating it with the same values returns the stored record (200), with other values → 409. " +
          "A billing that would take the period's already-billed amount (documents plus external billings) past the largest storable " +
          "amount (99,999,999,999,999.99, numeric(20,6)) → 409 `conflict`; nothing is stored. An amount of 0 is a valid record.",
        params: IdParams,
        body: ExternalBillingBody.meta({ examples: [externalBillingExample] }),
        response: {
          200: ExternalBilling.meta({ description: "Already recorded with the same values", examples: [externalBillingResponseExample] }),
          201: ExternalBilling.meta({ description: "Recorded", examples: [externalBillingResponseExample] }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const { created, billing } = await recordExternalBilling(db, actorOf(request), request.params.id, request.body);
      return reply.code(created ? 201 : 200).send(billing);
    },
  );
};
