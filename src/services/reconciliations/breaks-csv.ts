// The breaks of a run as CSV (GET /v1/reconciliations/:id/breaks.csv): what finance attaches to the close.
// Streamed page by page from the database through csv-stringify, so 100,000 breaks never sit in memory as text.
import { Readable } from "node:stream";
import { stringify } from "csv-stringify";
import type { Database } from "../../db/client.js";
import { breakRows } from "../../db/queries/reconciliations.js";
import { defuseFormula } from "../csv.js";
import { type BreakView, runOrNotFound, toBreakView } from "./read.js";

/** The columns, named as the break's JSON names them. */
const COLUMNS: Array<{ name: string; value: (b: BreakView) => string | null }> = [
  { name: "id", value: (b) => b.id },
  { name: "contractId", value: (b) => b.contractId },
  { name: "customerId", value: (b) => b.customerId },
  { name: "metric", value: (b) => b.metric },
  { name: "class", value: (b) => b.class },
  { name: "source", value: (b) => b.source },
  { name: "owner", value: (b) => b.owner },
  { name: "raw", value: (b) => b.raw },
  { name: "metered", value: (b) => b.metered },
  { name: "invoiced", value: (b) => b.invoiced },
  { name: "late", value: (b) => b.late },
  { name: "units", value: (b) => b.units },
  { name: "amount", value: (b) => b.amount },
  { name: "currency", value: (b) => b.currency },
  { name: "previousClass", value: (b) => b.previousClass },
  { name: "disposition.decision", value: (b) => b.disposition?.decision ?? null },
  { name: "disposition.note", value: (b) => b.disposition?.note ?? null },
  { name: "disposition.actor", value: (b) => b.disposition?.actor ?? null },
  { name: "disposition.at", value: (b) => b.disposition?.at ?? null },
];

const PAGE = 1000;

export async function breaksCsv(
  db: Database,
  runId: string,
  q: { class?: string | undefined; owner?: string | undefined },
): Promise<{ filename: string; stream: Readable }> {
  await runOrNotFound(db.sql, runId);
  async function* rows() {
    let after: string | null = null;
    for (;;) {
      const page = await breakRows(db.sql, runId, { class: q.class ?? null, owner: q.owner ?? null, after, limit: PAGE });
      for (const row of page) {
        const b = toBreakView(row);
        yield COLUMNS.map((c) => {
          const v = c.value(b);
          return v === null ? "" : defuseFormula(v);
        });
      }
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.id;
    }
  }
  const csv = stringify({ header: true, columns: COLUMNS.map((c) => c.name), quoted: true, record_delimiter: "\r\n" });
  const source = Readable.from(rows());
  source.on("error", (e) => csv.destroy(e));
  return { filename: `reconciliation-${runId}-breaks.csv`, stream: source.pipe(csv) };
}
