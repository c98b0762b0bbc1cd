// Defences against hostile or broken clients that sit below the routes (docs/http-hardening.md):
// - JSON bodies must be valid UTF-8: decoding would turn every bad byte into U+FFFD, so "u-\xff" and
//   "u-\xfe" would become one id. Checked on the raw bytes (node's isUtf8, SIMD: far below the cost of
//   JSON.parse) before the same JSON.parse Fastify uses.
// - URLs: at most MAX_URL_LENGTH characters (414), and a query string whose percent-escapes decode to
//   UTF-8 (400); the path's own escapes are checked by the router (frameworkErrors), raw bytes past ASCII
//   by node's HTTP parser (400).
// - Socket-level errors node answers before any request exists (a request not received within
//   REQUEST_TIMEOUT_MS → 408, headers past maxHeaderSize → 431, unparseable HTTP → 400) are written as
//   problem+json with a request id, by the clientErrorHandler below.
// - Security headers (@fastify/helmet) with a CSP for a JSON API; Swagger UI sets its own (openapi.ts).
import { randomUUID } from "node:crypto";
import { isUtf8 } from "node:buffer";
import type { Socket } from "node:net";
import helmet from "@fastify/helmet";
import type { FastifyInstance, FastifyReply } from "fastify";
import fp from "fastify-plugin";
import { type ProblemCode, ProblemError, problemBody, validationFailed } from "../problems.js";

/** No URL of the API comes near this (ids are UUIDs, cursors at most 200 characters). */
export const MAX_URL_LENGTH = 8192;
/** node's default maxHeaderSize (request line and all headers together), stated so it is documented. */
export const MAX_HEADER_BYTES = 16 * 1024;

/**
 * Swagger UI's CSP (for /docs and its static files; every other answer gets the API's `default-src 'none'`):
 * its scripts and styles come from /docs/static, the logo is a data: image, "Try it out" calls this origin.
 * Unlike @fastify/swagger-ui's `staticCSP: true`, no `upgrade-insecure-requests`: it would send a browser
 * reading the docs over plain http (the default, 127.0.0.1:3000) to https for every static file.
 * 'unsafe-inline' styles only: Swagger UI sets style attributes; no inline script is allowed.
 */
export const DOCS_CSP =
  "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; form-action 'self'; " +
  "frame-ancestors 'none'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; " +
  "style-src 'self' 'unsafe-inline'";

/** The reply each socket is busy with, so a socket-level error can reuse its request id and not interrupt a response. */
const inFlight = new WeakMap<Socket, FastifyReply>();

/**
 * Fastify's clientErrorHandler: node found the request unusable before (or while) Fastify handled it. The
 * answer is written on the socket by hand (there is no reply object), then the connection is closed.
 */
export function clientErrorHandler(requestTimeoutMs: number) {
  return function onClientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket) {
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    const reply = inFlight.get(socket);
    let code: ProblemCode;
    let detail: string;
    if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      code = "request_timeout";
      detail = `the request (headers and body) was not received within ${requestTimeoutMs} ms`;
    } else if (error.code === "HPE_HEADER_OVERFLOW") {
      code = "headers_too_large";
      detail = `the request line and headers are larger than ${MAX_HEADER_BYTES} bytes`;
    } else {
      code = "validation_failed";
      detail = "the request is not valid HTTP/1.1";
    }
    this.log.debug({ err: error }, "client error");
    // Never write into a response that has already started: the peer would read garbage.
    if (socket.writable && !reply?.raw.headersSent) {
      const problem = problemBody(code, detail, reply?.request.url);
      const body = JSON.stringify(problem);
      socket.write(
        `HTTP/1.1 ${problem.status} ${problem.title}\r\n` +
          "Content-Type: application/problem+json\r\n" +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          `X-Request-Id: ${reply?.request.id ?? randomUUID()}\r\n` +
          "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n" +
          body,
      );
    }
    socket.destroy(error);
  };
}

export const hardeningPlugin = fp(
  async function hardening(app: FastifyInstance) {
    app.removeContentTypeParser("application/json");
    const parseJson = app.getDefaultJsonParser("error", "error");
    app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body: Buffer, done) => {
      if (!isUtf8(body)) {
        done(validationFailed([{ path: "body", message: "is not valid UTF-8" }], "the request body is not valid UTF-8"), undefined);
        return;
      }
      parseJson(request, body.toString("utf8"), done);
    });

    app.addHook("onRequest", async (request, reply) => {
      const socket = request.raw.socket as Socket | undefined;
      if (socket) inFlight.set(socket, reply);
      const url = request.url;
      if (url.length > MAX_URL_LENGTH) throw new ProblemError("uri_too_long", `the URL is longer than ${MAX_URL_LENGTH} characters`);
      const q = url.indexOf("?");
      if (q >= 0 && url.includes("%", q)) {
        // The query parser keeps an escape it cannot decode as the literal text: "%FF" would equal a sent "%25FF".
        try {
          decodeURIComponent(url.slice(q + 1));
        } catch {
          throw validationFailed([{ path: "querystring", message: "is not valid percent-encoded UTF-8" }]);
        }
      }
    });
    app.addHook("onResponse", async (request, reply) => {
      const socket = request.raw.socket as Socket | undefined;
      if (socket && inFlight.get(socket) === reply) inFlight.delete(socket);
    });

    // A JSON API: nothing it answers is a page to render, frame or run scripts in.
    await app.register(helmet, {
      global: true,
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
      },
      xFrameOptions: { action: "deny" },
      referrerPolicy: { policy: "no-referrer" },
    });
  },
  { name: "hardening" },
);
