// Examples for the OpenAPI document: the annual worked example of docs/rating.md, seen as a calculation, the
// document issued from it and the exception approved on the way.
const P = { start: "2026-01-01T00:00:00.000Z", end: "2027-01-01T00:00:00.000Z" };
const exampleLines = [
  {
    kind: "platform_fee" as const,
    segment: { from: P.start, to: P.end, version: 1 },
    usage: null,
    included: null,
    billable: null,
    fraction: "1",
    description: "Platform fee 120,000.00 (v1, Jan 1–Dec 31, 2026)",
    unroundedAmount: "120000",
    amount: "120000.00",
  },
  {
    kind: "usage" as const,
    meterId: "api_calls",
    metric: "api_calls",
    aggregation: "sum" as const,
    filter: null,
    unit: "call",
    segment: { from: P.start, to: P.end, version: 1 },
    usage: "1400000",
    included: "1000000",
    billable: "400000",
    pricingModel: "per_unit" as const,
    unitPrice: "0.08",
    fraction: "1",
    gross: "32000",
    discount: "0",
    capped: "0",
    discountPercent: "0",
    description: "api_calls: 1,400,000 used − 1,000,000 included = 400,000 billable; 400,000 × 0.08 = 32,000.00 (v1, Jan 1–Dec 31, 2026)",
    unroundedAmount: "32000",
    amount: "32000.00",
  },
];

export const calculationExample = {
  id: "0196f6d3-0a1b-7c2d-8e3f-405162738495",
  contractId: "0196f6d2-3c4e-7a10-8b2c-5d6e7f809a1b",
  period: P,
  periodClosed: true,
  segments: [{ from: P.start, to: P.end, version: 1, fraction: "1" }],
  lines: exampleLines,
  total: "152000.00",
  alreadyBilled: "120000.00",
  delta: "32000.00",
  action: "invoice" as const,
  currency: "USD",
  creditsApplied: [],
  exceptions: [],
  inputsHash: "a7c103288ddb352495e82bc4d8f0313db85c3049f89b0a5e91bfd34ffc0c6061",
  engineVersion: "rating-engine/1.0.0",
  createdAt: "2027-01-02T09:00:00.000Z",
  createdBy: "billing-sync",
};

export const documentExample = {
  id: "0196f6d4-1b2c-7d3e-8f40-5162738495a6",
  number: "INV-000001",
  kind: "invoice" as const,
  contractId: calculationExample.contractId,
  period: P,
  currency: "USD",
  lines: exampleLines.map(({ kind, metric, amount, ...rest }, i) => {
    const { meterId, ...explanation } = rest as typeof rest & { meterId?: string };
    return { lineNo: i + 1, kind, ...(meterId === undefined ? {} : { meterId }), metric: metric ?? null, amount, explanation };
  }),
  subtotal: "152000.00",
  alreadyBilled: "120000.00",
  amount: "32000.00",
  creditsApplied: [],
  calculationId: calculationExample.id,
  inputsHash: calculationExample.inputsHash,
  issuedAt: "2027-01-02T09:30:00.000Z",
  issuedBy: "controller",
};

export const exceptionExample = {
  id: "0196f6d3-0a1b-7c2d-8e3f-4051627384a0",
  kind: "materiality" as const,
  blocking: true,
  status: "approved" as const,
  contractId: calculationExample.contractId,
  customerId: null,
  period: P,
  subject: "delta=32000.00",
  message: "delta 32000.00 is at or above the materiality threshold 25000.00",
  details: { delta: "32000.00", threshold: "25000.00" },
  owner: "revops-lead",
  calculationId: calculationExample.id,
  createdAt: "2027-01-02T09:00:00.000Z",
  lastSeenAt: "2027-01-02T09:00:00.000Z",
  resolution: { decision: "approve", note: "Q4 launch traffic, confirmed with the customer", actor: "controller", at: "2027-01-02T09:20:00.000Z" },
};
