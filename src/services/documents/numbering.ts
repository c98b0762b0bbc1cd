// Document numbers: INV-000001, CM-000001, one gapless sequence per kind. The counter row is incremented
// inside the issuing transaction and stays locked until it ends, so a rolled-back issue leaves no hole and
// concurrent issues queue on it.
import { nextDocumentSeq } from "../../db/queries/documents.js";
import type { Sql } from "../../db/sql.js";

export type DocumentKind = "invoice" | "credit_memo";

const PREFIX: Record<DocumentKind, string> = { invoice: "INV", credit_memo: "CM" };

export async function nextDocumentNumber(sql: Sql, kind: DocumentKind): Promise<{ seq: number; number: string }> {
  const seq = await nextDocumentSeq(sql, kind);
  return { seq, number: `${PREFIX[kind]}-${String(seq).padStart(6, "0")}` };
}
