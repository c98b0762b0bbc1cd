// Liveness and readiness, public: /health says the process is up, /ready that the database answers.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { Problem } from "../schemas/common.js";

export const healthRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.get(
    "/health",
    { schema: { tags: ["health"], summary: "The process is up", response: { 200: z.object({ status: z.literal("ok") }) } } },
    async () => ({ status: "ok" as const }),
  );
  app.get(
    "/ready",
    {
      schema: {
        tags: ["health"],
        summary: "The database is reachable",
        response: { 200: z.object({ status: z.literal("ready") }), 503: Problem },
      },
    },
    async (_request, reply) => {
      try {
        const client = await db.pool.connect();
        try {
          await client.query("SELECT 1");
        } finally {
          client.release();
        }
        return { status: "ready" as const };
      } catch {
        reply.header("Retry-After", "5");
        return reply.code(503).type("application/problem+json").send({
          type: "/problems/unavailable",
          title: "Service unavailable",
          status: 503,
          detail: "the database is unreachable",
          code: "unavailable",
        });
      }
    },
  );
};
