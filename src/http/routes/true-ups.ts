// True-up routes: preview (a stored calculation), issue (a document, exactly once), read a calculation, and
// simulate proposed terms (what-if: nothing stored).
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Clock } from "../../clock.js";
import type { Database } from "../../db/client.js";
import { issueTrueUp } from "../../services/true-ups/issue.js";
import { previewTrueUp } from "../../services/true-ups/preview.js";
import { getCalculation } from "../../services/true-ups/read.js";
import { simulateTerms } from "../../services/true-ups/simulate.js";
import { actorOf } from "../plugins/auth.js";
import { IdParams } from "../schemas/common.js";
import { READ_ONE, WRITE, forbiddenUnless, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { Document } from "../schemas/documents.js";
import { calculationExample, documentExample } from "../schemas/examples.js";
import { Calculation, IdempotencyHeaders, IssueBody, PreviewBody, Simulation, SimulationBody } from "../schemas/true-ups.js";

export const trueUpRoutes: FastifyPluginAsyncZod<{ db: Database; clock: Clock }> = async (app, { db, clock }) => {
  app.post(
    "/contracts/:id/true-ups/preview",
    {
      config: { role: "writer" },
      schema: {
        operationId: "previewTrueUp",
        tags: ["true-ups"],
        summary: "Rate a period and store the calculation",
        description:
          "Rates the whole period from scratch (the rating order of docs/rating.md) against the versions in force, the period's non-voided usage, " +
          "what was already billed (documents issued here, invoices minus credit memos, plus external billings starting in the period) " +
          "and the prepaid credit balances. The calculation is stored with its `inputsHash`; its exceptions are stored once per kind and " +
          "subject (materiality and over_billed per amount, so approving one amount does not approve another). `late_usage` is raised " +
          "when events arrived or were voided after the period's latest document. A period that has not ended yet is rated as it " +
          "stands, an estimate (`periodClosed: false`) that cannot be issued until the period ends (409 `period_open`).\n\n" +
          "Amounts are stored as numeric(20,6): when a line, the total, the already-billed amount or the delta would exceed " +
          "99,999,999,999,999.99 (14 integer digits, in the currency's minor unit), the preview is refused with 409 `conflict` whose " +
          "`amounts` name each one and `limit` the largest storable amount; nothing is stored. Fix the data (void the usage, amend " +
          "the terms, e.g. with a cap) and preview again.",
        params: IdParams,
        body: PreviewBody.meta({ examples: [{ periodStart: "2026-01-01T00:00:00Z" }] }),
        response: {
          201: Calculation.meta({ description: "Created: the stored calculation (lines, total, alreadyBilled, delta, action, exceptions, inputsHash)", examples: [calculationExample] }),
          ...problems([...WRITE, 404, 409], {
            400: invalid([{ path: "body.periodStart", message: "is not the start of a billing period of this contract" }]),
            403: forbiddenUnless("writer"),
            404: notFoundIn("contract"),
            409: {
              description: "`conflict`: an amount of the period would exceed the largest storable amount; nothing is stored",
              examples: [
                {
                  summary: "Amounts past the storable limit",
                  code: "conflict",
                  detail: "the period's amounts exceed the largest amount the service can bill (99999999999999.99 USD): total = 120000000000000.00",
                  extra: { limit: "99999999999999.99", amounts: [{ what: "total", amount: "120000000000000.00" }] },
                },
              ],
            },
          }),
        },
      },
    },
    async (request, reply) => reply.code(201).send(await previewTrueUp(db, actorOf(request), request.params.id, request.body, clock.now())),
  );

  app.post(
    "/contracts/:id/true-ups",
    {
      config: { role: "approver" },
      schema: {
        operationId: "issueTrueUp",
        tags: ["true-ups"],
        summary: "Issue the document of a previewed calculation, exactly once",
        description:
          "Recomputes the calculation inside the issuing transaction. Inputs changed since the preview → 409 `stale_preview`; blocking " +
          "exceptions not approved → 409 `blocking_exceptions` listing them; action none → 409 `nothing_to_issue`; a calculation already " +
          "issued → 409 `conflict` naming the document. Otherwise one transaction writes the document (gapless INV-/CM- number), its " +
          "lines, the credit drawdowns and the audit entry. A period that has not ended yet → 409 `period_open` (its preview is an estimate, " +
          "`periodClosed: false`). With an `Idempotency-Key`, a repeat with the same body returns the first response again — the same " +
          "status (201) and body — with the header `Idempotent-Replayed: true`. " +
          "Amounts past what a document can hold → 409 `conflict`, as for the preview.",
        params: IdParams,
        headers: IdempotencyHeaders,
        body: IssueBody.meta({ examples: [{ calculationId: calculationExample.id }] }),
        response: {
          201: Document.meta({
            description: "Issued; or, with `Idempotent-Replayed: true`, the first response to this Idempotency-Key again",
            examples: [documentExample],
          }),
          ...problems([...WRITE, 404, 409], {
            400: invalid([{ path: "body.calculationId", message: "must be a UUID" }]),
            403: forbiddenUnless("approver"),
            404: {
              description: "`not_found`: no contract with this id, or no calculation with this id on this contract",
              examples: notFoundIn("calculation", "0196f6d3-0a1b-7c2d-8e3f-405162738495").examples!,
            },
            409: {
              description:
                "`stale_preview`: the inputs changed since the preview (preview again); `blocking_exceptions`: open blocking exceptions, listed; " +
                "`nothing_to_issue`: action none; `period_open`: the period has not ended yet; " +
                "`conflict`: the calculation was already issued (or its amounts cannot be stored); " +
                "`idempotency_conflict`: the Idempotency-Key was used with another body",
              examples: [
                {
                  summary: "Inputs changed since the preview",
                  code: "stale_preview",
                  detail: "the inputs changed since the preview (usage, versions, billings or credits): preview again",
                  extra: {
                    previewInputsHash: "a7c103288ddb352495e82bc4d8f0313db85c3049f89b0a5e91bfd34ffc0c6061",
                    currentInputsHash: "5d41402abc4b2a76b9719d911017c592ae2b4c1f6e0b5e3b0f6d1a2c3b4d5e6f",
                  },
                },
                {
                  summary: "Blocking exceptions not approved",
                  code: "blocking_exceptions",
                  detail: "1 blocking exception(s) need an approve decision first",
                  extra: {
                    exceptions: [
                      {
                        id: "0196f6d3-0a1b-7c2d-8e3f-4051627384a0",
                        kind: "materiality",
                        subject: "delta=32000.00",
                        status: "open",
                        message: "delta 32000.00 is at or above the materiality threshold 25000.00",
                      },
                    ],
                  },
                },
                {
                  summary: "Period not ended",
                  code: "period_open",
                  detail: "the period 2026-10-01T00:00:00.000Z to 2027-01-01T00:00:00.000Z has not ended yet: it can be issued from 2027-01-01T00:00:00.000Z",
                  extra: { period: { start: "2026-10-01T00:00:00.000Z", end: "2027-01-01T00:00:00.000Z" } },
                },
                { summary: "Nothing to issue", code: "nothing_to_issue", detail: "the period is billed correctly (total 152000.00, already billed 152000.00)" },
                {
                  summary: "Already issued",
                  code: "conflict",
                  detail: "calculation 0196f6d3-0a1b-7c2d-8e3f-405162738495 was already issued as INV-000001",
                  extra: { documentId: "0196f6d4-1b2c-7d3e-8f40-5162738495a6" },
                },
                { summary: "Idempotency-Key reused", code: "idempotency_conflict", detail: "this Idempotency-Key was used with a different request" },
              ],
            },
          }),
        },
      },
    },
    async (request, reply) => {
      const { status, document, replayed } = await issueTrueUp(
        db,
        actorOf(request),
        request.params.id,
        request.body,
        request.headers["idempotency-key"],
        clock.now(),
      );
      // A replay answers exactly as the first time (status and body), marked as a replay.
      if (replayed) reply.header("Idempotent-Replayed", "true");
      return reply.code(status).send(document);
    },
  );

  app.post(
    "/contracts/:id/simulations",
    {
      config: { role: "writer" },
      schema: {
        operationId: "simulateTerms",
        tags: ["true-ups"],
        summary: "What-if: rate a period's real usage with the current and with proposed terms (nothing stored)",
        description:
          "Rates the period (`periodStart`, default the last closed period, as for a preview) twice on the same usage, billings and " +
          "credit balances: `current` with the contract's versions in force in it, `proposed` with `terms` in force for the whole period " +
          "(as if amended with them from the period's start: versions that took effect earlier stay for earlier periods, e.g. a term " +
          "commitment's, none from the period's start on; the contract's currency, calendar and rounding are its own). Both are full " +
          "calculations (lines, commitment shortfalls, credits, total, delta, action, the exceptions the engine finds). `difference` is " +
          "proposed − current: the totals, and per meter its usage charges. The terms are validated as an amendment's. Nothing is stored, " +
          "audited or issuable: no calculation, no exception, no audit entry.",
        params: IdParams,
        body: SimulationBody.meta({
          examples: [
            {
              periodStart: "2026-10-01T00:00:00Z",
              terms: { meters: [{ metric: "api_calls", unit: "call", included: "50000", pricing: { model: "per_unit", unitPrice: "0.05" } }] },
            },
          ],
        }),
        response: {
          200: Simulation.meta({ description: "Both ratings of the period and their difference (proposed − current); nothing was stored" }),
          ...problems([...WRITE, 404], {
            400: {
              description: "`validation_failed`: the terms are not valid (as for an amendment), or `periodStart` is not the start of a billing period of the term",
              examples: [
                {
                  summary: "Terms not valid",
                  code: "validation_failed",
                  detail: "the request body is not valid",
                  extra: { errors: [{ path: "body.terms.meters.0.pricing", message: "Invalid input" }] },
                },
                {
                  summary: "Not a period of the term",
                  code: "validation_failed",
                  detail: "the request body is not valid",
                  extra: { errors: [{ path: "body.periodStart", message: "is not the start of a billing period of this contract" }] },
                },
              ],
            },
            403: forbiddenUnless("writer"),
            404: notFoundIn("contract"),
          }),
        },
      },
    },
    async (request) => simulateTerms(db, request.params.id, request.body, clock.now()),
  );

  app.get(
    "/calculations/:id",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getCalculation",
        tags: ["true-ups"],
        summary: "A stored calculation with its inputs, lines, exceptions and inputsHash",
        params: IdParams,
        response: {
          200: Calculation.meta({ description: "The stored calculation, with the exact engine input", examples: [calculationExample] }),
          ...problems(READ_ONE, { 400: invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid"), 404: notFoundIn("calculation", "0196f6d3-0a1b-7c2d-8e3f-405162738495") }),
        },
      },
    },
    async (request) => getCalculation(db, request.params.id),
  );
};
