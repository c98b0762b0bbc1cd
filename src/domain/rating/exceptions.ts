// Exceptions the engine raises (docs/rating.md, "Exceptions"). All of them are blocking: money does not move until a
// human approves. `subject` is a stable key within a calculation so that a re-run raises "the same"
// exception (a metric, a version number, a window); "" when the exception is about the whole period.
import type { RatingException } from "./types.js";

export function missingTerms(from: string, to: string, usage: Record<string, string>): RatingException {
  const used = Object.keys(usage).length > 0 ? `; its usage (${Object.entries(usage).map(([m, q]) => `${m} ${q}`).join(", ")}) is not billed` : "";
  return {
    kind: "missing_terms",
    blocking: true,
    subject: `${from}/${to}`,
    message: `No contract version is in force from ${from} to ${to}: that part of the period is not rated${used}.`,
    details: { from, to, usage },
  };
}

export function unpricedMetric(
  metric: string,
  quantity: string,
  segments: Array<{ from: string; to: string; version: number; quantity: string }>,
): RatingException {
  return {
    kind: "unpriced_metric",
    blocking: true,
    subject: metric,
    message: `Usage of "${metric}" (${quantity}) has no meter in the version in force; it is not billed.`,
    details: { metric, quantity, segments },
  };
}

export function usageSpike(details: {
  metric: string;
  usage: string;
  average: string;
  spikeFactor: string;
  limit: string;
  priorPeriods: Array<{ start: string; end: string; usage: string }>;
}): RatingException {
  return {
    kind: "usage_spike",
    blocking: true,
    subject: details.metric,
    message:
      `Usage of "${details.metric}" this period (${details.usage}) is more than ${details.spikeFactor} × the average ` +
      `of the ${details.priorPeriods.length} prior period(s) (${details.average}).`,
    details,
  };
}

export function sharedEffectiveFrom(effectiveFrom: string, versions: number[], used: number): RatingException {
  return {
    kind: "amendment_conflict",
    blocking: true,
    subject: versions.join(","),
    message: `Versions ${versions.join(", ")} all take effect at ${effectiveFrom}; the engine used version ${used}.`,
    details: { reason: "shared_effective_from", effectiveFrom, versions, used },
  };
}

export function amendmentInsideIssuedPeriod(version: number, effectiveFrom: string, period: { start: string; end: string }): RatingException {
  return {
    kind: "amendment_conflict",
    blocking: true,
    subject: String(version),
    message:
      `Version ${version} takes effect at ${effectiveFrom}, inside the period [${period.start}, ${period.end}) ` +
      `which already has an issued document.`,
    details: { reason: "inside_issued_period", version, effectiveFrom, issuedPeriod: period },
  };
}

export function materiality(delta: string, threshold: string, version: number): RatingException {
  return {
    kind: "materiality",
    blocking: true,
    subject: "",
    message: `The change of ${delta} is at least the materiality threshold of ${threshold} (version ${version}).`,
    details: { delta, threshold, version },
  };
}

export function overBilled(total: string, alreadyBilled: string, delta: string): RatingException {
  return {
    kind: "over_billed",
    blocking: true,
    subject: "",
    message:
      `The period's total ${total} is below the ${alreadyBilled} already billed (delta ${delta}) and the contract ` +
      `does not allow a true-down: nothing is issued.`,
    details: { total, alreadyBilled, delta },
  };
}
