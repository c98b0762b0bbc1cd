// Voiding usage: a correction, never a delete. The events stop counting (and leave the rollups) but keep
// their history; voiding an event of a period with an issued document raises late_usage, like a late event.
import type { Database } from "../../db/client.js";
import { findUsageEvents, identifierTerms, lockAndReadIssuedPeriods, lockIdentifiers, voidUsageEvents } from "../../db/queries/usage.js";
import { enqueueAlertEvaluation } from "../../db/queries/jobs.js";
import { transaction } from "../../db/tx.js";
import { sha256Hex } from "../../domain/sha256.js";
import { appendAudit } from "../audit/append.js";
import { type ExceptionGroups, contractAt, issuedPeriodAt, lateGroup, raiseGroups } from "./late-and-unmapped.js";

export interface VoidInput {
  customerId: string;
  eventIds: string[];
  reason: string;
}

export interface VoidResult {
  voided: number;
  alreadyVoided: number;
  notFound: string[];
}

export async function voidUsage(db: Database, actor: string, input: VoidInput): Promise<VoidResult> {
  const ids = [...new Set(input.eventIds)].sort();
  return transaction(db, async (sql) => {
    // Exclusive, before any row lock: a void re-reads the hour's other events to keep its largest quantity
    // and distinct values, which a batch of the same id being ingested meanwhile would not be among.
    await lockIdentifiers(sql, [input.customerId], "exclusive");
    const found = await findUsageEvents(sql, input.customerId, ids);
    const terms = await identifierTerms(sql, [input.customerId]);
    const contractIds = new Set<string>();
    for (const r of found) {
      const c = contractAt(terms.get(input.customerId), r.occurred_at.getTime());
      if (c) contractIds.add(c);
    }
    const issued = await lockAndReadIssuedPeriods(sql, [...contractIds]);

    const voided = await voidUsageEvents(sql, input.customerId, ids, input.reason, actor);
    const seen = new Set([...found.map((r) => r.event_id), ...voided.map((r) => r.event_id)]);
    const notFound = ids.filter((id) => !seen.has(id));

    const groups: ExceptionGroups = new Map();
    let late = 0;
    for (const r of voided) {
      const ms = r.occurred_at.getTime();
      const contractId = contractAt(terms.get(input.customerId), ms);
      const p = contractId ? issuedPeriodAt(issued.get(contractId), ms) : null;
      if (p) {
        late++;
        lateGroup(groups, p).voided++;
      }
    }
    await raiseGroups(sql, groups);
    const touched = new Set(voided.flatMap((r) => contractAt(terms.get(input.customerId), r.occurred_at.getTime()) ?? []));
    await enqueueAlertEvaluation(sql, [...touched]);

    const result: VoidResult = { voided: voided.length, alreadyVoided: ids.length - notFound.length - voided.length, notFound };
    await appendAudit(sql, {
      actor,
      action: "usage.voided",
      entityType: "customer",
      entityId: input.customerId,
      payload: {
        customerId: input.customerId,
        reason: input.reason,
        requested: ids.length,
        voided: result.voided,
        alreadyVoided: result.alreadyVoided,
        notFound: notFound.length,
        inIssuedPeriods: late,
        digest: sha256Hex(ids.join("\n")),
      },
    });
    return result;
  });
}
