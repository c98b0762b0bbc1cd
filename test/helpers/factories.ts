// Small request helpers for API tests: each goes through the real HTTP stack (inject).
import { expect } from "vitest";
import { type TestRole, auth } from "./app.js";

type App = { inject: (opts: object) => Promise<{ statusCode: number; json: () => any; body: string; headers: Record<string, unknown> }> };

export async function post(app: App, url: string, payload: unknown, role: TestRole = "admin", headers: Record<string, string> = {}) {
  return app.inject({ method: "POST", url, payload: payload as object, headers: { ...auth(role), ...headers } });
}

export async function get(app: App, url: string, role: TestRole = "admin") {
  return app.inject({ method: "GET", url, headers: auth(role) });
}

export async function createContract(app: App, body: Record<string, unknown>) {
  const res = await post(app, "/v1/contracts", body, "writer");
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

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

export async function ingest(app: App, evts: unknown[]) {
  const res = await post(app, "/v1/usage", { events: evts }, "writer");
  expect(res.statusCode, res.body).toBeLessThan(300);
  return res.json();
}

export async function preview(app: App, contractId: string, periodStart?: string) {
  const res = await post(app, `/v1/contracts/${contractId}/true-ups/preview`, periodStart ? { periodStart } : {}, "writer");
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

export async function issue(app: App, contractId: string, calculationId: string, key?: string) {
  return post(app, `/v1/contracts/${contractId}/true-ups`, { calculationId }, "approver", key ? { "idempotency-key": key } : {});
}

export async function approveAll(app: App, calculation: { exceptions: { id: string; blocking: boolean; status: string }[] }) {
  for (const e of calculation.exceptions.filter((x) => x.blocking && x.status !== "approved")) {
    const res = await post(app, `/v1/exceptions/${e.id}/resolve`, { decision: "approve", note: "checked with the customer" }, "approver");
    expect(res.statusCode, res.body).toBe(200);
  }
}

export const lineOf = (calc: { lines: { kind: string; metric?: string }[] }, kind: string, metric?: string) =>
  calc.lines.find((l) => l.kind === kind && (metric === undefined || l.metric === metric)) as any;
