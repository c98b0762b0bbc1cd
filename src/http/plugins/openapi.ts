// The OpenAPI 3.1 document, generated from the route schemas, served at /openapi.json with Swagger UI at
// /docs. The same document is committed as openapi/openapi.json (`npm run openapi`; a test compares).
import swagger, { type SwaggerTransform, type SwaggerTransformObject } from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { DOCS_CSP } from "./hardening.js";
import { createJsonSchemaTransform, createJsonSchemaTransformObject } from "fastify-type-provider-zod";
import type { JSONSchema } from "zod/v4/core";

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
overloaded process or an unreachable database → 503 with Retry-After.

**Hostile input** (docs/http-hardening.md). JSON bodies must be valid UTF-8 and nest at most 32 levels; instants have at
most 9 fraction digits; query strings must percent-encode UTF-8 (→ 400). Too many failed authentications from one
address in a minute → 429 with Retry-After; a request not fully received in time → 408 \`request_timeout\`; a path
parameter over 100 characters or a URL over 8 KiB → 414 \`uri_too_long\`; headers over 16 KiB → 431
\`headers_too_large\`; a known path with another method → 405 \`method_not_allowed\` with \`Allow\`. Answers that need a
key carry \`Cache-Control: no-store\`.`;

// How the zod schemas become the document (docs/openapi.md). Request parts (body, querystring, params,
// headers) are converted from the zod *input* side and responses from the *output* side, so a defaulted field
// is optional in a request and present in a response; a named schema whose two sides differ is two
// components (ContractTermsInput, ContractTerms), one whose sides agree is one.

type Json = Record<string, any>;

/** JSON Schema tweaks for every converted node; the 3.1 part of fastify-type-provider-zod's own override. */
function override(io: "input" | "output") {
  return (ctx: { zodSchema: { _zod: { def: { type: string } } }; jsonSchema: JSONSchema.BaseSchema }) => {
    const j = ctx.jsonSchema as Json;
    const type = ctx.zodSchema._zod.def.type;
    if (type === "union" && Array.isArray(j.anyOf)) j.anyOf = j.anyOf.filter((s: Json) => Object.keys(s).length > 0);
    if (type === "date" && io === "output") Object.assign(j, { type: "string", format: "date-time" });
    if (type === "undefined" && io === "output") j.type = "null";
    // z.number().int() says "a safe integer" as ±9007199254740991 bounds, which Swagger UI then shows as the
    // example value: the bounds say nothing to a client, so they are left out.
    if (j.minimum === Number.MIN_SAFE_INTEGER) delete j.minimum;
    if (j.maximum === Number.MAX_SAFE_INTEGER) delete j.maximum;
    // A field whose runtime schema is looser than what it carries (`.meta({ "x-component": "ContractTerms" })`
    // on a z.unknown()) is documented as that component.
    if (typeof j["x-component"] === "string") {
      const name = io === "input" ? `${j["x-component"]}Input` : j["x-component"];
      for (const k of Object.keys(j)) delete j[k];
      j.$ref = `#/components/schemas/${name}`;
    }
  };
}

const zodTransform = createJsonSchemaTransform({ zodToJsonConfig: { override: override("input") } });
const zodTransformOutput = createJsonSchemaTransform({ zodToJsonConfig: { override: override("output") } });
// (Components get the output override: no named input component holds an `x-component` field.)
const zodTransformObject = createJsonSchemaTransformObject({ zodToJsonConfig: { override: override("output") } });

/** "idempotency-key" → "Idempotency-Key": Fastify validates lower-cased header names; clients read the usual spelling. */
const headerName = (name: string) => name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());

const transform: SwaggerTransform = (document) => {
  // The zod transform takes one override for both sides: convert the requests with the input one and the
  // responses with the output one.
  const input = zodTransform(document) as { schema: Json; url: string };
  const response = (document.schema as Json | undefined)?.response;
  const output = document.schema && response ? (zodTransformOutput({ ...document, schema: { response } as never }) as { schema: Json }) : undefined;
  const schema: Json = { ...input.schema, ...(output ? { response: output.schema.response } : {}) };
  if (schema.hide) return { schema, url: input.url };

  // Content-type responses (the problem+json ones) keep their media examples and response headers, which
  // the zod transform drops.
  for (const [status, given] of Object.entries((response ?? {}) as Json)) {
    const made = schema.response?.[status];
    if (!made || !given || typeof given !== "object" || !("content" in given)) continue;
    if (given.headers) made.headers = given.headers;
    for (const [type, media] of Object.entries(given.content as Json)) {
      const { schema: _schema, ...extra } = media as Json;
      Object.assign(made.content[type], extra);
    }
  }
  if (schema.body) dropDefaults(schema.body);
  if (schema.headers?.properties) {
    const h = schema.headers;
    h.properties = Object.fromEntries(Object.entries(h.properties as Json).map(([k, v]) => [headerName(k), v]));
    if (Array.isArray(h.required)) h.required = h.required.map(headerName);
  }
  // Public routes (no role: /health, /ready) need no key: no lock in Swagger UI.
  if (!document.route.config?.role && schema.security === undefined) schema.security = [];
  return { schema, url: input.url };
};

