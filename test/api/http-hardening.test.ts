// Bad input and hostile clients (issue 8, docs/http-hardening.md): deep JSON, bytes that are not UTF-8, instants
// past nanoseconds, guessing keys, slow clients, a stuck database, and what the router and node refuse on their
// own. Through the real HTTP stack; real sockets where inject() cannot show it (timeouts, raw bytes, header sizes).
import net from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { buildApp } from "../../src/app.js";
import { fixedClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config.js";
import { type Database, connectDatabase } from "../../src/db/client.js";
import { isDatabaseTimeout } from "../../src/db/errors.js";
import { AuthFailureThrottle } from "../../src/http/plugins/auth.js";
import { CANONICAL_JSON_MAX_DEPTH, JsonDepthError, MAX_JSON_DEPTH, canonicalJson } from "../../src/domain/canonical-json.js";
import { type TestApp, auth, createTestDatabase, expectProblem, keyRing, useTestApp } from "../helpers/app.js";
import { contractBody, uniqueId } from "../helpers/factories.js";

const NOW = "2026-06-15T12:00:00.000Z";
// Load shedding (protection.ts) is not under test here: a busy CI machine must not turn these answers into 503s.
const clock = fixedClock(NOW);
const AN_HOUR_AGO = new Date(Date.parse(NOW) - 3_600_000).toISOString();

/** An evergreen monthly contract (no endDate) with one meter, api_calls at 1. */
const hardeningBody = (over: Record<string, unknown> = {}) =>
  contractBody({
    customerId: uniqueId("hard"),
    name: "Hardening",
    endDate: undefined,
    terms: { meters: [{ metric: "api_calls", pricing: { model: "per_unit", unitPrice: "1" } }] },
    ...over,
  });

/** {"a":{"a":…1…}} with `depth` objects, as JSON text (built as text: JSON.stringify would recurse). */
const nestedText = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

const json = (body: string | Buffer, role: "admin" | "writer" | "reader" = "writer") => ({
  headers: { ...auth(role), "content-type": "application/json" },
  payload: body,
});

// ---------------------------------------------------------------------------------------------------------
// Real sockets

function portOf(app: TestApp["app"]): number {
  const a = app.server.address();
  if (!a || typeof a !== "object") throw new Error("not listening");
  return a.port;
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parseRaw(text: string): RawAnswer {
  const [head = "", ...rest] = text.split("\r\n\r\n");
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body: rest.join("\r\n\r\n") };
}

/**
 * Sends `data` on a new connection, then (if `dribble`) one more byte every 200 ms, and collects everything
 * until the server closes the connection (or `waitMs` passes: generous, the server's limits are short).
 */
function rawRequest(port: number, data: string | Buffer, opts: { dribble?: boolean; waitMs?: number } = {}): Promise<RawAnswer & { closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearInterval(timer);
      clearTimeout(deadline);
      socket.destroy();
      resolve({ ...parseRaw(Buffer.concat(chunks).toString("utf8")), closed });
    };
    const deadline = setTimeout(() => finish(false), opts.waitMs ?? 15_000);
    socket.on("data", (d) => chunks.push(d));
    socket.on("close", () => finish(true));
    socket.on("error", () => undefined);
    socket.write(data);
    if (opts.dribble) timer = setInterval(() => socket.writable && socket.write(" "), 200);
  });
}

const expectRawProblem = (res: RawAnswer, status: number, code: string) => {
  expect(res.status, res.body).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  const body = JSON.parse(res.body);
  expect(body).toMatchObject({ status, code, type: `/problems/${code}` });
  return body;
};

// ---------------------------------------------------------------------------------------------------------

