// Property-based: every POST route of the app, found by asking the app itself, answers malformed input with a
// 4xx problem+json (never a 5xx) and stores nothing (every table's row count unchanged, audit log included).
//
// Bodies are built from the route's own request schema (as published in the OpenAPI document): its example (or
// a sample) with exactly one thing broken — a wrong JSON type at any field (numbers for decimal strings
// included), an unknown field in a strict object, a required field removed, an over-long string — plus
// arbitrary JSON values, deep nesting, huge strings, bytes that are not JSON, and wrong content types.
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestApp, auth, startTestApp } from "../helpers/app.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = Record<string, any>;

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);

let t: TestApp;
let doc: Schema;
let contractId: string;

interface PostRoute {
  /** As Fastify knows it: /v1/contracts/:id/amendments */
  url: string;
  schema: Schema | undefined;
  base: Json;
}

/**
 * The POST routes, parsed from `printRoutes` (the router's own tree), so routes added later are fuzzed too.
 * A line is `<indent>├── <segment> (METHODS)`; a node's path is its ancestors' segments joined.
 */
function postRoutes(tree: string): string[] {
  const stack: string[] = [];
  const found: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^((?:│   | {4})*)(?:├── |└── )(.+?)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const methods = (m[3] ?? "").split(",").map((s) => s.trim());
    if (methods.includes("POST")) found.push(stack.join("").replace(/\/{2,}/g, "/"));
  }
  return [...new Set(found)].sort();
}

function deref(s: Schema | undefined): Schema {
  let cur = s ?? {};
  for (let i = 0; i < 20 && typeof cur.$ref === "string"; i++) {
    const path = (cur.$ref as string).replace(/^#\//, "").split("/");
    cur = path.reduce<any>((o, k) => o?.[k], doc) ?? {};
  }
  if (Array.isArray(cur.allOf)) return Object.assign({}, ...cur.allOf.map(deref), { ...cur, allOf: undefined });
  return cur;
}

const branchesOf = (s: Schema): Schema[] => {
  const d = deref(s);
  const alts = d.anyOf ?? d.oneOf;
  return Array.isArray(alts) ? alts.flatMap(branchesOf) : [d];
};

const jsonType = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "number" ? (Number.isInteger(v) ? "integer" : "number") : typeof v;

/** The JSON types a schema accepts; null = anything. */
function allowedTypes(s: Schema): Set<string> | null {
  const out = new Set<string>();
  for (const b of branchesOf(s)) {
    const types = b.type ? [b.type].flat() : b.const !== undefined ? [jsonType(b.const)] : b.enum ? b.enum.map(jsonType) : b.properties ? ["object"] : b.items ? ["array"] : null;
    if (!types) return null;
    for (const ty of types) out.add(ty);
  }
  if (out.has("number")) out.add("integer");
  if (out.has("integer")) out.add("number"); // 1 and 1.5 both count as "a number" for this purpose
  return out;
}

/** The union branch a value was built from (by type, and for objects by their discriminating enum values). */
function branchFor(s: Schema, v: Json): Schema {
  const bs = branchesOf(s);
  const typed = bs.filter((b) => {
    const ty = allowedTypes(b);
    return !ty || ty.has(jsonType(v));
  });
  if (typed.length > 1 && v && typeof v === "object" && !Array.isArray(v)) {
    const hit = typed.find((b) =>
      Object.entries<any>(b.properties ?? {}).every(([k, p]) => {
        const d = deref(p);
        return !(k in v) || !d.enum || d.enum.includes((v as any)[k]);
      }),
    );
    if (hit) return hit;
  }
  return typed[0] ?? bs[0] ?? {};
}

/** A body of the schema's shape (every optional field present too, so each can be broken). */
function sample(s: Schema, depth = 0): Json {
  const b = branchesOf(s).find((x) => x.type !== "null") ?? deref(s);
  if (depth > 8) return null;
  if (b.examples?.[0] !== undefined) return b.examples[0];
  if (b.const !== undefined) return b.const;
  if (b.enum) return b.enum[0];
  const type = [b.type].flat()[0] ?? (b.properties ? "object" : undefined);
  switch (type) {
    case "object":
      return Object.fromEntries(Object.entries<Schema>(b.properties ?? {}).map(([k, p]) => [k, sample(p, depth + 1)]));
    case "array":
      return b.items ? [sample(b.items, depth + 1)] : [];
    case "string":
      return b.format === "date-time" ? "2026-01-01T00:00:00Z" : b.format === "date" ? "2026-01-01" : "x";
    case "integer":
    case "number":
      return 1;
    case "boolean":
      return true;
    default:
      return null;
  }
}

interface Spot {
  path: (string | number)[];
  schema: Schema;
}

/** Every place in `value` that the schema describes, with its schema. */
function spots(s: Schema, value: Json, path: (string | number)[] = [], out: Spot[] = []): Spot[] {
  const b = branchFor(s, value);
  out.push({ path, schema: s });
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, p] of Object.entries<Schema>(b.properties ?? {})) if (k in value) spots(p, value[k]!, [...path, k], out);
  } else if (Array.isArray(value) && b.items) {
    value.forEach((item, i) => spots(b.items, item, [...path, i], out));
  }
  return out;
}

