// The committed openapi/openapi.json is a document a client can be generated from and trusted (docs/openapi.md):
// Redocly's recommended rules pass, every operation has an operationId, every response a description, every
// problem response a problem+json example, request schemas come from the zod input side (defaulted fields
// optional), and the generated client types (test/generated/api.d.ts) are current (`npm run typecheck`
// compiles test/api/generated-client.test.ts against them).
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { CLIENT_TYPES_FILE, OPENAPI_FILE, clientTypes } from "../../scripts/write-openapi.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const text = readFileSync(OPENAPI_FILE, "utf8");
const doc = JSON.parse(text);
const ops = Object.entries<Record<string, any>>(doc.paths).flatMap(([path, item]) =>
  Object.entries<any>(item).map(([method, op]) => ({ path, method, op, where: `${method.toUpperCase()} ${path}` })),
);
const OFFLINE = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", REDOCLY_SUPPRESS_NOTIFICATIONS: "true" };

describe("openapi/openapi.json", () => {
  it("passes `redocly lint` with the recommended rules (redocly.yaml), offline", async () => {
    const cli = resolve(ROOT, "node_modules/@redocly/cli/bin/cli.js");
    // Exit code 1 on errors: read the JSON report either way.
    const out = await run(process.execPath, [cli, "lint", "openapi/openapi.json", "--format", "json"], { cwd: ROOT, env: OFFLINE, maxBuffer: 64 << 20 }).catch(
      (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
    );
    const report = JSON.parse(out.stdout.slice(out.stdout.indexOf("{"))) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
    };
    const listed = report.problems.map((p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`).join("\n");
    expect(report.totals.errors, listed).toBe(0);
    if (report.totals.warnings > 0) console.warn(`redocly lint warnings:\n${listed}`);
  });

  it("test/generated/api.d.ts is what openapi-typescript makes of it (`npm run openapi`)", async () => {
    expect(await clientTypes(text), "test/generated/api.d.ts is stale: run `npm run openapi`").toBe(readFileSync(CLIENT_TYPES_FILE, "utf8"));
  });

  it("names every operation, describes every response and documents each problem with a problem+json example", () => {
    const ids = ops.map((o) => o.op.operationId);
    for (const { op, where } of ops) expect(op.operationId, `${where} operationId`).toMatch(/^[a-z][A-Za-z]+$/);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ["createContract", "listContracts", "getContract", "amendContract", "recordExternalBilling", "ingestUsage", "voidUsage",
      "getUsageSummary", "previewTrueUp", "issueTrueUp", "getCalculation", "listExceptions", "resolveException", "listDocuments",
      "getDocument", "getDocumentBackup", "listAuditEntries", "verifyAudit", "getHealth", "getReadiness"])
      expect(ids).toContain(id);

    for (const { path, op, where } of ops) {
      for (const [status, res] of Object.entries<any>(op.responses)) {
        expect(res.description, `${where} ${status} description`).toBeTruthy();
        expect(res.description, `${where} ${status} description`).not.toBe("Default Response");
        if (Number(status) < 400) continue;
        const media = res.content?.["application/problem+json"];
        expect(media?.schema, `${where} ${status} is problem+json`).toEqual({ $ref: "#/components/schemas/Problem" });
        const examples = Object.values<any>(media.examples ?? {});
        expect(examples.length, `${where} ${status} examples`).toBeGreaterThan(0);
        for (const { value } of examples) {
          expect(value, `${where} ${status} example`).toMatchObject({ status: Number(status), type: `/problems/${value.code}` });
          for (const k of ["title", "detail", "code"]) expect(typeof value[k], `${where} ${status} example ${k}`).toBe("string");
          if (status === "400") expect(value.errors?.length, `${where} 400 example errors`).toBeGreaterThan(0);
        }
      }
      if (path.startsWith("/v1/")) {
        for (const s of ["401", "429", "503"]) expect(Object.keys(op.responses), `${where} documents ${s}`).toContain(s);
        expect(op.security, `${where} needs the key`).toBeUndefined();
      } else {
        expect(op.security, `${where} is public`).toEqual([]);
      }
      if (op.requestBody) for (const s of ["400", "413", "415"]) expect(Object.keys(op.responses), `${where} takes a body: ${s}`).toContain(s);
      if (op.parameters?.some((p: any) => p.in === "path")) expect(Object.keys(op.responses), `${where} reads by id: 404`).toContain("404");
    }
    expect(doc.servers?.length).toBeGreaterThan(0);
    // z.number().int() bounds, which Swagger UI would show as example values.
    expect(text).not.toMatch(/9007199254740991/);
  });

  it("documents Idempotency-Key as a header parameter of the issuing route", () => {
    const params = doc.paths["/v1/contracts/{id}/true-ups"].post.parameters as { in: string; name: string; required: boolean }[];
    expect(params).toContainEqual(expect.objectContaining({ in: "header", name: "Idempotency-Key", required: false }));
  });

  it("requests come from the zod input side: defaulted fields are optional and carry no default a generator would make required", () => {
    const schemas = doc.components.schemas;
    expect(schemas.ContractTermsInput.required).toEqual(["meters"]);
    expect(schemas.ContractTermsInput.properties.meters.items.required).toEqual(["metric", "pricing"]);
    expect(JSON.stringify(schemas.ContractTermsInput)).not.toMatch(/"default"/);
    // Responses show the terms with their defaults filled in.
    expect(schemas.ContractTerms.required).toEqual(expect.arrayContaining(["meters", "discountPercent", "cap", "prepaidCredits"]));
    const version = doc.paths["/v1/contracts/{id}"].get.responses["200"].content["application/json"].schema.properties.versions.items;
    expect(version.properties.terms).toEqual({ $ref: "#/components/schemas/ContractTerms" });
    // Every referenced component exists and every component is referenced.
    const refs = new Set([...text.matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]));
    expect([...refs].sort()).toEqual(Object.keys(schemas).sort());
  });

  it("gives every contract-term field a description", () => {
    const missing: string[] = [];
    const walk = (schema: any, path: string) => {
      if (!schema || typeof schema !== "object") return;
      for (const branch of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) walk(branch, path);
      if (schema.items) walk(schema.items, `${path}[]`);
      for (const [name, prop] of Object.entries<any>(schema.properties ?? {})) {
        if (name !== "model" && !prop.description) missing.push(`${path}.${name}`);
        walk(prop, `${path}.${name}`);
      }
    };
    walk(doc.components.schemas.ContractTermsInput, "terms");
    expect(missing).toEqual([]);
    const create = doc.paths["/v1/contracts"].post.requestBody.content["application/json"].schema;
    for (const [name, prop] of Object.entries<any>(create.properties)) if (!prop.$ref) expect(prop.description, `POST /v1/contracts ${name}`).toBeTruthy();
  });
});