describe("the default app", () => {
  const t = useTestApp({}, { clock, maxEventLoopDelayMs: 60_000 });

  describe("deeply nested JSON → 400 before any recursion", () => {
    it("usage properties 8,000 levels deep (48 KB) name the event's properties; nothing is stored", async () => {
      const cust = uniqueId("deep");
      const deep = nestedText(8000);
      expect(deep.length).toBeGreaterThanOrEqual(48_000);
      const body = `{"events":[{"eventId":"e1","customerId":"${cust}","metric":"api_calls","quantity":"1","timestamp":"${AN_HOUR_AGO}","properties":${deep}}]}`;
      const res = await t.app.inject({ method: "POST", url: "/v1/usage", ...json(body) });
      const problem = expectProblem(res, 400, "validation_failed");
      expect(problem.errors).toEqual([{ path: "body.events.0.properties", message: expect.stringContaining(`${MAX_JSON_DEPTH} levels`) }]);
      const stored = await t.db.pool.query("SELECT count(*)::int AS n FROM usage_events WHERE customer_id = $1", [cust]);
      expect(stored.rows[0].n).toBe(0);
    });

    it(`properties ${MAX_JSON_DEPTH} levels deep are accepted, ${MAX_JSON_DEPTH + 1} are not`, async () => {
      const cust = uniqueId("depth");
      const event = (id: string, depth: number) =>
        `{"eventId":"${id}","customerId":"${cust}","metric":"api_calls","quantity":"1","timestamp":"${AN_HOUR_AGO}","properties":${nestedText(depth)}}`;
      const ok = await t.app.inject({ method: "POST", url: "/v1/usage", ...json(`{"events":[${event("ok", MAX_JSON_DEPTH)}]}`) });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json().accepted).toBe(1);
      const tooDeep = await t.app.inject({ method: "POST", url: "/v1/usage", ...json(`{"events":[${event("deep", MAX_JSON_DEPTH + 1)}]}`) });
      expect(expectProblem(tooDeep, 400, "validation_failed").errors[0].path).toBe("body.events.0.properties");
    });

    it("any other body: contract terms, amendments, voids, a whole body of arrays", async () => {
      const deep = nestedText(10_000);
      const contract = JSON.stringify(hardeningBody()).replace('"unitPrice":"1"', `"unitPrice":${deep}`);
      const p1 = expectProblem(await t.app.inject({ method: "POST", url: "/v1/contracts", ...json(contract) }), 400, "validation_failed");
      expect(p1.errors[0].path).toMatch(/^body\.terms\.meters\.0\.pricing\.unitPrice\.a\.a/);
      expect(p1.errors[0].message).toMatch(/32 levels/);
      const arrays = `${"[".repeat(50_000)}${"]".repeat(50_000)}`;
      expectProblem(await t.app.inject({ method: "POST", url: "/v1/usage/void", ...json(arrays) }), 400, "validation_failed");
      const c = (await t.post("/v1/contracts", hardeningBody(), "writer")).json();
      const amendment = `{"effectiveFrom":"2026-03-01T00:00:00Z","reason":"r","terms":{"meters":[],"x":${deep}}}`;
      expectProblem(await t.app.inject({ method: "POST", url: `/v1/contracts/${c.id}/amendments`, ...json(amendment) }), 400, "validation_failed");
    });

    it("canonicalJson itself refuses past its depth with a typed error (the backstop)", () => {
      let v: unknown = 1;
      for (let i = 0; i < CANONICAL_JSON_MAX_DEPTH; i++) v = [v];
      expect(canonicalJson(v)).toBe(`${"[".repeat(CANONICAL_JSON_MAX_DEPTH)}1${"]".repeat(CANONICAL_JSON_MAX_DEPTH)}`);
      const deeper = JSON.parse(nestedText(20_000));
      expect(() => canonicalJson(deeper)).toThrow(JsonDepthError);
      expect(() => canonicalJson([v])).toThrow(JsonDepthError);
    });
  });

  describe("bytes that are not UTF-8 → 400, never merged into U+FFFD", () => {
    const batch = (ids: Buffer[], cust: string) =>
      Buffer.concat([
        Buffer.from('{"events":['),
        ...ids.flatMap((id, i) => [
          Buffer.from(`${i ? "," : ""}{"eventId":"`),
          id,
          Buffer.from(`","customerId":"${cust}","metric":"api_calls","quantity":"1","timestamp":"${AN_HOUR_AGO}"}`),
        ]),
        Buffer.from("]}"),
      ]);

    it('usage "u-\\xff" and "u-\\xfe" are refused, not stored as one event and a duplicate', async () => {
      const cust = uniqueId("utf8");
      const body = batch([Buffer.from([0x75, 0x2d, 0xff]), Buffer.from([0x75, 0x2d, 0xfe])], cust);
      const problem = expectProblem(await t.app.inject({ method: "POST", url: "/v1/usage", ...json(body) }), 400, "validation_failed");
      expect(problem.errors).toEqual([{ path: "body", message: "is not valid UTF-8" }]);
      const stored = await t.db.pool.query("SELECT count(*)::int AS n FROM usage_events WHERE customer_id = $1", [cust]);
      expect(stored.rows[0].n).toBe(0);
      // Overlong encodings and lone surrogates written as UTF-8 bytes are not UTF-8 either.
      for (const bad of [Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80])])
        expectProblem(await t.app.inject({ method: "POST", url: "/v1/usage", ...json(batch([bad], cust)) }), 400, "validation_failed");
      // Real UTF-8 is fine, however multibyte.
      const ok = await t.app.inject({ method: "POST", url: "/v1/usage", ...json(batch([Buffer.from("u-é"), Buffer.from("u-😀")], cust)) });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toMatchObject({ accepted: 2, duplicates: 0 });
    });

    it("every JSON body is checked (a contract name), whatever charset the content type claims", async () => {
      const [before, after] = JSON.stringify(hardeningBody({ name: "NAME" })).split("NAME") as [string, string];
      const latin1Cafe = Buffer.from([0x43, 0x61, 0x66, 0xe9]); // "Café" in Latin-1
      const res = await t.app.inject({
        method: "POST",
        url: "/v1/contracts",
        headers: { ...auth("writer"), "content-type": "application/json; charset=latin1" },
        payload: Buffer.concat([Buffer.from(before), latin1Cafe, Buffer.from(after)]),
      });
      expect(expectProblem(res, 400, "validation_failed").errors).toEqual([{ path: "body", message: "is not valid UTF-8" }]);
    });

    it("percent-escapes that are not UTF-8 in the query string or the path → 400", async () => {
      const q = expectProblem(await t.get("/v1/contracts?customerId=u-%FF", "reader"), 400, "validation_failed");
      expect(q.errors).toEqual([{ path: "querystring", message: "is not valid percent-encoded UTF-8" }]);
      expectProblem(await t.get("/v1/audit?entityId=%C0%AF", "reader"), 400, "validation_failed");
      expectProblem(await t.get("/v1/contracts?customerId=%zz", "reader"), 400, "validation_failed");
      // "%FF" was kept as the literal text, the same as a correctly sent "%25FF": that one is fine.
      expect((await t.get("/v1/contracts?customerId=u-%25FF", "reader")).statusCode).toBe(200);
      expect((await t.get("/v1/contracts?customerId=u-%C3%A9", "reader")).statusCode).toBe(200);
      const path = await t.app.inject({ method: "GET", url: "/v1/contracts/u-%FF", headers: { ...auth("reader"), "x-request-id": "bad-path-1" } });
      expect(expectProblem(path, 400, "validation_failed").errors).toEqual([{ path: "url", message: "is not valid percent-encoded UTF-8" }]);
      expect(path.headers["x-request-id"]).toBe("bad-path-1");
    });
  });

  describe("instants with more than 9 fraction digits → 400", () => {
    const TEN = "2026-03-01T00:00:00.1234567890Z";
    const NINE = "2026-03-01T00:00:00.123456789Z";

    it("contracts, amendments, external billings, previews, summaries, prepaid grants", async () => {
      const paths = async (res: Awaited<ReturnType<typeof t.app.inject>>) =>
        expectProblem(res, 400, "validation_failed").errors.map((e: { path: string }) => e.path);
      expect(await paths(await t.post("/v1/contracts", hardeningBody({ signedAt: TEN }), "writer"))).toContain("body.signedAt");
      const grant = { id: "g", amount: "1.00", grantedAt: TEN, expiresAt: "2027-01-01T00:00:00Z" };
      expect(
        await paths(await t.post("/v1/contracts", hardeningBody({ terms: { meters: [], prepaidCredits: [grant] } }), "writer")),
      ).toContain("body.terms.prepaidCredits.0.grantedAt");
      const created = await t.post("/v1/contracts", hardeningBody({ signedAt: NINE }), "writer");
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().id;
      expect(await paths(await t.post(`/v1/contracts/${id}/amendments`, { effectiveFrom: TEN, reason: "r", terms: { meters: [] } }, "writer"))).toContain(
        "body.effectiveFrom",
      );
      expect(
        await paths(
          await t.app.inject({
            method: "POST",
            url: `/v1/contracts/${id}/external-billings`,
            headers: auth("writer"),
            payload: { periodStart: "2026-03-01T00:00:00Z", periodEnd: TEN, amount: "1.00", reference: "r" },
          }),
        ),
      ).toContain("body.periodEnd");
      expect(await paths(await t.post(`/v1/contracts/${id}/true-ups/preview`, { periodStart: TEN }, "writer"))).toContain("body.periodStart");
      expect(await paths(await t.get(`/v1/contracts/${id}/usage-summary?at=${TEN}`, "reader"))).toContain("querystring.at");
    });

    it("usage timestamps (the one-pass validation)", async () => {
      const cust = uniqueId("frac");
      const ts = `${AN_HOUR_AGO.slice(0, 19)}.0000000000Z`;
      const res = await t.app.inject({
        method: "POST",
        url: "/v1/usage",
        headers: auth("writer"),
        payload: { events: [{ eventId: "e", customerId: cust, metric: "api_calls", quantity: "1", timestamp: ts }] },
      });
      expect(expectProblem(res, 400, "validation_failed").errors.map((e: { path: string }) => e.path)).toEqual(["body.events.0.timestamp"]);
    });
  });

  describe("framework errors are problem+json with the request id", () => {
    it("405 with Allow for a known path and another method; 404 for unknown paths", async () => {
      const del = await t.app.inject({ method: "DELETE", url: "/v1/contracts", headers: { ...auth(), "x-request-id": "req-405" } });
      expect(expectProblem(del, 405, "method_not_allowed").detail).toMatch(/DELETE/);
      expect(del.headers.allow).toBe("GET, HEAD, POST");
      expect(del.headers["x-request-id"]).toBe("req-405");
      const put = await t.app.inject({ method: "PUT", url: "/v1/contracts/00000000-0000-4000-8000-000000000000/amendments", headers: auth() });
      expectProblem(put, 405, "method_not_allowed");
      expect(put.headers.allow).toBe("POST");
      const nope = await t.app.inject({ method: "GET", url: "/v1/nope", headers: { "x-request-id": "req-404" } });
      expectProblem(nope, 404, "not_found");
      expect(nope.headers["x-request-id"]).toBe("req-404");
      expectProblem(await t.app.inject({ method: "DELETE", url: "/v1/nope" }), 404, "not_found");
    });

    it("414 for a path parameter past maxParamLength or an over-long URL", async () => {
      const param = await t.app.inject({ method: "GET", url: `/v1/contracts/${"a".repeat(150)}`, headers: { ...auth("reader"), "x-request-id": "req-414" } });
      expectProblem(param, 414, "uri_too_long");
      expect(param.headers["x-request-id"]).toBe("req-414");
      const url = await t.get(`/v1/contracts?customerId=${"a".repeat(9000)}`, "reader");
      const body = expectProblem(url, 414, "uri_too_long");
      expect(body.instance.length).toBeLessThan(1100);
    });

    it("a bad URL is a 400", async () => {
      const res = await t.app.inject({ method: "GET", url: "/v1/contracts/%zz", headers: { "x-request-id": "req-bad" } });
      expectProblem(res, 400, "validation_failed");
      expect(res.headers["x-request-id"]).toBe("req-bad");
    });
  });

  describe("security headers", () => {
    it("API answers: a CSP that allows nothing, nosniff, no framing; Cache-Control no-store when a key is needed", async () => {
      for (const res of [
        await t.get("/v1/contracts", "reader"),
        await t.app.inject({ method: "GET", url: "/v1/contracts" }),
        await t.post("/v1/contracts", hardeningBody(), "reader"),
      ]) {
        expect(res.headers["content-security-policy"]).toMatch(/default-src 'none'/);
        expect(res.headers["x-content-type-options"]).toBe("nosniff");
        expect(res.headers["x-frame-options"]).toBe("DENY");
        expect(res.headers["cache-control"], `${res.statusCode}`).toBe("no-store");
      }
      const health = await t.app.inject({ method: "GET", url: "/health" });
      expect(health.headers["x-content-type-options"]).toBe("nosniff");
      expect(health.headers["cache-control"]).toBeUndefined();
    });

    it("/docs: HTML under a CSP that lets Swagger UI load its own scripts and styles, and they load", async () => {
      const docs = await t.app.inject({ method: "GET", url: "/docs" });
      expect(docs.statusCode).toBe(200);
      expect(docs.headers["content-type"]).toMatch(/^text\/html/);
      const csp = String(docs.headers["content-security-policy"]);
      expect(csp).toMatch(/script-src 'self'/);
      expect(csp).toMatch(/style-src 'self'/);
      expect(csp).not.toMatch(/upgrade-insecure-requests/);
      expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
      // Every script and stylesheet the page names is served from /docs/static under the same CSP.
      const assets = [...docs.body.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
      expect(assets.length).toBeGreaterThanOrEqual(3);
      for (const a of assets) {
        const url = new URL(a, "http://x/docs/").pathname;
        const res = await t.app.inject({ method: "GET", url });
        expect(res.statusCode, url).toBe(200);
        expect(res.headers["content-type"], url).toMatch(/javascript|css/);
        expect(res.headers["content-security-policy"], url).toBe(csp);
      }
      // Swagger UI reads the document from ./json.
      expect((await t.app.inject({ method: "GET", url: "/docs/json" })).statusCode).toBe(200);
    });
  });
});

