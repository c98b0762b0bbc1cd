// The OpenAPI 3.1 document, generated from the route schemas, served at /openapi.json with Swagger UI at
// /docs. The same document is committed as openapi/openapi.json (`npm run openapi`; a test compares).
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { jsonSchemaTransform, jsonSchemaTransformObject } from "fastify-type-provider-zod";

const DESCRIPTION = `Contract-aware rating service: stores contracts and amendments, ingests usage exactly once,
previews true-ups against the contract, routes exceptions for approval, issues invoices and credit memos exactly once,
and keeps a hash-chained audit log.

**Conventions.** Money and quantities are decimal strings, never JSON numbers. Periods are half-open [start, end) and
computed in the contract's IANA time zone. Errors are RFC 9457 problem+json with a stable \`code\`; \`type\` is
\`/problems/<code>\`. Lists are cursor-paginated: \`?limit=\` (default 50, max 500) and \`?cursor=\`, answering
\`{ data, nextCursor }\`.

**Auth.** \`Authorization: Bearer <key>\`. Roles: \`reader\` (GET), \`writer\` (contracts, usage, previews; also reads),
\`approver\` (resolve exceptions, issue documents; also reads), \`admin\` (all). Writers cannot approve, so the person
who prepares a true-up is not the one who releases it.

**Limits.** Bodies over the size limit → 413; more requests per minute than a key's limit → 429 with Retry-After; an
overloaded process or an unreachable database → 503 with Retry-After.`;

export const openapiPlugin = fp(
  async function openapi(app: FastifyInstance) {
    await app.register(swagger, {
      openapi: {
        openapi: "3.1.0",
        info: { title: "Contract-aware rating service", version: "1.0.0", description: DESCRIPTION },
        components: {
          securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An API key" } },
        },
        security: [{ bearer: [] }],
        tags: [
          { name: "contracts", description: "Contracts and their effective-dated versions" },
          { name: "usage", description: "Usage events, exactly once" },
          { name: "true-ups", description: "Previews, calculations and issued documents" },
          { name: "exceptions", description: "What needs a human decision before money moves" },
          { name: "documents", description: "Invoices and credit memos (immutable)" },
          { name: "audit", description: "The hash-chained audit log" },
          { name: "health", description: "Liveness and readiness" },
        ],
      },
      transform: jsonSchemaTransform,
      transformObject: jsonSchemaTransformObject,
    });
    await app.register(swaggerUi, { routePrefix: "/docs" });
    app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  },
  { name: "openapi" },
);