const clone = <T>(v: T): T => structuredClone(v);
function setAt(root: Json, path: (string | number)[], v: Json | undefined): Json {
  if (path.length === 0) return v === undefined ? null : v;
  const copy = clone(root) as any;
  let cur = copy;
  for (const k of path.slice(0, -1)) cur = cur[k];
  const last = path[path.length - 1]!;
  if (v === undefined) delete cur[last];
  else cur[last] = v;
  return copy;
}
const getAt = (root: Json, path: (string | number)[]): any => path.reduce<any>((o, k) => o?.[k], root);

const WRONG_VALUES: Json[] = [0, 1, -1, 1.5, 32000.0, 1e308, -0.000125, true, false, null, "", "x", "32000.00", "-1", [], [1, "a"], {}, { a: 1 }];
const nested = (depth: number): Json => {
  let v: Json = "deep";
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { n: v };
  return v;
};

interface Case {
  body: string | Buffer | undefined;
  contentType: string | undefined;
  what: string;
}

function malformed(route: PostRoute): fc.Arbitrary<Case> {
  const json = (body: Json, what: string): Case => ({ body: JSON.stringify(body), contentType: "application/json", what });
  const root = route.schema ?? {};
  const all = spots(root, route.base);
  const typed = all.filter((s) => allowedTypes(s.schema) !== null);
  const strictObjects = all.filter((s) => {
    const b = branchFor(s.schema, getAt(route.base, s.path));
    const v = getAt(route.base, s.path);
    return b.additionalProperties === false && v && typeof v === "object" && !Array.isArray(v);
  });
  const requiredKeys = all.flatMap((s) => {
    const v = getAt(route.base, s.path);
    if (!v || typeof v !== "object" || Array.isArray(v)) return [];
    const b = branchFor(s.schema, v);
    return ((b.required ?? []) as string[]).filter((k) => k in v).map((k) => [...s.path, k]);
  });
  const bounded = all.filter((s) => branchesOf(s.schema).some((b) => b.type === "string" && typeof b.maxLength === "number"));
  const options: fc.WeightedArbitrary<Case>[] = [];

  if (typed.length)
    options.push({
      weight: 6,
      arbitrary: fc
        .tuple(fc.constantFrom(...typed), fc.constantFrom(...WRONG_VALUES), fc.double({ noNaN: true, noDefaultInfinity: true }))
        .filter(([spot, wrong]) => !allowedTypes(spot.schema)!.has(jsonType(wrong)))
        .map(([spot, wrong]) => json(setAt(route.base, spot.path, wrong), `wrong type at ${spot.path.join(".") || "(root)"}`)),
    });
  // Decimal strings sent as JSON numbers, wherever the schema wants a string of digits.
  const decimals = typed.filter((s) => branchesOf(s.schema).some((b) => b.type === "string" && /\\d/.test(String(b.pattern ?? ""))));
  if (decimals.length)
    options.push({
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...decimals), fc.double({ noNaN: true, noDefaultInfinity: true }))
        .filter(([spot]) => !allowedTypes(spot.schema)!.has("number"))
        .map(([spot, n]) => json(setAt(route.base, spot.path, n), `number for a decimal string at ${spot.path.join(".")}`)),
    });
  if (strictObjects.length)
    options.push({
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...strictObjects), fc.string({ minLength: 1, maxLength: 20 }), fc.jsonValue({ maxDepth: 2 }))
        .filter(([spot, key]) => key !== "__proto__" && !(key in (deref(branchFor(spot.schema, getAt(route.base, spot.path))).properties ?? {})))
        .map(([spot, key, v]) => json(setAt(route.base, [...spot.path, key], v as Json), `unknown field ${JSON.stringify(key)} at ${spot.path.join(".") || "(root)"}`)),
    });
  if (requiredKeys.length)
    options.push({
      weight: 2,
      arbitrary: fc.constantFrom(...requiredKeys).map((p) => json(setAt(route.base, p, undefined), `missing ${p.join(".")}`)),
    });
  if (bounded.length)
    options.push({
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom(...bounded), fc.integer({ min: 1, max: 200_000 })).map(([spot, extra]) => {
        const max = Math.max(...branchesOf(spot.schema).map((b) => b.maxLength ?? 0));
        return json(setAt(route.base, spot.path, "é".repeat(max + extra)), `over-long string at ${spot.path.join(".")}`);
      }),
    });
  options.push(
    // Arbitrary JSON that is not an object at all.
    {
      weight: 2,
      arbitrary: fc
        .jsonValue({ maxDepth: 4 })
        .filter((v) => v === null || typeof v !== "object" || Array.isArray(v))
        .map((v) => json(v as Json, "a JSON value that is not an object")),
    },
    // Objects of random keys (none of which the route knows, so a strict schema must refuse them).
    {
      weight: 1,
      arbitrary: fc
        .dictionary(fc.string({ minLength: 1, maxLength: 12 }).map((k) => `zz_${k}`), fc.jsonValue({ maxDepth: 3 }), { minKeys: 1, maxKeys: 8 })
        .map((v) => json(v as Json, "an object of unknown fields")),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 50, max: 3000 }), fc.boolean()).map(([depth, asField]) => {
        const deep = nested(depth);
        // Only where the nested value's type is wrong: a free-form field (usage properties) may hold it.
        const wrongFor = typed.filter((s) => !allowedTypes(s.schema)!.has(jsonType(deep)));
        if (!asField || wrongFor.length === 0) return json(deep, `nesting ${depth} deep`);
        const spot = wrongFor[depth % wrongFor.length]!;
        return json(setAt(route.base, spot.path, deep), `nesting ${depth} deep at ${spot.path.join(".") || "(root)"}`);
      }),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 100_000, max: 2_000_000 }).map((n) => json("x".repeat(n), `a ${n}-character string as the body`)),
    },
    {
      weight: 2,
      arbitrary: fc
        .uint8Array({ minLength: 0, maxLength: 300 })
        .filter((bytes) => {
          try {
            const v = JSON.parse(Buffer.from(bytes).toString("utf8"));
            return v === null || typeof v !== "object";
          } catch {
            return true;
          }
        })
        .map((bytes) => ({ body: Buffer.from(bytes), contentType: "application/json", what: "bytes that are not a JSON object" })),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom("text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/octet-stream", "text/csv")
        .map((ct) => ({ body: JSON.stringify(route.base), contentType: ct, what: `content type ${ct}` })),
    },
  );
  return fc.oneof(...options);
}

