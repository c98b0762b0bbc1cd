// Reconciliation routes (DESIGN.md §7.1): run, read, the breaks and their CSV, dispositions, sign-off.
import { type FastifyPluginAsyncZod, validatorCompiler as zodValidator } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Clock } from "../../clock.js";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { USAGE_RULES } from "../../domain/usage-rules.js";
import { breaksCsv } from "../../services/reconciliations/breaks-csv.js";
import { getReconciliation, listBreaks, listReconciliations } from "../../services/reconciliations/read.js";
import { resolveBreak } from "../../services/reconciliations/resolve-break.js";
import { runReconciliation } from "../../services/reconciliations/run.js";
import { signOffReconciliation } from "../../services/reconciliations/sign-off.js";
import { actorOf } from "../plugins/auth.js";
import { decodeCursor, pageOf } from "../schemas/common.js";
import { READ, READ_ONE, WRITE, forbiddenUnless, invalid, notFoundIn, problems } from "../schemas/problem-responses.js";
import {
  Break,
  BreakCsvQuery,
  BreakListQuery,
  BreakPage,
  BreakParams,
  Reconciliation,
  ReconciliationBody,
  ReconciliationPage,
  ResolveBreakBody,
  RunListQuery,
  RunParams,
  SignOffBody,
} from "../schemas/reconciliations.js";
import { IdempotencyHeaders } from "../schemas/true-ups.js";

/** 100,000 metered and 100,000 invoiced rows with long ids and references fit (DESIGN.md §7.1). */
export const RECONCILIATION_BODY_LIMIT = 64 * 1024 * 1024;

const runNotFound = notFoundIn("reconciliation");
const badId = invalid([{ path: "params.id", message: "must be a UUID" }], "the request params is not valid");

