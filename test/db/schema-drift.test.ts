// prisma/schema.prisma and the database built by prisma/migrations must agree: every model's table, every
// scalar field's column (type, precision, nullability, default), every @id/@unique/@index and relation;
// and the reverse, no table or column without a model field. Migrations are hand-written SQL (we have no
// schema engine), so this test is what keeps the two honest. The schema is read with a small parser; the
// generated client's model and field lists are checked against it too, so a stale `prisma generate` fails.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Prisma } from "../../src/generated/prisma/client.js";
import { createTestDatabase } from "../helpers/app.js";

interface Field {
  name: string;
  column: string;
  type: string;
  list: boolean;
  optional: boolean;
  attrs: string;
}
interface Model {
  name: string;
  table: string;
  scalars: Field[];
  relations: { fields: string[]; references: string[]; target: string }[];
  id: string[] | null;
  uniques: string[][];
  indexes: string[][];
}

const SCALARS = new Set(["String", "Int", "BigInt", "Decimal", "DateTime", "Boolean", "Json", "Float", "Bytes"]);

const listArg = (s: string) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

export function parseSchema(text: string): Model[] {
  const noComments = text.replace(/\/\/.*$/gm, "");
  const models: Model[] = [];
  for (const m of noComments.matchAll(/^model\s+(\w+)\s*\{([\s\S]*?)^\}/gm)) {
    const [, name, body] = m as unknown as [string, string, string];
    const model: Model = { name, table: name, scalars: [], relations: [], id: null, uniques: [], indexes: [] };
    const fieldLines: string[] = [];
    for (const raw of body.split("\n")) {
      const line = raw.trim();
      if (!line) continue;
      if (line.startsWith("@@")) {
        const attr = /^@@(\w+)\(\s*(?:\[([^\]]*)\]|"([^"]*)")/.exec(line);
        if (!attr) throw new Error(`cannot parse ${line}`);
        const [, kind, cols, mapped] = attr;
        if (kind === "map") model.table = mapped!;
        else if (kind === "id") model.id = listArg(cols!);
        else if (kind === "unique") model.uniques.push(listArg(cols!));
        else if (kind === "index") model.indexes.push(listArg(cols!));
        else throw new Error(`unsupported block attribute ${line}`);
        continue;
      }
      fieldLines.push(line);
    }
    const modelNames = new Set([...noComments.matchAll(/^model\s+(\w+)/gm)].map((x) => x[1]));
    for (const line of fieldLines) {
      const f = /^(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$/.exec(line);
      if (!f) throw new Error(`cannot parse field ${line}`);
      const [, fname, type, list, optional, attrs] = f as unknown as [string, string, string, string | undefined, string | undefined, string];
      if (modelNames.has(type)) {
        const rel = /@relation\([^)]*fields:\s*\[([^\]]*)\][^)]*references:\s*\[([^\]]*)\]/.exec(attrs);
        if (rel) model.relations.push({ fields: listArg(rel[1]!), references: listArg(rel[2]!), target: type });
        continue;
      }
      if (!SCALARS.has(type)) throw new Error(`unknown type ${type} in ${name}.${fname}`);
      const column = /@map\("([^"]+)"\)/.exec(attrs)?.[1] ?? fname;
      model.scalars.push({ name: fname, column, type, list: Boolean(list), optional: Boolean(optional), attrs });
      if (/@id\b/.test(attrs)) model.id = [fname];
      if (/@unique\b/.test(attrs)) model.uniques.push([fname]);
    }
    models.push(model);
  }
  return models;
}

interface Column {
  table_name: string;
  column_name: string;
  data_type: string;
  udt_name: string;
  is_nullable: "YES" | "NO";
  column_default: string | null;
  numeric_precision: number | null;
  numeric_scale: number | null;
  datetime_precision: number | null;
  character_maximum_length: number | null;
}

