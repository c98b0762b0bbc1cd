// Text PostgreSQL can store as given: no NUL character (text and jsonb columns reject it: SQLSTATE 22021,
// 22P05) and no unpaired UTF-16 surrogate (UTF-8 cannot encode one; it would silently become U+FFFD, so two
// different ids would become the same one). Checked once, before validation, for every JSON body, query
// string, route parameter and the Idempotency-Key header, naming every bad path in one 400. Usage ingestion
// (config.checksOwnText) checks its events in its own one-pass validation instead. Bodies nested deeper than
// MAX_JSON_DEPTH are refused here too, before any recursion.
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { MAX_JSON_DEPTH, deeperThan } from "../../domain/canonical-json.js";
import { validationFailed } from "../problems.js";

const UNSTORABLE = /\u0000|\p{Cs}/u;
export const UNSTORABLE_TEXT_MESSAGE = "must not contain NUL characters or unpaired UTF-16 surrogates";

const MAX_REPORTED = 50;

export function unstorableTextPaths(value: unknown, path: string, out: string[] = [], depth = 0): string[] {
  if (out.length >= MAX_REPORTED || depth > 64) return out;
  if (typeof value === "string") {
    if (UNSTORABLE.test(value)) out.push(path);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) unstorableTextPaths(value[i], `${path}.${i}`, out, depth + 1);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (UNSTORABLE.test(k)) out.push(`${path}.${JSON.stringify(k)}`);
      unstorableTextPaths(v, `${path}.${k}`, out, depth + 1);
    }
  }
  return out;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route validates text itself (usage ingestion's one-pass validation). */
    checksOwnText?: boolean;
  }
}

export const storableTextPlugin = fp(
  async function storableText(app: FastifyInstance) {
    app.addHook("preValidation", async (request) => {
      const bad: string[] = [];
      if (!request.routeOptions.config?.checksOwnText) {
        // No request body of the API nests this deep; refusing it here, before anything recurses into it
        // (this walk, the schema, canonicalJson), keeps a hostile body from overflowing the stack.
        const deep = deeperThan(request.body, MAX_JSON_DEPTH, "body");
        if (deep)
          throw validationFailed([{ path: deep.length > 200 ? `${deep.slice(0, 200)}…` : deep, message: `must not nest objects and arrays more than ${MAX_JSON_DEPTH} levels deep` }]);
        unstorableTextPaths(request.body, "body", bad);
      }
      unstorableTextPaths(request.query, "querystring", bad);
      unstorableTextPaths(request.params, "params", bad);
      const key = request.headers["idempotency-key"];
      if (typeof key === "string" && UNSTORABLE.test(key)) bad.push("headers.idempotency-key");
      if (bad.length > 0) throw validationFailed(bad.map((path) => ({ path, message: UNSTORABLE_TEXT_MESSAGE })));
    });
  },
  { name: "storable-text" },
);
