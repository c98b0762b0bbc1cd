// Audit routes: read the log, verify the hash chain, take and list signed checkpoints (docs/audit.md).
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { UUID_PATTERN } from "../../db/ids.js";
import { actorOf } from "../plugins/auth.js";
import { decodeCheckpointToken } from "../../domain/audit-signing.js";
import { invalid as invalidInput } from "../../errors.js";
import { createCheckpoint, listCheckpoints } from "../../services/audit/checkpoints.js";
import { listAudit } from "../../services/audit/read.js";
import { runAuditVerification } from "../../services/audit/verify.js";
import { Pagination, decodeCursor, pageOf } from "../schemas/common.js";
import { READ, invalid, problems } from "../schemas/problem-responses.js";
import { AuditCheckpoint, AuditCheckpointPage, AuditPage, AuditVerification, AuditVerifyQuery } from "../schemas/audit.js";

export const auditRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.get(
    "/audit",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listAuditEntries",
        tags: ["audit"],
        summary: "The audit log in order, optionally for one entity",
        description: "Every entry: hash = sha256(prevHash + canonical JSON of {id, seq, at, actor, action, entityType, entityId, payload}).",
        querystring: Pagination.extend({ entityId: z.string().min(1).max(200).optional() }).strict(),
        response: {
          200: AuditPage.meta({ description: "One page of audit entries, in chain order" }),
          ...problems(READ, { 400: invalid([{ path: "querystring.cursor", message: "is not a cursor this list returned" }], "the request querystring is not valid") }),
        },
      },
    },
    async (request) => {
      const { limit, cursor, entityId } = request.query;
      const afterSeq = decodeCursor(cursor, (s) => /^\d{1,18}$/.test(s));
      return pageOf(await listAudit(db.sql, { entityId, afterSeq, limit: limit + 1 }), limit, (e) => e.seq);
    },
  );

  app.get(
    "/audit/verify",
    {
      config: { role: "reader" },
      schema: {
        operationId: "verifyAudit",
        tags: ["audit"],
        summary: "Recompute the hash chain, check the checkpoints; with deep=true also every document, version and usage batch",
        description:
          "Recomputes every entry's hash and link and names the first broken one (`firstBrokenId`). Checks the latest stored " +
          "checkpoint: its HMAC signature holds with the service's key, the entry at its seq still has the signed hash, and the " +
          "chain is not shorter. `?checkpoint=<token>` checks a token kept outside the same way, which catches the removal of " +
          "the last entries together with the last checkpoint rows. `?deep=true` also recomputes the digest of every document " +
          "(with its lines and credit drawdowns), contract version and usage batch from its rows and compares it with the digest " +
          "its audit entry recorded, and the hourly usage rollups against the events. Every finding is in `problems`; " +
          "`ok` is true only when there is none. Runs in one read-only snapshot. See docs/audit.md for what it cannot detect.",
        querystring: AuditVerifyQuery,
        response: {
          200: AuditVerification.meta({
            description: "The verification: ok, the entries checked, the first broken entry, the checkpoints checked and every problem found",
            examples: [
              {
                ok: true,
                entries: 42,
                firstBrokenId: null,
                checkpoint: { seq: "42", at: "2026-12-01T10:00:00.000Z", keyId: "3f1c0a9e5b7d2468", verified: true },
                suppliedCheckpoint: null,
                deep: true,
                problems: [],
              },
            ],
          }),
          ...problems(READ, { 400: invalid([{ path: "querystring.checkpoint", message: "is not a checkpoint token (acp1.… from POST /v1/audit/checkpoints)" }], "the request querystring is not valid") }),
        },
      },
    },
    async (request) => {
      const { deep, checkpoint } = request.query;
      const supplied = checkpoint === undefined ? undefined : decodeCheckpointToken(checkpoint);
      if (supplied === null)
        throw invalidInput([{ field: "checkpoint", message: "is not a checkpoint token (acp1.… from POST /v1/audit/checkpoints)" }]);
      return runAuditVerification(db, { deep: deep === "true", ...(supplied ? { supplied } : {}) });
    },
  );

  app.post(
    "/audit/checkpoints",
    {
      config: { role: "admin" },
      schema: {
        operationId: "createAuditCheckpoint",
        tags: ["audit"],
        summary: "Sign the audit chain's head now; keep the returned token outside the service",
        description:
          "Signs (seq, hash, at, entries) of the current head with HMAC-SHA256 and the key kept outside PostgreSQL " +
          "(AUDIT_SIGNING_KEY or DATA_DIR/audit-signing-key), stores the checkpoint and returns it with its `token`. " +
          "Whoever keeps the token can later pass it to `GET /v1/audit/verify?checkpoint=`. Admin only: signing the head " +
          "vouches for everything before it. Checkpoints are also written every AUDIT_CHECKPOINT_EVERY entries. The body is `{}`.",
        // Nothing to say yet, but a JSON object all the same, like every POST: anything else is a 400.
        body: z.object({}).strict().meta({ example: {} }),
        response: {
          201: AuditCheckpoint.meta({ description: "The signed checkpoint" }),
          ...problems([400, 401, 403, 409, 413, 415, 429, 503], {
            403: { description: "`forbidden`: only an admin key may sign the head" },
            409: { description: "`conflict`: the audit log is empty", examples: [{ summary: "Empty log", code: "conflict", detail: "the audit log is empty: there is no head to sign yet" }] },
          }),
        },
      },
    },
    async (request, reply) => reply.code(201).send(await createCheckpoint(db.sql, actorOf(request))),
  );

  app.get(
    "/audit/checkpoints",
    {
      config: { role: "reader" },
      schema: {
        operationId: "listAuditCheckpoints",
        tags: ["audit"],
        summary: "The signed checkpoints, newest first",
        querystring: Pagination.strict(),
        response: {
          200: AuditCheckpointPage.meta({ description: "One page of checkpoints, newest first" }),
          ...problems(READ, { 400: invalid([{ path: "querystring.cursor", message: "is not a cursor this list returned" }], "the request querystring is not valid") }),
        },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const beforeId = decodeCursor(cursor, (s) => UUID_PATTERN.test(s));
      return pageOf(await listCheckpoints(db.sql, { beforeId, limit: limit + 1 }), limit, (c) => c.id);
    },
  );
};
