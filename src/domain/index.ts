// The pure core's public API: no I/O, no clock. Everything else in the app imports the domain from here.
export * from "./money.js";
export * from "./periods.js";
export { canonicalJson } from "./canonical-json.js";
export * from "./audit-signing.js";
export * from "./rating/types.js";
export { ratePeriod, rateUsage } from "./rating/rate-period.js";
export { usageWindows, planRating } from "./rating/plan.js";
export { inputsHash, sha256Hex } from "./rating/hash.js";
export { pricingFor, perUnit, graduated, volume, packaged } from "./rating/pricing.js";
export type { ParsedTier, PriceResult, PricingFunction, TierCharge } from "./rating/pricing.js";
export * from "./terms.js";
