// True-up routes: preview (a stored calculation), issue (a document, exactly once), read a calculation.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Database } from "../../db/client.js";
import { getCalculation, issueTrueUp, previewTrueUp } from "../../services/true-ups.js";
import { actorOf } from "../plugins/auth.js";
import { IdParams, problemResponses } from "../schemas/common.js";
import {
  Calculation,
  Document,
  IdempotencyHeaders,
  IssueBody,
  PreviewBody,
  calculationExample,
  documentExample,
} from "../schemas/true-ups.js";

export const trueUpRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.post(
    "/contracts/:id/true-ups/preview",
    {
      config: { role: "writer" },
      schema: {
        tags: ["true-ups"],
        summary: "Rate a period and store the calculation",
        description:
          "Rates the whole period from scratch (DESIGN.md section 4) against the versions in force, the period's non-voided usage, " +
          "what was already billed (documents issued here, invoices minus credit memos, plus external billings starting in the period) " +
          "and the prepaid credit balances. The calculation is stored with its `inputsHash`; its exceptions are stored once per kind and " +
          "subject (materiality and over_billed per amount, so approving one amount does not approve another). `late_usage` is raised " +
          "when events arrived or were voided after the period's latest document.\n\n" +
          "Amounts are stored as numeric(20,6): when a line, the total, the already-billed amount or the delta would exceed " +
          "99,999,999,999,999.99 (14 integer digits, in the currency's minor unit), the preview is refused with 409 `conflict` whose " +
          "`amounts` name each one and `limit` the largest storable amount; nothing is stored. Fix the data (void the usage, amend " +
          "the terms, e.g. with a cap) and preview again.",
        params: IdParams,
        body: PreviewBody.meta({ examples: [{ periodStart: "2026-01-01T00:00:00Z" }] }),
        response: { 201: Calculation.meta({ examples: [calculationExample] }), ...problemResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await previewTrueUp(db, actorOf(request), request.params.id, request.body)),
  );

  app.post(
    "/contracts/:id/true-ups",
    {
      config: { role: "approver" },
      schema: {
        tags: ["true-ups"],
        summary: "Issue the document of a previewed calculation, exactly once",
        description:
          "Recomputes the calculation inside the issuing transaction. Inputs changed since the preview → 409 `stale_preview`; blocking " +
          "exceptions not approved → 409 `blocking_exceptions` listing them; action none → 409 `nothing_to_issue`; a calculation already " +
          "issued → 409 `conflict` naming the document. Otherwise one transaction writes the document (gapless INV-/CM- number), its " +
          "lines, the credit drawdowns and the audit entry. With an `Idempotency-Key`, a repeat returns the first response (200). " +
          "Amounts past what a document can hold → 409 `conflict`, as for the preview.",
        params: IdParams,
        headers: IdempotencyHeaders,
        body: IssueBody.meta({ examples: [{ calculationId: calculationExample.id }] }),
        response: {
          200: Document.meta({ description: "Replayed: the first response to this Idempotency-Key", examples: [documentExample] }),
          201: Document.meta({ description: "Issued", examples: [documentExample] }),
          ...problemResponses,
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
      );
      if (replayed) reply.header("Idempotent-Replayed", "true");
      return reply.code(replayed ? 200 : status).send(document);
    },
  );

  app.get(
    "/calculations/:id",
    {
      config: { role: "reader" },
      schema: {
        tags: ["true-ups"],
        summary: "A stored calculation with its inputs, lines, exceptions and inputsHash",
        params: IdParams,
        response: { 200: Calculation.meta({ examples: [calculationExample] }), ...problemResponses },
      },
    },
    async (request) => getCalculation(db, request.params.id),
  );
};