describe("failed authentication is throttled per client address", () => {
  const t = useTestApp({ AUTH_FAILURES_PER_MINUTE: "3" }, { clock, maxEventLoopDelayMs: 60_000 });
  const from = (remoteAddress: string, headers: Record<string, string>) => t.app.inject({ method: "GET", url: "/v1/contracts", headers, remoteAddress });

  it("after 3 failures a minute the address gets 429 with Retry-After, even with a valid key; other addresses do not", async () => {
    const failures: Record<string, string>[] = [{}, { authorization: "Bearer wrong-1" }, { authorization: "Bearer wrong-2" }];
    for (const h of failures)
      expectProblem(await from("10.0.0.1", h), 401, "unauthorized");
    const limited = await from("10.0.0.1", { authorization: "Bearer wrong-3" });
    expect(expectProblem(limited, 429, "rate_limited").detail).toMatch(/failed authentications/);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(limited.headers["retry-after"])).toBeLessThanOrEqual(60);
    expect(limited.headers["cache-control"]).toBe("no-store");
    // A right guess from there is refused too: otherwise the guessing would simply go on.
    expectProblem(await from("10.0.0.1", auth("reader")), 429, "rate_limited");
    // Another address: its valid key works, its wrong key is a plain 401.
    expect((await from("10.0.0.2", auth("reader"))).statusCode).toBe(200);
    expectProblem(await from("10.0.0.2", { authorization: "Bearer wrong" }), 401, "unauthorized");
    // Public routes stay reachable from the throttled address.
    expect((await t.app.inject({ method: "GET", url: "/health", remoteAddress: "10.0.0.1" })).statusCode).toBe(200);
  });

  it("the window ends a minute after the first failure; the addresses tracked are bounded", () => {
    const th = new AuthFailureThrottle(2, 60_000, 3);
    th.fail("a", 0);
    th.fail("a", 1_000);
    expect(th.retryAfter("a", 1_000)).toBe(59);
    expect(th.retryAfter("a", 60_000)).toBe(0);
    th.fail("a", 60_000); // a new window
    expect(th.retryAfter("a", 60_001)).toBe(0);
    for (const x of ["b", "c", "d", "e"]) th.fail(x, 70_000);
    th.fail("e", 70_000);
    expect(th.retryAfter("e", 70_000)).toBe(60);
  });

  it("successes do not count", async () => {
    for (let i = 0; i < 10; i++) expect((await from("10.0.0.3", auth("reader"))).statusCode).toBe(200);
    expectProblem(await from("10.0.0.3", {}), 401, "unauthorized");
  });
});