/** What PostgreSQL type a Prisma scalar (and its @db attribute) must be; a readable mismatch otherwise. */
function typeMismatch(f: Field, c: Column): string | null {
  const db = /@db\.(\w+)(?:\(([^)]*)\))?/.exec(f.attrs);
  const native = db?.[1];
  const args = db?.[2] ? listArg(db[2]).map(Number) : [];
  const got = `${c.data_type} (${c.udt_name})`;
  if (f.list) {
    const element = f.type === "String" ? "_text" : null;
    return c.data_type === "ARRAY" && c.udt_name === element ? null : `expected ${f.type}[] → ${element}, got ${got}`;
  }
  switch (f.type) {
    case "String":
      if (native === "Uuid") return c.udt_name === "uuid" ? null : `expected uuid, got ${got}`;
      if (native === "Char")
        return c.udt_name === "bpchar" && c.character_maximum_length === args[0] ? null : `expected char(${args[0]}), got ${got}(${c.character_maximum_length})`;
      if (native === "Bit")
        return c.udt_name === "bit" && c.character_maximum_length === args[0] ? null : `expected bit(${args[0]}), got ${got}(${c.character_maximum_length})`;
      if (native === "VarChar")
        return c.udt_name === "varchar" && c.character_maximum_length === (args[0] ?? null) ? null : `expected varchar, got ${got}`;
      return c.udt_name === "text" ? null : `expected text, got ${got}`;
    case "Int":
      return c.udt_name === "int4" ? null : `expected integer, got ${got}`;
    case "BigInt":
      return c.udt_name === "int8" ? null : `expected bigint, got ${got}`;
    case "Boolean":
      return c.udt_name === "bool" ? null : `expected boolean, got ${got}`;
    case "Json":
      return c.udt_name === "jsonb" ? null : `expected jsonb, got ${got}`;
    case "Decimal": {
      // Prisma's default for Decimal without @db is numeric(65,30).
      const [p, s] = native === "Decimal" ? args : [65, 30];
      return c.udt_name === "numeric" && c.numeric_precision === p && c.numeric_scale === s
        ? null
        : `expected numeric(${p},${s}), got ${got}(${c.numeric_precision},${c.numeric_scale})`;
    }
    case "DateTime":
      if (native === "Date") return c.udt_name === "date" ? null : `expected date, got ${got}`;
      if (native === "Timestamptz")
        return c.udt_name === "timestamptz" && c.datetime_precision === (args[0] ?? 6) ? null : `expected timestamptz(${args[0] ?? 6}), got ${got}`;
      return c.udt_name === "timestamp" && c.datetime_precision === (native === "Timestamp" ? (args[0] ?? 6) : 3)
        ? null
        : `expected timestamp, got ${got}`;
    default:
      return `no mapping for ${f.type}`;
  }
}

let client: pg.Client;
let models: Model[];
let columns: Column[];
let indexes: { table: string; name: string; columns: string[]; unique: boolean; primary: boolean }[];

beforeAll(async () => {
  models = parseSchema(readFileSync(resolve(import.meta.dirname, "../../prisma/schema.prisma"), "utf8"));
  client = new pg.Client({ connectionString: await createTestDatabase() });
  await client.connect();
  columns = (
    await client.query<Column>(
      `SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, numeric_precision, numeric_scale,
              datetime_precision, character_maximum_length
       FROM information_schema.columns WHERE table_schema = 'public'`,
    )
  ).rows;
  indexes = (
    await client.query(
      `SELECT t.relname AS table, i.relname AS name, ix.indisunique AS unique, ix.indisprimary AS primary,
              array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS columns
       FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'`,
    )
  ).rows;
});
afterAll(async () => {
  await client?.end();
});

