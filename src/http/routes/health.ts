// Liveness and readiness, public: /health says the process is up, /ready that the database answers.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { problems } from "../schemas/problem-responses.js";

export const healthRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  // Whoever opens the bare address in a browser lands on the API's documentation (public, not part of the API).
  app.get("/", { schema: { hide: true } }, async (_request, reply) => reply.redirect("/docs", 302));
  app.get(
    "/health",
    {
      schema: {
        operationId: "getHealth",
        tags: ["health"],
        summary: "The process is up",
        description: "Public (no key), not rate limited: for liveness probes.",
        response: { 200: z.object({ status: z.literal("ok") }).meta({ description: "The process is up", examples: [{ status: "ok" }] }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );
  app.get(
    "/ready",
    {
      schema: {
        operationId: "getReadiness",
        tags: ["health"],
        summary: "The database is reachable",
        description: "Public (no key), not rate limited: for readiness probes.",
        response: {
          200: z.object({ status: z.literal("ready") }).meta({ description: "The database answers", examples: [{ status: "ready" }] }),
          ...problems([503], {
            503: {
              description: "`unavailable`: the database is unreachable; retry after `Retry-After` seconds",
              examples: [{ summary: "Database unreachable", code: "unavailable", detail: "the database is unreachable" }],
            },
          }),
        },
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
