// Document routes: invoices and credit memos, and the customer-facing CSV backup.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { documentBackupCsv, getDocument, listDocuments } from "../../services/documents.js";
import { Id, IdParams, Pagination, decodeCursor, pageOf, problemResponses } from "../schemas/common.js";
import { Document, DocumentPage, documentExample } from "../schemas/true-ups.js";

export const documentRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.get(
    "/documents",
    {
      config: { role: "reader" },
      schema: {
        tags: ["documents"],
        summary: "List issued documents, oldest first",
        querystring: Pagination.extend({ contractId: Id.optional(), kind: z.enum(["invoice", "credit_memo"]).optional() }).strict(),
        response: { 200: DocumentPage, ...problemResponses },
      },
    },
    async (request) => {
      const { limit, cursor, contractId, kind } = request.query;
      const after = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listDocuments(db, { contractId, kind, after, limit: limit + 1 }), limit, (d) => d.id);
    },
  );

  app.get(
    "/documents/:id",
    {
      config: { role: "reader" },
      schema: { tags: ["documents"], summary: "One document with its lines", params: IdParams, response: { 200: Document.meta({ examples: [documentExample] }), ...problemResponses } },
    },
    async (request) => getDocument(db, request.params.id),
  );

  app.get(
    "/documents/:id/backup.csv",
    {
      config: { role: "reader" },
      schema: {
        tags: ["documents"],
        summary: "The customer-facing backup of a document as CSV",
        description:
          "One row per line: segment, version, fraction, usage, included, billable, pricing model, rate or tiers, gross, discount, " +
          "capped, amount; then subtotal, already billed and the amount due or credited. Cells a spreadsheet would run as formulas are defused.",
        params: IdParams,
        produces: ["text/csv"],
        response: { 200: z.string().describe("text/csv"), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { filename, csv } = await documentBackupCsv(db, request.params.id);
      return reply.type("text/csv; charset=utf-8").header("Content-Disposition", `attachment; filename="${filename}"`).send(csv);
    },
  );
};
