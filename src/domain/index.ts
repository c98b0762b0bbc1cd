// The pure core's public API: no I/O, no clock.
export * from "./money.js";
export * from "./periods.js";
export { canonicalJson } from "./canonical-json.js";
export * from "./audit-signing.js";
export * from "./exception-kinds.js";
export { sha256Hex } from "./sha256.js";
export * from "./rating/types.js";
export { ratePeriod } from "./rating/rate-period.js";
export { usageRequest, usageWindows } from "./rating/plan.js";
export * from "./rating/measures.js";
export { inputsHash } from "./rating/hash.js";
export { pricingFor, graduated } from "./rating/pricing.js";
export * from "./terms.js";
export * from "./reconciliation/request.js";
export * from "./reconciliation/classify.js";
export * from "./reconciliation/statement.js";
export { priceBreaks, type BreakUnits, type MetricCharge } from "./reconciliation/money.js";