/**
 * Drops `default` from a request body's schemas (not from parameters). openapi-typescript (defaultNonNullable,
 * on by default) types a property with a default as always present, so a generated client could not leave out
 * discountPercent, cap or prepaidCredits; every such field says its default in its description instead.
 */
function dropDefaults(node: unknown): void {
  if (Array.isArray(node)) for (const x of node) dropDefaults(x);
  else if (node && typeof node === "object") {
    const j = node as Json;
    delete j.default;
    if (j.properties && typeof j.properties === "object") for (const v of Object.values(j.properties)) dropDefaults(v);
    for (const k of ["items", "additionalProperties", "not", "anyOf", "oneOf", "allOf", "prefixItems"]) if (j[k] && typeof j[k] === "object") dropDefaults(j[k]);
  }
}

/** Walks every $ref in the document. */
function eachRef(node: unknown, visit: (holder: Json) => void): void {
  if (Array.isArray(node)) for (const x of node) eachRef(x, visit);
  else if (node && typeof node === "object") {
    if (typeof (node as Json).$ref === "string") visit(node as Json);
    for (const v of Object.values(node)) eachRef(v, visit);
  }
}

const transformObject: SwaggerTransformObject = (document) => {
  const doc = zodTransformObject(document) as Json;
  const schemas: Json = doc.components?.schemas ?? {};
  const ref = (name: string) => `#/components/schemas/${name}`;
  // One component where the input and output sides agree (Instant, Problem): XInput → X.
  const same = new Set(
    Object.keys(schemas).filter((n) => n.endsWith("Input") && schemas[n.slice(0, -5)] && JSON.stringify(schemas[n]) === JSON.stringify(schemas[n.slice(0, -5)])),
  );
  eachRef(doc, (h) => {
    const name = String(h.$ref).slice(ref("").length);
    if (same.has(name)) h.$ref = ref(name.slice(0, -5));
  });
  for (const n of same) delete schemas[n];
  for (const n of Object.keys(schemas)) if (n.endsWith("Input")) dropDefaults(schemas[n]);
  // Only the components something refers to (zod registers both sides of every named schema).
  const used = new Set<string>();
  const mark = (node: unknown) =>
    eachRef(node, (h) => {
      const name = String(h.$ref).slice(ref("").length);
      if (!used.has(name) && schemas[name]) {
        used.add(name);
        mark(schemas[name]);
      }
    });
  mark(doc.paths);
  for (const n of Object.keys(schemas)) if (!used.has(n)) delete schemas[n];
  // Components in a stable order: alphabetical.
  doc.components.schemas = Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b)));
  return doc as ReturnType<SwaggerTransformObject>;
};

export const openapiPlugin = fp(
  async function openapi(app: FastifyInstance) {
    await app.register(swagger, {
      openapi: {
        openapi: "3.1.0",
        info: { title: "Contract-aware rating service", version: "1.0.0", description: DESCRIPTION },
        servers: [
          { url: "/", description: "The server that serves this document" },
          { url: "http://127.0.0.1:3000", description: "Local `npm start` (HOST 127.0.0.1, PORT 3000)" },
        ],
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
          { name: "billing-runs", description: "Month-end for the whole book in one run" },
          { name: "alerts", description: "Contract thresholds that fired (once per period)" },
          { name: "webhooks", description: "Signed, durable event delivery (Standard Webhooks)" },
          { name: "health", description: "Liveness and readiness" },
        ],
      },
      transform,
      transformObject,
    });
    // Swagger UI's own CSP replaces the API's strict one on /docs (hardening.ts).
    await app.register(swaggerUi, { routePrefix: "/docs", staticCSP: DOCS_CSP });
    app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  },
  { name: "openapi" },
);
