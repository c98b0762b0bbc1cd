// Reading a stored calculation: what the preview returned, with the engine's exact input and the current
// status of the exceptions it raised.
import type { Database } from "../../db/client.js";
import { calculationById } from "../../db/queries/calculations.js";
import type { RatingInput, RatingResult } from "../../domain/index.js";
import { notFound } from "../../errors.js";
import { type ExceptionView, getException } from "../exceptions/read.js";
import { periodHasEnded } from "./rate.js";

export interface CalculationView extends Omit<RatingResult, "exceptions"> {
  id: string;
  /** Whether the period had ended when it was rated; false: an estimate, which cannot be issued yet. */
  periodClosed: boolean;
  exceptions: ExceptionView[];
  createdAt: string;
  createdBy: string;
  inputs?: RatingInput;
}

/** The result column: the engine's result with what the preview added beside it. */
type StoredResult = RatingResult & { extraExceptions?: unknown; exceptionIds?: string[]; billedBefore?: unknown };

export async function getCalculation(db: Database, id: string): Promise<CalculationView> {
  const row = await calculationById<RatingInput, StoredResult>(db.sql, id);
  if (!row) throw notFound("calculation", id);
  // The exceptions this calculation raised, with their current status (decisions taken since included).
  const views = await Promise.all((row.result.exceptionIds ?? []).map((e) => getException(db.sql, e)));
  const { extraExceptions: _extra, exceptions: _engine, exceptionIds: _ids, billedBefore: _billed, ...result } = row.result;
  return {
    ...result,
    id: row.id,
    periodClosed: periodHasEnded(result.period, row.created_at),
    exceptions: views,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    inputs: row.inputs,
  };
}