describe("schema.prisma vs the migrated database", () => {
  it("the parser found every model the generated client knows, with the same scalar fields", () => {
    expect(models.map((m) => m.name).sort()).toEqual(Object.values(Prisma.ModelName).sort());
    const ns = Prisma as unknown as Record<string, Record<string, string>>;
    for (const m of models) {
      const generated = ns[`${m.name}ScalarFieldEnum`];
      expect(generated, `Prisma.${m.name}ScalarFieldEnum`).toBeDefined();
      expect(m.scalars.map((f) => f.name).sort(), `${m.name}: run npm ci (prisma generate) after editing the schema`).toEqual(
        Object.values(generated!).sort(),
      );
    }
  });

  it("every model's table exists, and every table (but _prisma_migrations) has a model", () => {
    const tables = new Set(columns.map((c) => c.table_name));
    for (const m of models) expect(tables.has(m.table), `table ${m.table} of model ${m.name}`).toBe(true);
    const modelled = new Set(models.map((m) => m.table));
    const orphans = [...tables].filter((t) => t !== "_prisma_migrations" && !modelled.has(t));
    expect(orphans, "tables without a model in schema.prisma").toEqual([]);
  });

  it("every scalar field has its column with a compatible type, nullability and default; no column lacks a field", () => {
    const problems: string[] = [];
    for (const m of models) {
      const cols = new Map(columns.filter((c) => c.table_name === m.table).map((c) => [c.column_name, c]));
      for (const f of m.scalars) {
        const c = cols.get(f.column);
        if (!c) {
          problems.push(`${m.table}.${f.column} (${m.name}.${f.name}) is missing`);
          continue;
        }
        const mismatch = typeMismatch(f, c);
        if (mismatch) problems.push(`${m.table}.${f.column}: ${mismatch}`);
        // Scalar lists: Prisma's own migrations leave them nullable; accept either.
        if (!f.list && (c.is_nullable === "YES") !== f.optional)
          problems.push(`${m.table}.${f.column}: schema says ${f.optional ? "optional" : "required"}, column is ${c.is_nullable === "YES" ? "NULL" : "NOT NULL"}`);
        const hasDefault = /@default\(/.test(f.attrs);
        if (hasDefault !== (c.column_default !== null))
          problems.push(`${m.table}.${f.column}: schema ${hasDefault ? "has" : "has no"} @default, column default is ${c.column_default}`);
        if (/@default\(autoincrement\(\)\)/.test(f.attrs) && !/^nextval\(/.test(c.column_default ?? ""))
          problems.push(`${m.table}.${f.column}: autoincrement needs a sequence default`);
      }
      const fieldColumns = new Set(m.scalars.map((f) => f.column));
      for (const name of cols.keys()) if (!fieldColumns.has(name)) problems.push(`${m.table}.${name} has no field in model ${m.name}`);
    }
    expect(problems).toEqual([]);
  });

  it("@id, @unique, @@unique and @@index exist as the primary key and indexes on the same columns", () => {
    const problems: string[] = [];
    for (const m of models) {
      const col = (field: string) => m.scalars.find((f) => f.name === field)?.column ?? `?${field}`;
      const onTable = indexes.filter((i) => i.table === m.table);
      const find = (cols: string[], pred: (i: (typeof indexes)[number]) => boolean) =>
        onTable.find((i) => pred(i) && i.columns.join(",") === cols.join(","));
      if (!m.id) problems.push(`${m.name} has no @id`);
      else if (!find(m.id.map(col), (i) => i.primary)) problems.push(`${m.table}: no primary key on (${m.id.map(col)})`);
      for (const u of m.uniques) if (!find(u.map(col), (i) => i.unique && !i.primary)) problems.push(`${m.table}: no unique index on (${u.map(col)})`);
      for (const x of m.indexes) if (!find(x.map(col), (i) => !i.unique)) problems.push(`${m.table}: no index on (${x.map(col)})`);
    }
    expect(problems).toEqual([]);
  });

  it("no index in the database that the schema does not declare, except the ones Prisma cannot express", () => {
    // The exclusion constraint (one contract per identifier at any instant) has no Prisma syntax.
    const EXPRESSIBLE_ONLY_IN_SQL = new Set([
      "contract_identifiers_no_overlap",
      "_prisma_migrations_pkey",
      // Partial indexes (WHERE late / WHERE voided_at IS NOT NULL), migration 20261124000100.
      "usage_events_late_received_idx",
      "usage_events_voided_at_idx",
      // One running billing run at a time (WHERE status = 'running'), migration 20261207000000.
      "billing_runs_one_running_key",
      "billing_run_items_pending_idx",
    ]);
    const declared = new Set<string>();
    for (const m of models) {
      const col = (field: string) => m.scalars.find((f) => f.name === field)?.column ?? field;
      for (const cols of [m.id ?? [], ...m.uniques, ...m.indexes]) declared.add(`${m.table}(${cols.map(col).join(",")})`);
    }
    const extra = indexes.filter((i) => !EXPRESSIBLE_ONLY_IN_SQL.has(i.name) && !declared.has(`${i.table}(${i.columns.join(",")})`));
    expect(extra.map((i) => i.name)).toEqual([]);
  });

  it("every @relation has a foreign key on the same columns to the referenced table", async () => {
    const fks = (
      await client.query<{ table: string; columns: string[]; target: string; target_columns: string[] }>(
        `SELECT c.conrelid::regclass::text AS table, c.confrelid::regclass::text AS target,
                array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS columns,
                array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS target_columns
         FROM pg_constraint c WHERE c.contype = 'f'`,
      )
    ).rows;
    const byName = new Map(models.map((m) => [m.name, m]));
    const problems: string[] = [];
    let declared = 0;
    for (const m of models) {
      for (const r of m.relations) {
        declared++;
        const target = byName.get(r.target)!;
        const cols = r.fields.map((f) => m.scalars.find((s) => s.name === f)!.column);
        const refs = r.references.map((f) => target.scalars.find((s) => s.name === f)!.column);
        const fk = fks.find((k) => k.table === m.table && k.target === target.table && k.columns.join() === cols.join() && k.target_columns.join() === refs.join());
        if (!fk) problems.push(`${m.table}(${cols}) → ${target.table}(${refs}) has no foreign key`);
      }
    }
    expect(problems).toEqual([]);
    expect(fks.length, "foreign keys in the database that the schema does not declare").toBe(declared);
  });
});
