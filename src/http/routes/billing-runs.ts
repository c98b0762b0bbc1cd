// Billing runs (DESIGN.md §10, docs/billing-runs.md): start one (202), follow it, read its items.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Clock } from "../../clock.js";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { getBillingRun, listBillingRunItems, listBillingRuns } from "../../services/billing-runs/read.js";
import { startBillingRun } from "../../services/billing-runs/start.js";
import { actorOf, holds } from "../plugins/auth.js";
import { ProblemError } from "../problems.js";
import { IdParams, Pagination, decodeCursor, pageOf } from "../schemas/common.js";
import { READ, READ_ONE, WRITE, forbiddenUnless, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import { BillingRun, BillingRunItem, BillingRunItemPage, BillingRunPage, StartBillingRunBody } from "../schemas/billing-runs.js";

const runExample = {
  id: "0196f6d8-4d5e-7f60-8172-8d9e0f1a2b3c",
  status: "running" as const,
  periodEnd: "2026-12-01T00:00:00.000Z",
  autoIssue: true,
  contractIds: null,
  progress: { total: 10000, done: 4210 },
  counts: { issued: 4102, previewed: 0, blocked: 96, nothing_to_issue: 11, failed: 1 },
  startedAt: "2026-12-01T06:00:00.000Z",
  finishedAt: null,
  startedBy: "finance-approver",
};
const itemExample = {
  contractId: "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b",
  periodStart: "2026-11-01T00:00:00.000Z",
  periodEnd: "2026-12-01T00:00:00.000Z",
  status: "blocked" as const,
  calculationId: "0196f6d3-0a1b-7c2d-8e3f-4051627384a1",
  documentId: null,
  blockingExceptionIds: ["0196f6d3-0a1b-7c2d-8e3f-4051627384a0"],
  error: null,
  finishedAt: "2026-12-01T06:00:41.200Z",
};
const cursorIssue = invalid([{ path: "querystring.cursor", message: "is not a cursor this list returned" }], "the request querystring is not valid");
const ITEM_CURSOR = /^([0-9a-f-]{36})\|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)$/;

export const billingRunRoutes: FastifyPluginAsyncZod<{ db: Database; clock: Clock }> = async (app, { db, clock }) => {
  app.post(
    "/billing-runs",
    {
      // Writers and approvers may start a run (the handler checks): the auth plugin only asks for a key.
      config: { role: "reader" },
      schema: {
        operationId: "startBillingRun",
        tags: ["billing-runs"],
        summary: "Close periods for the whole book: preview every contract period due, and with autoIssue issue what is clean",
        description:
          "Takes every contract with a billing period ending at or before periodEnd that has no issued document, or has usage stored or voided " +
          "since its latest one (a period a run found nothing to issue in is skipped until something changes); one item per contract and period, " +
          "oldest first. Writer or approver; approver with autoIssue. At most one run is running (409).",
        body: StartBillingRunBody.meta({ examples: [{ periodEnd: "2026-12-01T00:00:00Z", autoIssue: true }] }),
        response: {
          202: BillingRun.meta({ description: "The run, started: follow it with GET /v1/billing-runs/{id}", examples: [{ ...runExample, progress: { total: 10000, done: 0 }, counts: { issued: 0, previewed: 0, blocked: 0, nothing_to_issue: 0, failed: 0 } }] }),
          ...problems([...WRITE, 409], {
            400: invalid([{ path: "body.periodEnd", message: "must not be after now (2026-12-01T05:59:00.000Z): only ended periods are billed" }]),
            403: forbiddenUnless("approver"),
            409: {
              description: "`conflict`: another billing run is running",
              examples: [{ summary: "One at a time", code: "conflict", detail: `billing run ${runExample.id} is still running: one run at a time`, extra: { runId: runExample.id } }],
            },
          }),
        },
      },
    },
    async (request, reply) => {
      // Issuing is an approver's act: a writer may start a preview-only run.
      if (request.body.autoIssue ? !holds(request, "approver") : !holds(request, "writer") && !holds(request, "approver"))
        throw new ProblemError("forbidden", request.body.autoIssue ? "autoIssue issues documents: it needs the approver role" : "starting a billing run needs the writer or approver role");
      reply.code(202);
      return startBillingRun(db, actorOf(request), request.body, clock.now());
    },
  );

  app.get(
    "/billing-runs",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listBillingRuns",
        tags: ["billing-runs"],
        summary: "Billing runs, newest first",
        querystring: Pagination.strict(),
        response: {
          200: BillingRunPage.meta({ description: "One page of runs", examples: [{ data: [runExample], nextCursor: null }] }),
          ...problems(READ, { 400: cursorIssue }),
        },
      },
    },
    async (request) => {
      const after = decodeCursor(request.query.cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listBillingRuns(db.sql, { after, limit: request.query.limit + 1 }), request.query.limit, (r) => r.id);
    },
  );

  app.get(
    "/billing-runs/:id",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getBillingRun",
        tags: ["billing-runs"],
        summary: "A billing run: its status, progress and counts",
        params: IdParams,
        response: {
          200: BillingRun.meta({ description: "The run", examples: [runExample] }),
          ...problems(READ_ONE, { 400: invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid"), 404: notFoundIn("billing run", runExample.id) }),
        },
      },
    },
    async (request) => getBillingRun(db.sql, request.params.id),
  );

  app.get(
    "/billing-runs/:id/items",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listBillingRunItems",
        tags: ["billing-runs"],
        summary: "A run's items: each contract period's outcome",
        params: IdParams,
        querystring: Pagination.extend({ status: BillingRunItem.shape.status.optional() }).strict(),
        response: {
          200: BillingRunItemPage.meta({ description: "One page of items, by contract and period", examples: [{ data: [itemExample], nextCursor: null }] }),
          ...problems(READ_ONE, { 400: cursorIssue, 404: notFoundIn("billing run", runExample.id) }),
        },
      },
    },
    async (request) => {
      const { limit, cursor, status } = request.query;
      const key = decodeCursor(cursor, (s) => ITEM_CURSOR.test(s));
      const m = key ? ITEM_CURSOR.exec(key) : null;
      const after = m ? { contractId: m[1]!, periodStart: m[2]! } : undefined;
      const rows = await listBillingRunItems(db.sql, { runId: request.params.id, status, after, limit: limit + 1 });
      return pageOf(rows, limit, (i) => `${i.contractId}|${i.periodStart}`);
    },
  );
};