async function rowCounts(): Promise<Record<string, number>> {
  const tables = await t.db.pool.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
  );
  const out: Record<string, number> = {};
  for (const { table_name } of tables.rows) {
    const r = await t.db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${table_name}"`);
    out[table_name] = Number(r.rows[0]!.n);
  }
  return out;
}

let routes: PostRoute[] = [];

beforeAll(async () => {
  // A generous rate limit: the fuzzer sends thousands of requests with one key.
  t = await startTestApp({ RATE_LIMIT_PER_MINUTE: "10000000" });
  doc = t.app.swagger() as Schema;
  const created = await t.post("/v1/contracts", {
    customerId: "fuzz-customer",
    name: "Fuzz",
    currency: "USD",
    billingPeriod: "monthly",
    startDate: "2026-01-01",
    terms: { meters: [{ metric: "api_calls", pricing: { model: "per_unit", unitPrice: "0.08" } }] },
  });
  expect(created.statusCode, created.body).toBe(201);
  contractId = created.json().id;
  routes = postRoutes(t.app.printRoutes({ commonPrefix: false })).map((url) => {
    const op = doc.paths?.[url.replace(/:(\w+)/g, "{$1}")]?.post;
    const content = op?.requestBody?.content?.["application/json"];
    const schema = content?.schema ? deref(content.schema) : undefined;
    const base = (content?.example ?? content?.examples?.[0]?.value ?? (schema ? sample(schema) : {})) as Json;
    return { url, schema, base };
  });
});
afterAll(async () => {
  await t?.close();
});

