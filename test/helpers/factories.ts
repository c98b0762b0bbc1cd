// Term fixtures shared by the API tests: meters, contract bodies, usage events. Requests go through the test
// client (useTestApp() in ./app.ts).

let ids = 0;
/** An id no other test uses, so overlapping-term rules never collide across tests. */
export const uniqueId = (prefix: string) => `${prefix}-${process.pid}-${++ids}`;

/** A per-unit meter; `unit` only when given (it then shows on the usage line). */
export const meter = (metric: string, unitPrice: string, included = "0", unit?: string) => ({
  metric,
  ...(unit === undefined ? {} : { unit }),
  included,
  pricing: { model: "per_unit", unitPrice },
});

/** A monthly USD contract for 2026 with one meter, api_calls at 1; `over` replaces any field. */
export const contractBody = (over: Record<string, unknown> = {}) => ({
  customerId: uniqueId("cust"),
  name: "Test contract",
  currency: "USD",
  billingPeriod: "monthly",
  startDate: "2026-01-01",
  endDate: "2026-12-31",
  terms: { meters: [meter("api_calls", "1")] },
  ...over,
});

let seq = 0;
/** Events with unique ids; quantity split into `parts` events spread over the given instants. */
export function events(customerId: string, metric: string, quantity: string, timestamp: string, parts = 1) {
  const each = BigInt(quantity) / BigInt(parts);
  const rest = BigInt(quantity) - each * BigInt(parts);
  return Array.from({ length: parts }, (_, i) => ({
    eventId: `evt-${process.pid}-${++seq}`,
    customerId,
    metric,
    quantity: String(i === 0 ? each + rest : each),
    timestamp,
  }));
}

export const lineOf = (calc: { lines: { kind: string; metric?: string }[] }, kind: string, metric?: string) =>
  calc.lines.find((l) => l.kind === kind && (metric === undefined || l.metric === metric)) as any;
