// Closing the books (DESIGN.md §7.2, docs/revenue.md): a month and every earlier one, book-wide, once. Each
// contract's months up to it are stored as they stand; later changes to them show as catch-up in the first
// open month. Open exceptions and unbilled periods do not block a close; they are counted in its answer.
import type { Database } from "../../db/client.js";
import { isUniqueViolation } from "../../db/errors.js";
import { contractWithVersions } from "../../db/queries/contracts.js";
import {
  type CloseRow,
  contractsStartedBefore,
  insertClose,
  insertClosedMonths,
  latestClose,
  listCloseRows,
  lockCloses,
  openExceptionCount,
} from "../../db/queries/revenue.js";
import { transaction } from "../../db/tx.js";
import { monthAt, monthIndex, monthIndexAt } from "../../domain/index.js";
import { DomainError, conflict, invalid } from "../../errors.js";
import { appendAudit } from "../audit/append.js";
import { idempotent } from "../idempotency.js";
import { type MonthFigures, freshMonths } from "./contract-revenue.js";

const CLOSE_SCOPE = "POST /v1/revenue/closes";

export interface CloseView {
  month: string;
  closedAt: string;
  actor: string;
  note: string;
  unbilledPeriods: number;
  openExceptions: number;
}

const toCloseView = (r: CloseRow): CloseView => ({
  month: r.month,
  closedAt: r.closed_at.toISOString(),
  actor: r.actor,
  note: r.note,
  unbilledPeriods: r.unbilled_periods,
  openExceptions: r.open_exceptions,
});

export async function closeBooks(
  db: Database,
  actor: string,
  input: { month: string; note: string },
  idempotencyKey: string | undefined,
  now: Date,
): Promise<{ status: number; close: CloseView; replayed: boolean }> {
  const index = monthIndex(input.month);
  if (index === null) throw invalid([{ field: "month", message: "must be a month YYYY-MM" }]);
  // Ended everywhere: the last timezone's month ends by the next month's 1st, 12:00 UTC (UTC−12).
  const endedEverywhere = monthAt(index + 1, "UTC").startMs + 12 * 3_600_000;
  if (now.getTime() < endedEverywhere)
    throw new DomainError("period_open", `${input.month} has not ended everywhere yet: it can be closed from ${new Date(endedEverywhere).toISOString()}`);
  const request = idempotencyKey === undefined ? undefined : { scope: CLOSE_SCOPE, key: idempotencyKey, request: input };
  const { status, response, replayed } = await transaction(
    db,
    async (sql) => {
      await lockCloses(sql);
      return idempotent(sql, request, async () => {
        const latest = await latestClose(sql);
        if (latest && latest.month >= input.month)
          throw conflict(`the books are closed through ${latest.month}: months cannot be reopened or closed twice`, { latestClose: toCloseView(latest) });
        const from = latest ? monthIndex(latest.month)! + 1 : null;
        const rows: { contractId: string; month: string; figures: MonthFigures }[] = [];
        let unbilledPeriods = 0;
        for (const id of await contractsStartedBefore(sql, new Date(endedEverywhere))) {
          const contract = (await contractWithVersions(sql, id))!;
          const first = monthIndexAt(Date.parse(contract.termStart), contract.timezone);
          if (first > index) continue;
          const months = await freshMonths(sql, contract as Parameters<typeof freshMonths>[1], { fromIndex: from === null ? first : Math.max(from, first), toIndex: index }, now);
          for (const m of months) {
            rows.push({ contractId: id, month: m.month, figures: m });
            if (m.basis === "unbilled") unbilledPeriods++;
          }
        }
        const close = { month: input.month, closedAt: now.toISOString(), actor, note: input.note, unbilledPeriods, openExceptions: await openExceptionCount(sql) };
        await insertClose(sql, close);
        await insertClosedMonths(sql, input.month, rows);
        await appendAudit(sql, {
          actor,
          action: "revenue.closed",
          entityType: "revenue_close",
          entityId: input.month,
          payload: { ...close, months: rows.length, contracts: new Set(rows.map((r) => r.contractId)).size },
        });
        return { status: 201, response: close };
      });
    },
    { isolation: "repeatable read", retryOn: isUniqueViolation },
  );
  return { status, close: response, replayed };
}

export async function listCloses(db: Database, q: { before?: string | undefined; limit: number }): Promise<CloseView[]> {
  return (await listCloseRows(db.sql, { before: q.before ?? null, limit: q.limit })).map(toCloseView);
}
