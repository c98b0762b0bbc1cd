// Which periods a billing run takes (DESIGN.md §10, docs/billing-runs.md): pure, from what the database knows
// of each period (a document, a run item that found nothing to issue, activity since either).
import { type PeriodContract, formatInstant, periodSpanAt } from "./periods.js";

export interface PeriodHistory {
  /** The period has an issued document. */
  documented: boolean;
  /** The period's latest run item found nothing to issue (and it has no document). */
  quiet: boolean;
  /** Events stored or voided since the latest document, or since that quiet item. */
  activitySince: boolean;
}

export interface DuePeriod {
  start: string;
  end: string;
}

/**
 * The contract's periods ending at or before `periodEndMs`, oldest first, that are due: those with no issued
 * document (unless a run already found nothing to issue and nothing happened since), and those whose usage
 * changed since their latest document (late activity: a delta, or a late_usage exception to decide).
 * `history` is keyed by the period's start (ISO).
 */
export function periodsDue(contract: PeriodContract, periodEndMs: number, history: ReadonlyMap<string, PeriodHistory>): DuePeriod[] {
  const due: DuePeriod[] = [];
  for (let i = 0; ; i++) {
    const span = periodSpanAt(contract, i);
    if (!span || span.endMs > periodEndMs) break;
    const start = formatInstant(span.startMs);
    const h = history.get(start);
    const isDue = !h || (h.documented ? h.activitySince : !h.quiet || h.activitySince);
    if (isDue) due.push({ start, end: formatInstant(span.endMs) });
  }
  return due;
}

/** What a run does with a rated period: the table of docs/billing-runs.md, in one place for both of its paths. */
export type ItemDecision = { status: "nothing_to_issue" } | { status: "blocked"; blockingExceptionIds: string[] } | { status: "previewed" } | { status: "issue" };

export function itemDecision(
  rated: { action: "invoice" | "credit_memo" | "none"; exceptions: readonly { id: string; blocking: boolean; status: string }[] },
  autoIssue: boolean,
): ItemDecision {
  if (rated.action === "none") return { status: "nothing_to_issue" };
  const blocking = rated.exceptions.filter((e) => e.blocking && e.status !== "approved").map((e) => e.id);
  if (blocking.length > 0) return { status: "blocked", blockingExceptionIds: blocking };
  return autoIssue ? { status: "issue" } : { status: "previewed" };
}
