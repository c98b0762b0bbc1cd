// The platform around the routes: health, auth, request ids, limits, load shedding, error shapes, config.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { auth, useTestApp, expectProblem } from "../helpers/app.js";

const contract = {
  customerId: "platform-cust",
  name: "Platform test",
  currency: "USD",
  billingPeriod: "monthly",
  startDate: "2026-01-01",
  terms: { meters: [] },
};


describe("the default app", () => {
  const t = useTestApp();

  it("/health and /ready are public", async () => {
    const health = await t.app.inject({ method: "GET", url: "/health" });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: "ok" });
    const ready = await t.app.inject({ method: "GET", url: "/ready" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ready" });
  });

  it("401 problem+json without a key, with an unknown key, or with a malformed header", async () => {
    const none = expectProblem(await t.app.inject({ method: "GET", url: "/v1/contracts" }), 401, "unauthorized");
    expect(none.detail).toMatch(/Bearer/);
    const wrong = await t.app.inject({ method: "GET", url: "/v1/contracts", headers: { authorization: "Bearer not-a-key" } });
    expectProblem(wrong, 401, "unauthorized");
    expect(wrong.headers["www-authenticate"]).toMatch(/^Bearer/);
    expectProblem(await t.app.inject({ method: "GET", url: "/v1/contracts", headers: { authorization: "Basic dXNlcjpwdw==" } }), 401, "unauthorized");
    // An unauthenticated write is refused before its body is looked at.
    expectProblem(await t.app.inject({ method: "POST", url: "/v1/contracts", payload: contract }), 401, "unauthorized");
  });

  it("403 problem+json on the wrong role; the right role passes", async () => {
    const res = await t.post("/v1/contracts", contract, "reader");
    const body = expectProblem(res, 403, "forbidden");
    expect(body.detail).toMatch(/reader/);
    // Approvers resolve and issue; they do not write contracts (separation of duties).
    expectProblem(await t.post("/v1/contracts", contract, "approver"), 403, "forbidden");
    expect((await t.get("/v1/contracts", "reader")).statusCode).toBe(200);
    expect((await t.get("/v1/contracts", "approver")).statusCode).toBe(200);
    const created = await t.post("/v1/contracts", contract, "writer");
    expect(created.statusCode, created.body).toBe(201);
    // Issuing and resolving need the approver role: a writer is refused before anything else happens.
    const writerIssuing = await t.app.inject({
      method: "POST",
      url: `/v1/contracts/${created.json().id}/true-ups`,
      payload: { calculationId: "0190a4b2-0000-7000-8000-000000000000" },
      headers: { ...auth("writer"), "idempotency-key": "k1" },
    });
    expectProblem(writerIssuing, 403, "forbidden");
    const writerResolving = await t.app.inject({
      method: "POST",
      url: "/v1/exceptions/0190a4b2-0000-7000-8000-000000000000/resolve",
      payload: { decision: "approve", note: "self-approval" },
      headers: auth("writer"),
    });
    expect(expectProblem(writerResolving, 403, "forbidden").detail).toMatch(/approver/);
    // A reader cannot preview (it computes and stores a calculation).
    expectProblem(
      await t.post(`/v1/contracts/${created.json().id}/true-ups/preview`, {}, "reader"),
      403,
      "forbidden",
    );
  });

  it("echoes a valid x-request-id and generates one otherwise", async () => {
    const given = await t.app.inject({ method: "GET", url: "/health", headers: { "x-request-id": "abc-123.DEF:9" } });
    expect(given.headers["x-request-id"]).toBe("abc-123.DEF:9");
    const generated = await t.app.inject({ method: "GET", url: "/health" });
    expect(generated.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    // A header that could forge log lines is replaced, not echoed.
    const hostile = await t.app.inject({ method: "GET", url: "/health", headers: { "x-request-id": "a b\tc" } });
    expect(hostile.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    // Errors carry it too.
    const err = await t.app.inject({ method: "GET", url: "/v1/contracts", headers: { "x-request-id": "req-401" } });
    expect(err.statusCode).toBe(401);
    expect(err.headers["x-request-id"]).toBe("req-401");
  });

  it("bad JSON, a wrong content type and an empty body are 4xx problem+json", async () => {
    const badJson = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: '{"customerId": "x",',
      headers: { ...auth("writer"), "content-type": "application/json" },
    });
    expectProblem(badJson, 400, "validation_failed");

    const xml = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: "<contract/>",
      headers: { ...auth("writer"), "content-type": "application/xml" },
    });
    expectProblem(xml, 415, "unsupported_media_type");

    const text = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: JSON.stringify(contract),
      headers: { ...auth("writer"), "content-type": "text/plain" },
    });
    expectProblem(text, 415, "unsupported_media_type");

    const emptyJson = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: "",
      headers: { ...auth("writer"), "content-type": "application/json" },
    });
    expect(emptyJson.statusCode).toBeGreaterThanOrEqual(400);
    expect(emptyJson.statusCode).toBeLessThan(500);
    expect(emptyJson.headers["content-type"]).toMatch(/^application\/problem\+json/);

    const noBody = await t.app.inject({ method: "POST", url: "/v1/contracts", headers: auth("writer") });
    const p = expectProblem(noBody, 400, "validation_failed");
    expect(p.errors.length).toBeGreaterThan(0);

    const nullBody = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: "null",
      headers: { ...auth("writer"), "content-type": "application/json" },
    });
    expectProblem(nullBody, 400, "validation_failed");

    const arrayBody = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: "[1,2]",
      headers: { ...auth("writer"), "content-type": "application/json" },
    });
    expectProblem(arrayBody, 400, "validation_failed");
  });

  it("an unknown route is a 404 problem+json; a known path with another method is a 405 with Allow", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/nope?x=1" });
    const body = expectProblem(res, 404, "not_found");
    expect(body.detail).toContain("/v1/nope");
    const del = await t.app.inject({ method: "DELETE", url: "/v1/contracts", headers: auth() });
    expectProblem(del, 405, "method_not_allowed");
    expect(del.headers.allow).toBe("GET, HEAD, POST");
  });

  it("the body limit applies to the default configuration too (5 MiB)", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: JSON.stringify({ ...contract, name: "x".repeat(6 * 1024 * 1024) }),
      headers: { ...auth("writer"), "content-type": "application/json" },
    });
    expectProblem(res, 413, "payload_too_large");
  });
});

