// Document numbers: INV-000001, CM-000001, one gapless sequence per kind. The counter row is incremented
// inside the issuing transaction and stays locked until it ends, so a rolled-back issue leaves no hole and
// concurrent issues queue on it.
import { nextDocumentSeq } from "../../db/queries/documents.js";
import type { Sql } from "../../db/sql.js";

export type DocumentKind = "invoice" | "credit_memo";

const PREFIX: Record<DocumentKind, string> = { invoice: "INV", credit_memo: "CM" };

export async function nextDocumentNumber(sql: Sql, kind: DocumentKind): Promise<{ seq: number; number: string }> {
  const [next] = await nextDocumentNumbers(sql, kind, 1);
  return next!;
}

/** The next `count` numbers of a kind, in order: one counter update for a billing run's chunk. */
export async function nextDocumentNumbers(sql: Sql, kind: DocumentKind, count: number): Promise<{ seq: number; number: string }[]> {
  if (count === 0) return [];
  const first = await nextDocumentSeq(sql, kind, count);
  return Array.from({ length: count }, (_, i) => ({ seq: first + i, number: `${PREFIX[kind]}-${String(first + i).padStart(6, "0")}` }));
}
