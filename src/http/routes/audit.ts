// Audit routes: read the log, verify the hash chain.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { pgSql } from "../../db/tx.js";
import { listAudit, verifyAudit } from "../../services/audit.js";
import { Pagination, decodeCursor, pageOf, problemResponses } from "../schemas/common.js";
import { AuditPage, AuditVerification } from "../schemas/true-ups.js";

export const auditRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.get(
    "/audit",
    {
      config: { role: "reader" },
      schema: {
        tags: ["audit"],
        summary: "The audit log in order, optionally for one entity",
        description: "Every entry: hash = sha256(prevHash + canonical JSON of {id, seq, at, actor, action, entityType, entityId, payload}).",
        querystring: Pagination.extend({ entityId: z.string().min(1).max(200).optional() }).strict(),
        response: { 200: AuditPage, ...problemResponses },
      },
    },
    async (request) => {
      const { limit, cursor, entityId } = request.query;
      const afterSeq = decodeCursor(cursor, (s) => /^\d{1,18}$/.test(s));
      return pageOf(await listAudit(pgSql(db.pool), { entityId, afterSeq, limit: limit + 1 }), limit, (e) => e.seq);
    },
  );

  app.get(
    "/audit/verify",
    {
      config: { role: "reader" },
      schema: {
        tags: ["audit"],
        summary: "Recompute the hash chain; name the first broken entry",
        response: { 200: AuditVerification, ...problemResponses },
      },
    },
    async () => verifyAudit(pgSql(db.pool)),
  );
};