describe("limits", () => {
  const t = useTestApp({ BODY_LIMIT_BYTES: "2048", RATE_LIMIT_PER_MINUTE: "5" });

  it("413 payload_too_large above BODY_LIMIT_BYTES; a body just below passes the limit", async () => {
    const big = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: JSON.stringify({ ...contract, name: "x".repeat(3000) }),
      headers: { ...auth("admin"), "content-type": "application/json" },
    });
    expectProblem(big, 413, "payload_too_large");
    const small = await t.app.inject({
      method: "POST",
      url: "/v1/contracts",
      payload: JSON.stringify({ ...contract, customerId: "limits-small", name: "x".repeat(150) }),
      headers: { ...auth("admin"), "content-type": "application/json" },
    });
    expect(small.statusCode, small.body).toBe(201);
  });

  it("429 with Retry-After once a key passes RATE_LIMIT_PER_MINUTE; another key is not limited; public routes are not", async () => {
    // The admin key has used 2 of its 5 requests above.
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) seen.push((await t.get("/v1/contracts", "reader")).statusCode);
    expect(seen.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    const limited = await t.get("/v1/contracts", "reader");
    const body = expectProblem(limited, 429, "rate_limited");
    expect(body.detail).toMatch(/5 requests/);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(limited.headers["retry-after"])).toBeLessThanOrEqual(60);

    const other = await t.get("/v1/contracts", "writer");
    expect(other.statusCode).toBe(200);
    for (let i = 0; i < 10; i++) expect((await t.app.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
  });
});

describe("overload", () => {
  let overloaded = false;
  const t = useTestApp({}, { isOverloaded: () => overloaded });

  it("503 unavailable with Retry-After while overloaded; health stays reachable; recovers after", async () => {
    overloaded = true;
    const res = await t.get("/v1/contracts", "reader");
    expectProblem(res, 503, "unavailable");
    expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
    const post = await t.post("/v1/contracts", contract, "writer");
    expectProblem(post, 503, "unavailable");
    expect((await t.app.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
    overloaded = false;
    expect((await t.get("/v1/contracts", "reader")).statusCode).toBe(200);
  });
});

describe("configuration", () => {
  const expectConfigError = (env: Record<string, string>, variable: string) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(variable);
    return (error as Error).message;
  };

  it("a bad value throws ConfigError naming the variable", () => {
    expectConfigError({ PORT: "abc" }, "PORT");
    expectConfigError({ PORT: "70000" }, "PORT");
    expect(expectConfigError({ API_KEYS: "just-a-secret" }, "API_KEYS")).toMatch(/name:role:secret/);
    expect(expectConfigError({ API_KEYS: "ci:superuser:s3cret-long" }, "API_KEYS")).toMatch(/role/);
    expect(expectConfigError({ API_KEYS: "ci:admin:short" }, "API_KEYS")).toMatch(/8 characters/);
    expectConfigError({ LOG_LEVEL: "loud" }, "LOG_LEVEL");
    expectConfigError({ DATABASE_URL: "mysql://x" }, "DATABASE_URL");
    expectConfigError({ BODY_LIMIT_BYTES: "12" }, "BODY_LIMIT_BYTES");
    expectConfigError({ RATE_LIMIT_PER_MINUTE: "0" }, "RATE_LIMIT_PER_MINUTE");
    expectConfigError({ DB_POOL_SIZE: "1.5" }, "DB_POOL_SIZE");
    // Every bad variable is named at once.
    const all = expectConfigError({ PORT: "abc", LOG_LEVEL: "loud" }, "PORT");
    expect(all).toContain("LOG_LEVEL");
  });

  it("defaults and good values parse", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ PORT: 3000, HOST: "127.0.0.1", DATA_DIR: "./.data", API_KEYS: [], LOG_LEVEL: "info", DB_POOL_SIZE: 10 });
    expect(c.DATABASE_URL).toBeUndefined();
    const k = loadConfig({ API_KEYS: "billing-sync:writer:4f9c0000aa, ci:admin:s3cret:with:colons", PORT: "0" });
    expect(k.PORT).toBe(0);
    expect(k.API_KEYS).toEqual([
      { name: "billing-sync", role: "writer", secret: "4f9c0000aa" },
      { name: "ci", role: "admin", secret: "s3cret:with:colons" },
    ]);
  });
});
