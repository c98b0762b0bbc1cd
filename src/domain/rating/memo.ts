// Results kept from one rating for the next. A period is often rated again on the same inputs (a preview and
// its issue, a term's earlier periods, the reconciliation, a re-run), and most of a rating then reads the same
// instances: the plan and its segments (cached, plan.ts), the Decimals money.ts shares by text (a usage sum, a
// balance) and what was kept from them (a segment's charges, a line's rounded amount). Decimals never change,
// so a step computed from the same instances computes the same result: it is kept, with those instances,
// under the plan or segment it belongs to (a WeakMap keyed by a long-lived object: nothing outlives the plan,
// and one result per step and plan is kept). Anything else — another instance, even of an equal value — is
// computed anew. What is kept is shared: it is never changed, and what a rating hands out is copied from it.

/** True when both lists hold the same values, compared by identity (strings by value). */
function sameInstances(a: ReadonlyArray<unknown>, b: ReadonlyArray<unknown>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One value per key (a plan, a segment), with the inputs it was computed from. */
export class KeptByInputs<K extends object, V> {
  private readonly kept = new WeakMap<K, { inputs: ReadonlyArray<unknown>; value: V }>();

  /** The value kept for `key` if it was computed from these inputs, else `compute()` (then kept). */
  get(key: K, inputs: ReadonlyArray<unknown>, compute: () => V): V {
    const kept = this.kept.get(key);
    if (kept !== undefined && sameInstances(kept.inputs, inputs)) return kept.value;
    const value = compute();
    this.kept.set(key, { inputs, value });
    return value;
  }
}