export const reconciliationRoutes: FastifyPluginAsyncZod<{ db: Database; clock: Clock }> = async (app, { db, clock }) => {
  app.post(
    "/reconciliations",
    {
      config: { role: "writer" },
      bodyLimit: RECONCILIATION_BODY_LIMIT,
      // The domain validates the body in one pass (every bad path, faster than a schema library at 200,000
      // rows); the zod schema documents the same rules in the OpenAPI spec.
      validatorCompiler: (route) => (route.httpPart === "body" ? (data: unknown) => ({ value: data }) : zodValidator(route as unknown as Parameters<typeof zodValidator>[0])),
      schema: {
        operationId: "runReconciliation",
        tags: ["reconciliations"],
        summary: "Run a three-way reconciliation: raw events vs. metered units vs. invoiced lines",
        description:
          "Pulls the window's non-voided stored events (raw), the metering layer's rows (`metered`) and the billing system's (`invoiced`, or, " +
          "when omitted, this service's own latest document of each period inside the window); keys every row by customer + metric (an " +
          "account alias becomes its contract's customer; raw units and this service's documents × `unitConversions[metric]`); and " +
          "classifies each key, first rule that holds: `unmapped`, `match`, `timing`, `credit`, `proration`, `under_bill`, `over_bill`, " +
          "`metering`. Each break is priced at its contract's terms (the engine rates R and I over the contract's billing periods in the " +
          "window; their difference, rounded, is its `amount`) and routed to its owner. A later run of the same window follows the earlier " +
          "run's `timing` keys (`watchlist`). The run, its breaks and an audit entry are stored in one transaction. Up to 100,000 metered " +
          `and 100,000 invoiced rows; the body at most ${RECONCILIATION_BODY_LIMIT / 1024 / 1024} MiB (413). Any bad row → 400 naming every ` +
          "bad path; nothing is stored. With an `Idempotency-Key`, a repeat with the same body returns the first response again " +
          "(`Idempotent-Replayed: true`).",
        headers: IdempotencyHeaders,
        body: ReconciliationBody.meta({
          examples: [
            {
              periodStart: "2026-07-01T00:00:00Z",
              periodEnd: "2026-10-01T00:00:00Z",
              unitConversions: { api_calls: "0.001" },
              metered: [{ customerId: "acme", metric: "api_calls", quantity: "1400" }],
              invoiced: [
                { customerId: "acme", metric: "api_calls", quantity: "1400", amount: "32.00", invoiceRef: "in_1Q2w3e", invoicedAt: "2026-10-02T09:00:00Z", kind: "invoice" },
              ],
            },
          ],
        }),
        response: {
          201: Reconciliation.meta({ description: "The run and its statement; or, with `Idempotent-Replayed: true`, the first response to this key again" }),
          ...problems([...WRITE, 409], {
            400: invalid([
              { path: "body.metered.3.quantity", message: USAGE_RULES.quantity.message },
              { path: "body.invoiced.0.invoicedAt", message: "is required" },
            ]),
            409: {
              description:
                "`idempotency_conflict`: the Idempotency-Key was used with another body, or a request with it is still running; " +
                "`conflict`: a break's quantities or amount are too large to store (usually a unit conversion), listed in `keys`",
              examples: [
                { summary: "Idempotency-Key reused", code: "idempotency_conflict", detail: "this Idempotency-Key was used with a different request" },
                {
                  summary: "Too large to store",
                  code: "conflict",
                  detail: "1 break(s) have quantities or amounts too large to store (check unitConversions)",
                  extra: { keys: [{ customerId: "acme", metric: "api_calls", raw: "1400000000000000000000000000000000000000", units: "1400000000000000000000000000000000000000", amount: null }] },
                },
              ],
            },
          }),
        },
      },
    },
    async (request, reply) => {
      const { status, run, replayed } = await runReconciliation(db, actorOf(request), request.body, request.headers["idempotency-key"], clock.now());
      if (replayed) reply.header("Idempotent-Replayed", "true");
      return reply.code(status).send(run);
    },
  );

  app.get(
    "/reconciliations",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listReconciliations",
        tags: ["reconciliations"],
        summary: "List reconciliation runs, oldest first (optionally of one window)",
        querystring: RunListQuery,
        response: {
          200: ReconciliationPage.meta({ description: "One page of runs" }),
          ...problems(READ, { 400: invalid([{ path: "querystring.periodStart", message: "Invalid ISO datetime" }], "the request querystring is not valid") }),
        },
      },
    },
    async (request) => {
      const { limit, cursor, periodStart, periodEnd } = request.query;
      const after = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listReconciliations(db, { periodStart, periodEnd, after, limit: limit + 1 }), limit, (r) => r.id);
    },
  );

  app.get(
    "/reconciliations/:id",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getReconciliation",
        tags: ["reconciliations"],
        summary: "One run: the statement per class (keys, units, money), the totals and the watch-list",
        params: RunParams,
        response: {
          200: Reconciliation.meta({ description: "The run" }),
          ...problems(READ_ONE, { 400: badId, 404: runNotFound }),
        },
      },
    },
    async (request) => getReconciliation(db, request.params.id),
  );

  app.get(
    "/reconciliations/:id/breaks",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listReconciliationBreaks",
        tags: ["reconciliations"],
        summary: "The breaks of a run, by customer and metric, optionally of one class or owner",
        params: RunParams,
        querystring: BreakListQuery,
        response: {
          200: BreakPage.meta({ description: "One page of breaks" }),
          ...problems(READ_ONE, { 400: badId, 404: runNotFound }),
        },
      },
    },
    async (request) => {
      const { limit, cursor, ...filters } = request.query;
      const after = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listBreaks(db, request.params.id, { ...filters, after, limit: limit + 1 }), limit, (b) => b.id);
    },
  );

  app.get(
    "/reconciliations/:id/breaks.csv",
    {
      config: { role: "reader" },
      schema: {
        operationId: "getReconciliationBreaksCsv",
        tags: ["reconciliations"],
        summary: "The breaks of a run as CSV (what finance attaches to the close), streamed",
        description:
          "One row per break, the columns named as the break's JSON names them: `id`, `contractId`, `customerId`, `metric`, `class`, " +
          "`source`, `owner`, `raw`, `metered`, `invoiced`, `late`, `units`, `amount`, `currency`, `previousClass`, `disposition.decision`, " +
          "`disposition.note`, `disposition.actor`, `disposition.at`. `?class=` and `?owner=` filter as for the JSON list. Cells a " +
          "spreadsheet would run as formulas are defused.",
        params: RunParams,
        querystring: BreakCsvQuery,
        produces: ["text/csv"],
        response: {
          200: z.string().meta({ description: "The breaks as text/csv (UTF-8), sent as an attachment" }),
          ...problems(READ_ONE, { 400: badId, 404: runNotFound }),
        },
      },
    },
    async (request, reply) => {
      const { filename, stream } = await breaksCsv(db, request.params.id, request.query);
      return reply.type("text/csv; charset=utf-8").header("Content-Disposition", `attachment; filename="${filename}"`).send(stream as never); // a stream: the text/csv schema documents it, Fastify sends it as it comes
    },
  );

  app.post(
    "/reconciliations/:id/breaks/:breakId/resolve",
    {
      config: { role: "approver" },
      schema: {
        operationId: "resolveReconciliationBreak",
        tags: ["reconciliations"],
        summary: "Record a disposition of a break: catch_up_charge, credit, absorb or no_action",
        description:
          "Audited with its actor and note. A break may be decided again until the run is signed off (the latest decision counts; every " +
          "one is kept). A `catch_up_charge` needs a positive amount and a `credit` a negative one (an unpriced break may take either).",
        params: BreakParams,
        body: ResolveBreakBody.meta({ examples: [{ decision: "catch_up_charge", note: "Q3 overage billed on the October invoice" }] }),
        response: {
          200: Break.meta({ description: "The break with its disposition" }),
          ...problems([...WRITE, 404, 409], {
            403: forbiddenUnless("approver"),
            404: { description: "`not_found`: no run with this id, or no break with this id in it" },
            409: {
              description: "`conflict`: the run is signed off, or the decision does not fit the break's money",
              examples: [{ summary: "Signed off", code: "conflict", detail: "reconciliation 0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b is signed off: its dispositions are final" }],
            },
          }),
        },
      },
    },
    async (request) => resolveBreak(db, actorOf(request), request.params.id, request.params.breakId, request.body, clock.now()),
  );

  app.post(
    "/reconciliations/:id/sign-off",
    {
      config: { role: "approver" },
      schema: {
        operationId: "signOffReconciliation",
        tags: ["reconciliations"],
        summary: "Sign off a run once every break other than timing and credit has a disposition",
        params: RunParams,
        body: SignOffBody.meta({ examples: [{ note: "Q3 close: reviewed with RevOps" }] }),
        response: {
          200: Reconciliation.meta({ description: "The signed-off run and its statement" }),
          ...problems([...WRITE, 404, 409], {
            403: forbiddenUnless("approver"),
            404: runNotFound,
            409: {
              description: "`conflict`: breaks without a disposition (listed in `breakIds`), or the run is already signed off",
              examples: [
                {
                  summary: "Breaks still undecided",
                  code: "conflict",
                  detail: "2 break(s) still have no disposition: resolve them before signing off",
                  extra: { breakIds: ["0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b", "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1c"] },
                },
              ],
            },
          }),
        },
      },
    },
    async (request) => signOffReconciliation(db, actorOf(request), request.params.id, request.body, clock.now()),
  );
};
