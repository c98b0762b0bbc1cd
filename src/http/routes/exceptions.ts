// Exception routes: list, read, decide.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { getException, listExceptions } from "../../services/exceptions/read.js";
import { resolveException } from "../../services/exceptions/resolve.js";
import { actorOf } from "../plugins/auth.js";
import { Id, IdParams, Pagination, decodeCursor, pageOf } from "../schemas/common.js";
import { READ, READ_ONE, WRITE, forbiddenUnless, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { exceptionExample } from "../schemas/examples.js";
import { Exception, ExceptionPage, ResolveBody } from "../schemas/exceptions.js";

export const exceptionRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.get(
    "/exceptions",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listExceptions",
        tags: ["exceptions"],
        summary: "List exceptions, oldest first",
        querystring: Pagination.extend({
          status: z.enum(["open", "approved", "rejected"]).optional(),
          contractId: Id.optional(),
          kind: Exception.shape.kind.optional(),
        }).strict(),
        response: {
          200: ExceptionPage.meta({ description: "One page of exceptions", examples: [{ data: [exceptionExample], nextCursor: null }] }),
          ...problems(READ, { 400: invalid([{ path: "querystring.status", message: 'Invalid option: expected one of "open"|"approved"|"rejected"' }], "the request querystring is not valid") }),
        },
      },
    },
    async (request) => {
      const { limit, cursor, ...filters } = request.query;
      const after = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listExceptions(db.sql, { ...filters, after, limit: limit + 1 }), limit, (e) => e.id);
    },
  );

  app.get(
    "/exceptions/:id",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getException",
        tags: ["exceptions"],
        summary: "One exception",
        params: IdParams,
        response: {
          200: Exception.meta({ description: "The exception with its resolution, if any", examples: [exceptionExample] }),
          ...problems(READ_ONE, { 400: invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid"), 404: notFoundIn("exception", exceptionExample.id) }),
        },
      },
    },
    async (request) => getException(db.sql, request.params.id),
  );

  app.post(
    "/exceptions/:id/resolve",
    {
      config: { role: "approver" },
      schema: {
        operationId: "resolveException",
        tags: ["exceptions"],
        summary: "Record a decision: approve clears a blocking exception, reject keeps the issue blocked",
        description: "Every decision is audited with its actor and note. A rejected exception may later be approved; approving twice → 409.",
        params: IdParams,
        body: ResolveBody.meta({ examples: [{ decision: "approve", note: "Q4 launch traffic, confirmed with the customer" }] }),
        response: {
          200: Exception.meta({ description: "The exception with the decision recorded", examples: [exceptionExample] }),
          ...problems([...WRITE, 404, 409], {
            400: invalid([{ path: "body.note", message: "Too small: expected string to have >=1 characters" }]),
            403: forbiddenUnless("approver"),
            404: notFoundIn("exception", exceptionExample.id),
            409: {
              description: "`conflict`: the exception already has this decision (an approval is final)",
              examples: [
                {
                  summary: "Already approved",
                  code: "conflict",
                  detail: "the exception is already approved: an approval is final",
                  extra: { exception: exceptionExample },
                },
              ],
            },
          }),
        },
      },
    },
    async (request) => resolveException(db, actorOf(request), request.params.id, request.body),
  );
};