describe("slow clients and oversized headers (real sockets)", () => {
  const t = useTestApp({ REQUEST_TIMEOUT_MS: "1000" }, { clock, maxEventLoopDelayMs: 60_000 });
  let port: number;
  beforeAll(async () => {
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    port = portOf(t.app);
  });

  it("a body sent a byte at a time is cut off with 408 request_timeout", { timeout: 30_000 }, async () => {
    const head =
      "POST /v1/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-writer-secret\r\nContent-Type: application/json\r\n" +
      "Content-Length: 100000\r\n\r\n{";
    const res = await rawRequest(port, head, { dribble: true });
    expect(res.closed).toBe(true);
    const body = expectRawProblem(res, 408, "request_timeout");
    expect(body.instance).toBe("/v1/usage");
  });

  it("headers sent a byte at a time: 408 too", { timeout: 30_000 }, async () => {
    const res = await rawRequest(port, "GET /v1/contracts HTTP/1.1\r\nHost: x\r\nX-Slow: ", { dribble: true });
    expect(res.closed).toBe(true);
    expectRawProblem(res, 408, "request_timeout");
  });

  it("headers past 16 KiB → 431 headers_too_large; not HTTP at all → 400", { timeout: 30_000 }, async () => {
    const big = await rawRequest(port, `GET /v1/contracts HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expectRawProblem(big, 431, "headers_too_large");
    const garbage = await rawRequest(port, "HELLO\r\n\r\n");
    expectRawProblem(garbage, 400, "validation_failed");
    // A raw byte past ASCII in the URL is refused by node's parser.
    const raw = await rawRequest(port, Buffer.concat([Buffer.from("GET /v1/contracts?customerId=u-"), Buffer.from([0xff]), Buffer.from(" HTTP/1.1\r\nHost: x\r\n\r\n")]));
    expectRawProblem(raw, 400, "validation_failed");
  });

  it("an ordinary request on the same server is unaffected", async () => {
    const res = await rawRequest(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(res.status).toBe(200);
  });
});

describe("a stuck database: statement and lock timeouts → 503", () => {
  let db: Database;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let url: string;
  beforeAll(async () => {
    url = await createTestDatabase();
    db = connectDatabase(url, 4, { statementTimeoutMs: 500 });
    app = await buildApp({ config: loadConfig({ DATA_DIR: "/tmp/unused" }), db, keys: keyRing(), logger: false, clock, maxEventLoopDelayMs: 60_000 });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });

  it("every pooled session has the timeouts", async () => {
    const r = await db.pool.query("SELECT current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l, current_setting('idle_in_transaction_session_timeout') AS i");
    expect(r.rows[0]).toEqual({ s: "500ms", l: "500ms", i: "1min" });
    const slow = await db.pool.query("SELECT pg_sleep(5)").catch((e: unknown) => e);
    expect(isDatabaseTimeout(slow)).toBe(true);
  });

  it("a route blocked on a lock held elsewhere answers 503 unavailable with Retry-After, then recovers", { timeout: 30_000 }, async () => {
    // Another session (as the superuser, so no grant matters) holds the contracts table.
    const admin = new URL(inject("pgAdminUrl"));
    admin.pathname = new URL(url).pathname;
    const holder = new pg.Client({ connectionString: admin.toString() });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE contracts IN ACCESS EXCLUSIVE MODE");
      const started = Date.now();
      const res = await app.inject({ method: "GET", url: "/v1/contracts", headers: auth("reader") });
      expectProblem(res, 503, "unavailable");
      expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      await holder.end();
    }
    expect((await app.inject({ method: "GET", url: "/v1/contracts", headers: auth("reader") })).statusCode).toBe(200);
  });
});
