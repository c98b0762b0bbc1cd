// Document routes: invoices and credit memos, and the customer-facing CSV backup.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { documentBackupCsv } from "../../services/documents/backup-csv.js";
import { getDocument, listDocuments } from "../../services/documents/read.js";
import { Id, IdParams, Pagination, decodeCursor, pageOf } from "../schemas/common.js";
import { READ, READ_ONE, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { Document, DocumentPage } from "../schemas/documents.js";
import { documentExample } from "../schemas/examples.js";

const documentNotFound = notFoundIn("document", documentExample.id);

export const documentRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.get(
    "/documents",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listDocuments",
        tags: ["documents"],
        summary: "List issued documents, oldest first",
        querystring: Pagination.extend({ contractId: Id.optional(), kind: z.enum(["invoice", "credit_memo"]).optional() }).strict(),
        response: {
          200: DocumentPage.meta({ description: "One page of invoices and credit memos", examples: [{ data: [documentExample], nextCursor: null }] }),
          ...problems(READ, { 400: invalid([{ path: "querystring.contractId", message: "must be a UUID" }], "the request querystring is not valid") }),
        },
      },
    },
    async (request) => {
      const { limit, cursor, contractId, kind } = request.query;
      const after = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listDocuments(db.sql, { contractId, kind, after, limit: limit + 1 }), limit, (d) => d.id);
    },
  );

  app.get(
    "/documents/:id",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getDocument",
        tags: ["documents"],
        summary: "One document with its lines",
        params: IdParams,
        response: {
          200: Document.meta({ description: "The document with its lines", examples: [documentExample] }),
          ...problems(READ_ONE, { 400: invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid"), 404: documentNotFound }),
        },
      },
    },
    async (request) => getDocument(db.sql, request.params.id),
  );

  app.get(
    "/documents/:id/backup.csv",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getDocumentBackup",
        tags: ["documents"],
        summary: "The customer-facing backup of a document as CSV",
        description:
          "Opens with the customer, the contract, the document number and the period as inclusive dates in the contract's timezone " +
          "(`2026-01-01 to 2026-03-31` for [2026-01-01, 2026-04-01)). Then one row per line, the columns named as the document's JSON " +
          "names them (`lineNo`, `kind`, `metric`, `segment.from`, `segment.to`, `usage`, `included`, `billable`, `pricingModel`, " +
          "`unitPrice`, `tiers`, `packageSize`, `packagePrice`, `gross`, `discount`, `amount`, `description`), and the totals: " +
          "`subtotal`, one `alreadyBilled` row per earlier document or external billing citing its number or reference, and `amount` " +
          "(due or credited). `?detail=full` adds the engine's internals: `segment.version`, `fraction`, `capped`, `unroundedAmount`. " +
          "Cells a spreadsheet would run as formulas are defused.",
        params: IdParams,
        querystring: z
          .object({ detail: z.enum(["customer", "full"]).default("customer").describe("`full` adds the engine's internal columns") })
          .strict(),
        produces: ["text/csv"],
        response: {
          200: z.string().meta({ description: "The backup as text/csv (UTF-8), sent as an attachment named after the document number" }),
          ...problems(READ_ONE, { 400: invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid"), 404: documentNotFound }),
        },
      },
    },
    async (request, reply) => {
      const { filename, csv } = await documentBackupCsv(db.sql, request.params.id, request.query.detail);
      return reply.type("text/csv; charset=utf-8").header("Content-Disposition", `attachment; filename="${filename}"`).send(csv);
    },
  );
};
