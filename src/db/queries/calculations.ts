// Calculations SQL: every preview's stored rating — its exact input, its result and the inputsHash issuing compares.
import type { Sql } from "../sql.js";

export interface CalculationInsert {
  id: string;
  contractId: string;
  period: { start: string; end: string };
  engineVersion: string;
  inputsHash: string;
  inputs: unknown;
  result: unknown;
  total: string;
  alreadyBilled: string;
  delta: string;
  action: string;
  currency: string;
  createdAt: string;
  createdBy: string;
}

export async function insertCalculation(sql: Sql, c: CalculationInsert): Promise<void> {
  await insertCalculations(sql, [c]);
}

/** Calculations in one statement (a billing run chunk's). */
export async function insertCalculations(sql: Sql, calcs: readonly CalculationInsert[]): Promise<void> {
  if (calcs.length === 0) return;
  await sql.query(
    `INSERT INTO calculations (id, contract_id, period_start, period_end, engine_version, inputs_hash, inputs, result,
                               total, already_billed, delta, action, currency, created_at, created_by)
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[], $7::jsonb[], $8::jsonb[],
                          $9::numeric[], $10::numeric[], $11::numeric[], $12::text[], $13::text[], $14::timestamptz[], $15::text[])`,
    [
      calcs.map((c) => c.id),
      calcs.map((c) => c.contractId),
      calcs.map((c) => c.period.start),
      calcs.map((c) => c.period.end),
      calcs.map((c) => c.engineVersion),
      calcs.map((c) => c.inputsHash),
      calcs.map((c) => JSON.stringify(c.inputs)),
      calcs.map((c) => JSON.stringify(c.result)),
      calcs.map((c) => c.total),
      calcs.map((c) => c.alreadyBilled),
      calcs.map((c) => c.delta),
      calcs.map((c) => c.action),
      calcs.map((c) => c.currency),
      calcs.map((c) => c.createdAt),
      calcs.map((c) => c.createdBy),
    ],
  );
}

/** The stored calculation as previewed: its input and result JSON, when and by whom. */
export async function calculationById<Inputs, Result>(sql: Sql, id: string) {
  const [row] = await sql.query<{ id: string; contract_id: string; inputs: Inputs; result: Result; created_at: Date; created_by: string }>(
    `SELECT id::text AS id, contract_id::text AS contract_id, inputs, result, created_at, created_by FROM calculations WHERE id = $1::uuid`,
    [id],
  );
  return row;
}

/** What issuing needs of a calculation: whose it is, its period and the inputsHash to compare. */
export async function calculationToIssue(sql: Sql, id: string) {
  const [row] = await sql.query<{ id: string; contract_id: string; inputs_hash: string; period_start: Date; period_end: Date }>(
    `SELECT id::text AS id, contract_id::text AS contract_id, inputs_hash, period_start, period_end FROM calculations WHERE id = $1::uuid`,
    [id],
  );
  return row;
}