describe("malformed input to every POST route", () => {
  it("finds the POST routes from the app itself", () => {
    const urls = routes.map((r) => r.url);
    expect(urls).toContain("/v1/contracts");
    expect(urls).toContain("/v1/contracts/:id/amendments");
    expect(urls).toContain("/v1/contracts/:id/external-billings");
    for (const r of routes) expect(r.schema, `${r.url} publishes a body schema`).toBeDefined();
  });

  // One test per route, discovered at collection time is impossible (the app is built in beforeAll), so a
  // single test walks them all with a time budget per route.
  it(`answers ${RUNS} malformed requests per route with 4xx problem+json and stores nothing`, { timeout: 600_000 }, async () => {
    const before = await rowCounts();
    const summary: string[] = [];
    for (const route of routes) {
      const started = Date.now();
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(
          malformed(route),
          fc.constantFrom(contractId, randomUUID(), "not-a-uuid"),
          fc.option(fc.string({ minLength: 1, maxLength: 64 }), { nil: undefined }),
          async (c, id, idempotencyKey) => {
            const url = route.url.replace(/:(\w+)/g, id);
            const headers: Record<string, string> = { ...auth("admin") };
            if (c.contentType) headers["content-type"] = c.contentType;
            if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
            const res = await t.app.inject({ method: "POST", url, headers, ...(c.body === undefined ? {} : { payload: c.body }) });
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            const why = `${route.url} with ${c.what}: ${res.statusCode} ${res.body.slice(0, 300)}`;
            expect(res.statusCode, why).toBeGreaterThanOrEqual(400);
            expect(res.statusCode, why).toBeLessThan(500);
            expect(res.headers["content-type"], why).toMatch(/^application\/problem\+json/);
            const body = res.json();
            expect(body.status, why).toBe(res.statusCode);
            expect(body.type, why).toBe(`/problems/${body.code}`);
          },
        ),
        { numRuns: RUNS, endOnFailure: true },
      );
      const ms = Date.now() - started;
      summary.push(`${route.url}: ${RUNS} requests in ${ms} ms → ${[...statuses].map(([s, n]) => `${s}×${n}`).join(" ")}`);
      expect(ms, `${route.url} took too long`).toBeLessThan(60_000);
    }
    console.log(summary.join("\n"));
    expect(await rowCounts()).toEqual(before);
  });
});

describe("route discovery", () => {
  it("parses nested printRoutes output", () => {
    const tree = [
      "├── /v1/contracts (POST)",
      "│   ├── /:id/amendments (POST)",
      "│   └── /:id/true-ups (POST)",
      "│       └── /preview (POST)",
      "├── /v1/usage (POST)",
      "│   └── /void (POST)",
      "└── /v1/exceptions/:id/resolve (POST)",
    ].join("\n");
    expect(postRoutes(tree)).toEqual([
      "/v1/contracts",
      "/v1/contracts/:id/amendments",
      "/v1/contracts/:id/true-ups",
      "/v1/contracts/:id/true-ups/preview",
      "/v1/exceptions/:id/resolve",
      "/v1/usage",
      "/v1/usage/void",
    ]);
  });
});
