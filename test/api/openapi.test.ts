// The OpenAPI document served at /openapi.json is the committed openapi/openapi.json (regenerate with
// `npm run openapi`), and Swagger UI is served at /docs.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";

const FILE = resolve(import.meta.dirname, "../../openapi/openapi.json");

// No load shedding: a busy test machine must not turn an example into a 503.
const t = useTestApp({}, { maxEventLoopDelayMs: 60_000 });

describe("OpenAPI", () => {
  it("GET /openapi.json is public and equals the committed openapi/openapi.json", async () => {
    const res = await t.app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const served = `${JSON.stringify(res.json(), null, 2)}\n`;
    const committed = readFileSync(FILE, "utf8");
    if (served !== committed) {
      const a = served.split("\n");
      const b = committed.split("\n");
      const line = a.findIndex((l, i) => l !== b[i]);
      expect.fail(
        `openapi/openapi.json is stale: run \`npm run openapi\` and commit the file.\n` +
          `first difference at line ${line + 1}:\n  served:    ${a[line]}\n  committed: ${b[line]}`,
      );
    }
  });

  it("is OpenAPI 3.1 with bearer auth, and every operation has a summary, a tag and problem+json-shaped errors", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    const ops = Object.entries<Record<string, any>>(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([m, op]) => ({ path, m, op })));
    expect(ops.length).toBeGreaterThan(5);
    for (const { path, m, op } of ops) {
      expect(op.summary, `${m} ${path} summary`).toBeTruthy();
      expect(op.tags?.length, `${m} ${path} tags`).toBeGreaterThan(0);
      if (path.startsWith("/v1/")) expect(Object.keys(op.responses), `${m} ${path} documents 401`).toContain("401");
    }
  });

  it("the contract routes carry request and response examples", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    const json = (x: any) => x?.content?.["application/json"];
    for (const [path, method, status] of [
      ["/v1/contracts", "post", "201"],
      ["/v1/contracts", "get", "200"],
      ["/v1/contracts/{id}", "get", "200"],
      ["/v1/contracts/{id}/amendments", "post", "201"],
      ["/v1/contracts/{id}/external-billings", "post", "201"],
    ] as const) {
      const op = doc.paths[path][method];
      if (method === "post") expect(json(op.requestBody)?.example ?? json(op.requestBody)?.examples, `${method} ${path} body example`).toBeTruthy();
      expect(json(op.responses[status])?.example ?? json(op.responses[status])?.examples, `${method} ${path} ${status} example`).toBeTruthy();
    }
  });

  it("the request examples are accepted by the routes' own validation", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    const example = doc.paths["/v1/contracts"].post.requestBody.content["application/json"].example;
    const res = await t.post("/v1/contracts", example, "writer");
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json().id;
    for (const path of ["/v1/contracts/{id}/amendments", "/v1/contracts/{id}/external-billings"]) {
      const ex = doc.paths[path].post.requestBody.content["application/json"].example;
      const r = await t.post(path.replace("{id}", id), ex, "writer");
      expect(r.statusCode, `${path}: ${r.body}`).toBe(201);
    }
  });

  it("/docs serves Swagger UI (HTML), publicly", async () => {
    let res = await t.app.inject({ method: "GET", url: "/docs" });
    if (res.statusCode >= 300 && res.statusCode < 400) res = await t.app.inject({ method: "GET", url: String(res.headers.location) });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/html/);
    expect(res.body).toMatch(/swagger/i);
    const init = await t.app.inject({ method: "GET", url: "/docs/static/swagger-initializer.js" });
    expect(init.statusCode).toBe(200);
  });
});
