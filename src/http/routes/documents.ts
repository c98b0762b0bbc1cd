// Document routes: invoices and credit memos, the customer-facing CSV backup, and a usage line's events.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { documentBackupCsv } from "../../services/documents/backup-csv.js";
import { lineEventsCsv } from "../../services/documents/line-events-csv.js";
import { lineEvents } from "../../services/documents/line-events.js";
import { getDocument, listDocuments } from "../../services/documents/read.js";
import { Id, IdParams, Pagination, decodeCursor, pageOf } from "../schemas/common.js";
import { READ, READ_ONE, type ProblemDoc, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { Document, DocumentLineParams, DocumentPage, LineEventPage } from "../schemas/documents.js";
import { documentExample } from "../schemas/examples.js";

const documentNotFound = notFoundIn("document", documentExample.id);

const lineNotFound: ProblemDoc = {
  description: "`not_found`: no document with this id, or the document has no line with this `lineNo`",
  examples: [
    { summary: "Unknown document", code: "not_found", detail: `document ${documentExample.id} does not exist` },
    { summary: "Unknown line", code: "not_found", detail: `document ${documentExample.number} has no line 9`, extra: { lineNo: 9 } },
  ],
};

const notAUsageLine: ProblemDoc = {
  description: "`conflict`: the line is not a usage line (platform fee, shortfall, discount, cap, credit): no events are behind it; `kind` names it",
  examples: [
    {
      summary: "A platform fee line",
      code: "conflict",
      detail: `line 1 of document ${documentExample.number} is a platform_fee line: only usage lines are made of events`,
      extra: { lineNo: 1, kind: "platform_fee" },
    },
  ],
};

const badLine = invalid([{ path: "params.lineNo", message: "must be a line number: 1, 2, … as in the document's lines[].lineNo" }], "the request params is not valid");

const LINE_EVENTS =
  "Exactly the events behind a usage line as the document was issued: those of the contract's customer and account ids, the line's " +
  "metric and meter filter (`explanation.filter`), timestamped inside its segment (`explanation.segment`, [from, to)), plus, for " +
  "`latest` and `time_weighted` meters, the last event before the segment, which set the level carried in (`carriedOver: true`). " +
  "Only events received at or before the document's `issuedAt` are listed (later arrivals are for the next preview); those voided " +
  "after it are listed with `voidedAfterIssue: true`. Aggregating the list as the meter does (`explanation.aggregation`) therefore " +
  "gives the line's `usage`. In the meter's order: timestamp, then arrival, then customer and event id.";

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
  app.get(
    "/documents/:id/lines/:lineNo/events",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listDocumentLineEvents",
        tags: ["documents"],
        summary: "The events behind a usage line, as issued (drill-down)",
        description: `${LINE_EVENTS} Cursor-paginated; \`events.csv\` gives the same rows as one CSV.`,
        params: DocumentLineParams,
        querystring: Pagination.strict(),
        response: {
          200: LineEventPage.meta({
            description: "One page of the line's events",
            examples: [
              {
                data: [
                  {
                    eventId: "evt-000123",
                    customerId: "acme",
                    metric: "api_calls",
                    quantity: "1200",
                    timestamp: "2026-12-03T10:15:00.000000Z",
                    properties: { region: "eu" },
                    receivedAt: "2026-12-03T10:15:02.318000Z",
                    carriedOver: false,
                    voidedAfterIssue: false,
                  },
                ],
                nextCursor: "MTIzNDU2",
              },
            ],
          }),
          ...problems([...READ_ONE, 409], {
            400: invalid([{ path: "querystring.cursor", message: "is not a cursor this list returned" }], "the request querystring is not valid"),
            404: lineNotFound,
            409: notAUsageLine,
          }),
        },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const after = decodeCursor(cursor, (s) => /^[1-9]\d{0,18}$/.test(s));
      const rows = await lineEvents(db.sql, request.params.id, request.params.lineNo, { after, limit: limit + 1 });
      const { data, nextCursor } = pageOf(rows, limit, (r) => r.key);
      return { data: data.map((r) => r.event), nextCursor };
    },
  );

  app.get(
    "/documents/:id/lines/:lineNo/events.csv",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getDocumentLineEventsCsv",
        tags: ["documents"],
        summary: "The events behind a usage line as CSV, streamed",
        description:
          `${LINE_EVENTS} One row per event, in the JSON list's order, under a header naming the columns as the list's items do: ` +
          "`eventId`, `customerId`, `metric`, `quantity`, `timestamp`, `properties` (JSON), `receivedAt`, `carriedOver`, `voidedAfterIssue`. " +
          "Streamed as it is read (a line of millions of events is fine). Cells a spreadsheet would run as formulas are defused.",
        params: DocumentLineParams,
        querystring: z.object({}).strict(),
        produces: ["text/csv"],
        response: {
          200: z.string().meta({ description: "The line's events as text/csv (UTF-8), sent as an attachment named after the document number and line" }),
          ...problems([...READ_ONE, 409], { 400: badLine, 404: lineNotFound, 409: notAUsageLine }),
        },
      },
    },
    async (request, reply) => {
      const { filename, stream } = await lineEventsCsv(db, request.params.id, request.params.lineNo);
      return reply.type("text/csv; charset=utf-8").header("Content-Disposition", `attachment; filename="${filename}"`).send(stream as never); // a stream: the text/csv schema documents it, Fastify sends it as it comes
    },
  );
};
