// usage_unique_key (migration 20261208000000_unique_values) is what the distinct-value rollups count values by:
// two values must get the same key exactly when PostgreSQL finds them equal as jsonb, as the count over the
// events does ("1" and 1 differ; 1, 1.0 and 1e0 do not, at any depth), and JSON null gets none.
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase } from "../helpers/app.js";

let client: pg.Client;
beforeAll(async () => {
  client = new pg.Client({ connectionString: await createTestDatabase() });
  await client.connect();
});
afterAll(() => client.end());

/** JSON texts, numbers sometimes spelt with trailing zeros or an exponent (the same number, another text). */
const spelt = (v: unknown): fc.Arbitrary<string> => {
  if (typeof v === "number") return fc.constantFrom(JSON.stringify(v), `${v}.000`.replace(/\.(\d*)\.000$/, ".$1000"), `${v}e0`);
  if (Array.isArray(v)) return fc.tuple(...v.map(spelt)).map((xs) => `[${xs.join(",")}]`);
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v);
    return fc.tuple(...entries.map(([, x]) => spelt(x))).map((xs) => `{${entries.map(([k], i) => `${JSON.stringify(k)}:${xs[i]}`).join(",")}}`);
  }
  return fc.constant(JSON.stringify(v));
};
const small = fc.oneof(
  fc.constantFrom<unknown>(1, 10, 0, -3, 2.5, "1", "a", true, false, null, "", "n1", "s1"),
  fc.integer({ min: -50, max: 50 }),
  fc.string({ maxLength: 3 }),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: "small" }, small, fc.array(tie("v"), { maxLength: 3 }), fc.dictionary(fc.constantFrom("a", "b", "c"), tie("v"), { maxKeys: 3 })),
})).v;
const texts = value.chain((v) => fc.tuple(spelt(v), spelt(v)));

it("equal keys exactly when equal as jsonb; no key for JSON null", async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(texts, fc.tuple(value.chain(spelt), value.chain(spelt))), async ([a, b]) => {
      const { rows } = await client.query<{ equal: boolean; same_key: boolean | null; null_a: boolean; key_a: string | null }>(
        `SELECT $1::jsonb = $2::jsonb AS equal, usage_unique_key($1::jsonb) = usage_unique_key($2::jsonb) AS same_key,
                $1::jsonb = 'null'::jsonb AS null_a, usage_unique_key($1::jsonb) AS key_a`,
        [a, b],
      );
      const r = rows[0]!;
      expect(r.key_a === null, a).toBe(r.null_a);
      if (!r.null_a && r.same_key !== null) expect(r.same_key, `${a} vs ${b}`).toBe(r.equal);
    }),
    { numRuns: 300 },
  );
});
