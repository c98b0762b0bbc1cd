// CSV for finance (the backups, the breaks, the revenue reports and the journal): written by csv-stringify,
// every cell a string, and text a spreadsheet would run as a formula defused with a leading apostrophe.
import { stringify } from "csv-stringify/sync";

/** Text a spreadsheet would run as a formula (=, +, @, a tab or CR first; a "-" that is not a number) gets a leading apostrophe. */
export function defuseFormula(s: string): string {
  return /^[=+@\t\r]/.test(s) || (/^-/.test(s) && !/^-\d+(\.\d+)?$/.test(s)) ? `'${s}` : s;
}

/** A cell as text: nothing for null and undefined, defused. */
export const cellText = (v: unknown): string => defuseFormula(v === null || v === undefined ? "" : String(v));

/** Records as CSV text, CRLF after each; `quoted`: every cell in quotes (an empty record is an empty line). */
export function csvText(records: readonly (readonly unknown[])[], opts: { quoted?: boolean } = {}): string {
  return stringify(
    records.map((r) => r.map(cellText)),
    { record_delimiter: "\r\n", ...(opts.quoted ? { quoted: true, quoted_empty: true } : {}) },
  );
}
