// Contract routes: parse, call one use case, shape the response.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { amendContract } from "../../services/contracts/amend.js";
import { createContract } from "../../services/contracts/create.js";
import { getContract, listContracts } from "../../services/contracts/read.js";
import { recordExternalBilling } from "../../services/contracts/record-external-billing.js";
import { actorOf } from "../plugins/auth.js";
import { IdParams, Pagination, decodeCursor, pageOf } from "../schemas/common.js";
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
import { READ, READ_ONE, WRITE, forbiddenUnless, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";

const contractNotFound = notFoundIn("contract");

export const contractRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.post(
    "/contracts",
    {
      config: { role: "writer" },
      schema: {
        operationId: "createContract",
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
        response: {
          201: Contract.meta({ description: "Created: the contract with its version 1", examples: [contractResponseExample] }),
          ...problems([...WRITE, 409], {
            400: invalid([{ path: "body.terms.meters.0.pricing.unitPrice", message: "must be a non-negative decimal string with at most 14 integer and 12 fraction digits" }]),
            403: forbiddenUnless("writer"),
            409: {
              description: "`conflict`: the customer id or an account id already maps to an active contract in an overlapping term",
              examples: [
                {
                  summary: "Identifier already mapped",
                  code: "conflict",
                  detail: '"acme-eu" already maps to an active contract in this term',
                  extra: { conflicts: [{ identifier: "acme-eu", contractId: "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b" }] },
                },
              ],
            },
          }),
        },
      },
    },
    async (request, reply) => reply.code(201).send(await createContract(db, actorOf(request), request.body)),
  );

  app.get(
    "/contracts",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listContracts",
        tags: ["contracts"],
        summary: "List contracts, oldest first",
        description: "`customerId` matches the contract's customer id or any of its account ids.",
        querystring: Pagination.extend({ customerId: z.string().min(1).max(200).optional() }).strict(),
        response: {
          200: ContractPage.meta({ description: "One page of contracts (without their versions)", examples: [contractPageExample] }),
          ...problems(READ, { 400: invalid([{ path: "querystring.limit", message: "must be a whole number from 1 to 500" }], "the request querystring is not valid") }),
        },
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
        operationId: "getContract",
        tags: ["contracts"],
        summary: "A contract with all its versions",
        params: IdParams,
        response: {
          200: Contract.meta({ description: "The contract with all its versions", examples: [contractResponseExample] }),
          ...problems(READ_ONE, { 400: invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid"), 404: contractNotFound }),
        },
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
        operationId: "amendContract",
        tags: ["contracts"],
        summary: "Add a version (amendment or ramp) effective from an instant",
        description:
          "The terms fully replace the previous version's from `effectiveFrom` on; periods that straddle it are split into " +
          "prorated segments. Two versions sharing an effectiveFrom, or a version taking effect inside a period that already has an " +
          "issued document, are accepted but raise a blocking `amendment_conflict` on the next preview.",
        params: IdParams,
        body: AmendmentBody.meta({ examples: [amendmentExample] }),
        response: {
          201: ContractVersion.meta({ description: "Created: the new version", examples: [versionResponseExample] }),
          ...problems([...WRITE, 404], {
            400: invalid([{ path: "body.effectiveFrom", message: "must fall within the contract term" }]),
            403: forbiddenUnless("writer"),
            404: contractNotFound,
          }),
        },
      },
    },
    async (request, reply) => reply.code(201).send(await amendContract(db, actorOf(request), request.params.id, request.body)),
  );

  app.post(
    "/contracts/:id/external-billings",
    {
      config: { role: "writer" },
      schema: {
        operationId: "recordExternalBilling",
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
          ...problems([...WRITE, 404, 409], {
            400: invalid([{ path: "body.periodEnd", message: "must not pass the end of the billing period it belongs to (2027-01-01T00:00:00.000Z)" }]),
            403: forbiddenUnless("writer"),
            404: contractNotFound,
            409: {
              description: "`conflict`: the reference is already recorded with other values, or the period's already-billed amount would pass the largest storable amount",
              examples: [
                {
                  summary: "Reference reused with other values",
                  code: "conflict",
                  detail: 'reference "NS-INV-2026-0042" is already recorded with other values',
                  extra: { externalBillingId: "019a2b3c-5e6f-7a80-9b1c-2d3e4f5a6b7c" },
                },
                {
                  summary: "Past the storable amount",
                  code: "conflict",
                  detail:
                    "with this billing the period's already-billed amount would be 100000000000000.00, more than the largest amount the service can hold (99999999999999.99 USD)",
                  extra: { alreadyBilled: "99999999999000.00", limit: "99999999999999.99" },
                },
              ],
            },
          }),
        },
      },
    },
    async (request, reply) => {
      const { created, billing } = await recordExternalBilling(db, actorOf(request), request.params.id, request.body);
      return reply.code(created ? 201 : 200).send(billing);
    },
  );
};
