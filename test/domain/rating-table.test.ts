// Hand-checked rating cases: every rule of docs/rating.md and their interactions. Each case states the
// arithmetic in its name or comment; lines are compared as "kind [metric|grant] amount".
import { describe, expect, it } from "vitest";
import type { ContractTermsInput } from "../../src/domain/index.js";
import { lineSummary, perUnit, rate, type Spec } from "./fixtures.js";

interface Case {
  name: string;
  spec: Spec;
  lines?: string[];
  total?: string;
  delta?: string;
  action?: "invoice" | "credit_memo" | "none";
  /** "kind:subject" of every exception, in order (default: none). */
  exceptions?: string[];
  /** Every line's description, in order: the words a customer checks the number with. */
  descriptions?: string[];
}

const api = (unitPrice: string, extra: Record<string, unknown> = {}) => perUnit("api", unitPrice, extra);
const one = (t: ContractTermsInput): Spec["versions"] => [{ terms: t }];
const tiers3 = [
  { upTo: "1000", unitPrice: "0.10" },
  { upTo: "5000", unitPrice: "0.05" },
  { upTo: null, unitPrice: "0.01" },
];
const grant = (id: string, amount: string, expiresAt = "2027-01-01T00:00:00Z", grantedAt = "2026-01-01T00:00:00Z") => ({
  id,
  amount,
  grantedAt,
  expiresAt,
});
const JAN11 = "2026-01-11T00:00:00Z"; // January 2026 = 31 days: 10/31 before, 21/31 after

const cases: Case[] = [
  // ---- rules 2–4: usage, included units, pricing models
  { name: "per_unit: 1000 × 0.10 = 100.00", spec: { versions: one({ meters: [api("0.10")] }), usage: { api: "1000" } },
    lines: ["usage api 100.00"], total: "100.00", delta: "100.00", action: "invoice" },
  { name: "included units: (1200 − 500) × 0.10 = 70.00", spec: { versions: one({ meters: [api("0.10", { included: "500" })] }), usage: { api: "1200" } },
    lines: ["usage api 70.00"], total: "70.00" },
  { name: "usage below included: billable 0 → 0.00, nothing to issue", spec: { versions: one({ meters: [api("0.10", { included: "5000" })] }), usage: { api: "1200" } },
    lines: ["usage api 0.00"], total: "0.00", delta: "0.00", action: "none" },
  { name: "graduated over three tiers: 1000×0.10 + 4000×0.05 + 1000×0.01 = 310.00",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "graduated", tiers: tiers3 } }] }), usage: { api: "6000" } },
    lines: ["usage api 310.00"] },
  { name: "graduated flat fee of a reached tier: 310 + 25 = 335.00",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "graduated", tiers: [tiers3[0]!, { ...tiers3[1]!, flatFee: "25.00" }, tiers3[2]!] } }] }), usage: { api: "6000" } },
    lines: ["usage api 335.00"] },
  { name: "graduated: units exactly at a bound stay in that tier (no tier-2 flat fee): 1000 × 0.10 = 100.00",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "graduated", tiers: [tiers3[0]!, { ...tiers3[1]!, flatFee: "25.00" }, tiers3[2]!] } }] }), usage: { api: "1000" } },
    lines: ["usage api 100.00"] },
  { name: "volume: tier boundary hit exactly → lower tier, 1000 × 0.10 = 100.00",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "volume", tiers: tiers3 } }] }), usage: { api: "1000" } },
    lines: ["usage api 100.00"] },
  { name: "volume: one unit past the boundary prices all units at tier 2, 1001 × 0.05 = 50.05",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "volume", tiers: tiers3 } }] }), usage: { api: "1001" } },
    lines: ["usage api 50.05"] },
  { name: "volume: flat fee of the tier the total falls in, 2000 × 0.05 + 10 = 110.00",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "volume", tiers: [tiers3[0]!, { ...tiers3[1]!, flatFee: "10" }, tiers3[2]!] } }] }), usage: { api: "2000" } },
    lines: ["usage api 110.00"] },
  { name: "package of 1000 with 1001 units → 2 packages × 50 = 100.00",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "package", packageSize: "1000", packagePrice: "50" } }] }), usage: { api: "1001" } },
    lines: ["usage api 100.00"] },
  { name: "package: exactly 1000 units → 1 package = 50.00",
    spec: { versions: one({ meters: [{ metric: "api", pricing: { model: "package", packageSize: "1000", packagePrice: "50" } }] }), usage: { api: "1000" } },
    lines: ["usage api 50.00"] },
  { name: "package after included units: 1500 − 500 = 1000 → 1 package = 50.00",
    spec: { versions: one({ meters: [{ metric: "api", included: "500", pricing: { model: "package", packageSize: "1000", packagePrice: "50" } }] }), usage: { api: "1500" } },
    lines: ["usage api 50.00"] },

  // ---- rules 5–7: discounts, caps, fixed fees
  { name: "meter discount 10%: 100 − 10 = 90.00", spec: { versions: one({ meters: [api("0.10", { discountPercent: "10" })] }), usage: { api: "1000" } },
    lines: ["usage api 90.00"] },
  { name: "meter cap: 10000 × 0.10 = 1000 capped at 500.00", spec: { versions: one({ meters: [api("0.10", { cap: { amount: "500" } })] }), usage: { api: "10000" } },
    lines: ["usage api 500.00"],
    descriptions: ["api: 10,000 used − 0 included = 10,000 billable; 10,000 × 0.1 = 1,000.00; meter cap 500.00: −500.00 (v1, Jan 1–Jan 31, 2026)"] },
  { name: "meter discount before meter cap: 1000 − 20% = 800, cap 700 → 700.00 (cap first would give 560)",
    spec: { versions: one({ meters: [api("1", { discountPercent: "20", cap: { amount: "700" } })] }), usage: { api: "1000" } },
    lines: ["usage api 700.00"] },
  { name: "contract discount 10% on the sum of usage charges (100 + 200) = −30.00",
    spec: { versions: one({ discountPercent: "10", meters: [api("0.10"), perUnit("storage", "2.00")] }), usage: { api: "1000", storage: "100" } },
    lines: ["usage api 100.00", "usage storage 200.00", "contract_discount -30.00"], total: "270.00" },
  { name: "contract cap binds after the contract discount: 1000 − 100 = 900, cap 800 → −100.00",
    spec: { versions: one({ discountPercent: "10", cap: { amount: "800" }, meters: [api("1")] }), usage: { api: "1000" } },
    lines: ["usage api 1000.00", "contract_discount -100.00", "contract_cap -100.00"], total: "800.00",
    descriptions: [
      "api: 1,000 used − 0 included = 1,000 billable; 1,000 × 1 = 1,000.00 (v1, Jan 1–Jan 31, 2026)",
      "Contract discount 10% of usage charges 1,000.00 (v1, Jan 1–Jan 31, 2026)",
      "Contract cap 800.00 on usage charges 900.00: −100.00 (v1, Jan 1–Jan 31, 2026)",
    ] },
  { name: "contract cap that would bind before the discount but not after: 1000 − 20% = 800 < cap 850",
    spec: { versions: one({ discountPercent: "20", cap: { amount: "850" }, meters: [api("1")] }), usage: { api: "1000" } },
    lines: ["usage api 1000.00", "contract_discount -200.00"], total: "800.00" },
  { name: "platform fee 500.00 plus usage", spec: { versions: one({ platformFee: { amount: "500.00" }, meters: [api("0.10")] }), usage: { api: "1000" } },
    lines: ["platform_fee 500.00", "usage api 100.00"], total: "600.00" },

  // ---- rule 1: segments and proration
  { name: "amendment changes graduated tiers mid-month: bounds 3100 × 10/31 = 1000 and × 21/31 = 2100",
    spec: {
      versions: [
        { terms: { platformFee: { amount: "3100" }, meters: [{ metric: "api", pricing: { model: "graduated", tiers: [{ upTo: "3100", unitPrice: "0.10" }, { upTo: null, unitPrice: "0.05" }] } }] } },
        { from: JAN11, terms: { platformFee: { amount: "3100" }, meters: [{ metric: "api", pricing: { model: "graduated", tiers: [{ upTo: "3100", unitPrice: "0.20" }, { upTo: null, unitPrice: "0.10" }] } }] } },
      ],
      // segment 1: 1000 × 0.10 + 500 × 0.05 = 125; segment 2: 2100 × 0.20 + 900 × 0.10 = 510
      usage: [{ api: "1500" }, { api: "3000" }],
    },
    lines: ["platform_fee 1000.00", "usage api 125.00", "platform_fee 2100.00", "usage api 510.00"], total: "3735.00",
    descriptions: [
      "Platform fee 3,100.00 × 10 of 31 days (v1, Jan 1–Jan 10, 2026)",
      "api: 1,500 used − 0 included = 1,500 billable; graduated (tier bounds and flat fees × 10 of 31 days): tier 1 1,000 × 0.1 + tier 2 500 × 0.05 = 125.00 (v1, Jan 1–Jan 10, 2026)",
      "Platform fee 3,100.00 × 21 of 31 days (v2, Jan 11–Jan 31, 2026)",
      "api: 3,000 used − 0 included = 3,000 billable; graduated (tier bounds and flat fees × 21 of 31 days): tier 1 2,100 × 0.2 + tier 2 900 × 0.1 = 510.00 (v2, Jan 11–Jan 31, 2026)",
    ] },
  { name: "included units prorated by segment: (1200 − 1000) × 0.10 = 20.00 and max(0, 2000 − 2100) = 0",
    spec: { versions: [{ terms: { meters: [api("0.10", { included: "3100" })] } }, { from: JAN11, terms: { meters: [api("0.10", { included: "3100" })] } }], usage: [{ api: "1200" }, { api: "2000" }] },
    lines: ["usage api 20.00", "usage api 0.00"], total: "20.00",
    descriptions: [
      "api: 1,200 used − 1,000 included (3,100 × 10 of 31 days) = 200 billable; 200 × 0.1 = 20.00 (v1, Jan 1–Jan 10, 2026)",
      "api: 2,000 used − 2,100 included (3,100 × 21 of 31 days) = 0 billable; 0 × 0.1 = 0.00 (v2, Jan 11–Jan 31, 2026)",
    ] },
  { name: "prorated platform fee, each segment rounded: 100/31 = 3.2258 → 3.23, 3000/31 = 96.774 → 96.77",
    spec: { versions: [{ terms: { platformFee: { amount: "100.00" }, meters: [] } }, { from: "2026-01-02T00:00:00Z", terms: { platformFee: { amount: "100.00" }, meters: [] } }] },
    lines: ["platform_fee 3.23", "platform_fee 96.77"], total: "100.00",
    descriptions: ["Platform fee 100.00 × 1 of 31 days (v1, Jan 1, 2026)", "Platform fee 100.00 × 30 of 31 days (v2, Jan 2–Jan 31, 2026)"] },
  { name: "a mid-day amendment in a DST month (Europe/Paris, March = 743 hours): 100 × 228/743 = 30.69, 100 × 515/743 = 69.31",
    spec: {
      contract: { timezone: "Europe/Paris", startDate: "2026-03-01" },
      versions: [
        { from: "2026-02-28T23:00:00Z", terms: { platformFee: { amount: "100.00" }, meters: [] } },
        { from: "2026-03-10T11:00:00Z", terms: { platformFee: { amount: "100.00" }, meters: [] } },
      ],
      period: "2026-03-05T00:00:00Z",
    },
    lines: ["platform_fee 30.69", "platform_fee 69.31"], total: "100.00",
    descriptions: [
      "Platform fee 100.00 × 228 of 743 hours (v1, Mar 1, 2026 00:00 to Mar 10, 2026 12:00)",
      "Platform fee 100.00 × 515 of 743 hours (v2, Mar 10, 2026 12:00 to Apr 1, 2026 00:00)",
    ] },

  // ---- rule 8: commitment
  { name: "commitment met exactly: no shortfall", spec: { versions: one({ commitment: { amount: "1000" }, meters: [api("0.10")] }), usage: { api: "10000" } },
    lines: ["usage api 1000.00"], total: "1000.00" },
  { name: "platform fee does not count toward the commitment: 1000 − 600 = 400.00",
    spec: { versions: one({ platformFee: { amount: "500" }, commitment: { amount: "1000" }, meters: [api("0.10")] }), usage: { api: "6000" } },
    lines: ["platform_fee 500.00", "usage api 600.00", "commitment_shortfall 400.00"], total: "1500.00" },
  { name: "commitment prorated by segment: 3100 × 10/31 = 1000.00 (v2 has none)",
    spec: { versions: [{ terms: { commitment: { amount: "3100" }, meters: [api("1")] } }, { from: JAN11, terms: { meters: [api("1")] } }], usage: [{}, {}] },
    lines: ["usage api 0.00", "usage api 0.00", "commitment_shortfall 1000.00"], total: "1000.00" },
  { name: "commitment across an amendment, by its parts: 20000 × 40/90 + 30000 × 50/90 = 25555.56 − usage 18000 = 7555.56",
    spec: {
      contract: { billingPeriod: "quarterly" },
      versions: [
        { terms: { commitment: { amount: "20000.00" }, meters: [api("1")] } },
        { from: "2026-02-10T00:00:00Z", terms: { commitment: { amount: "30000.00" }, meters: [api("1")] } },
      ],
      usage: [{ api: "8000" }, { api: "10000" }],
    },
    lines: ["usage api 8000.00", "usage api 10000.00", "commitment_shortfall 7555.56"], total: "25555.56",
    descriptions: [
      "api: 8,000 used − 0 included = 8,000 billable; 8,000 × 1 = 8,000.00 (v1, Jan 1–Feb 9, 2026)",
      "api: 10,000 used − 0 included = 10,000 billable; 10,000 × 1 = 10,000.00 (v2, Feb 10–Mar 31, 2026)",
      "Minimum commitment 25,555.555555… = 20,000.00 × 40 of 90 days (v1, Jan 1–Feb 9, 2026) + 30,000.00 × 50 of 90 days (v2, Feb 10–Mar 31, 2026), " +
        "rounded 25,555.56; usage charges 18,000.00 (platform fees do not count); shortfall 7,555.56",
    ] },
  { name: "commitment compared with charges after the contract discount: 1000 − 900 = 100.00",
    spec: { versions: one({ discountPercent: "10", commitment: { amount: "1000" }, meters: [api("1")] }), usage: { api: "1000" } },
    lines: ["usage api 1000.00", "contract_discount -100.00", "commitment_shortfall 100.00"], total: "1000.00" },
  { name: "commitment compared with charges after the meter cap: 1000 − 600 = 400.00",
    spec: { versions: one({ commitment: { amount: "1000" }, meters: [api("1", { cap: { amount: "600" } })] }), usage: { api: "1000" } },
    lines: ["usage api 600.00", "commitment_shortfall 400.00"], total: "1000.00" },

  // ---- rule 10: prepaid credits
  { name: "credit pays usage: −300.00, total 0.00, zero-amount invoice records the drawdown",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("g1", "1000")] }), usage: { api: "300" } },
    lines: ["usage api 300.00", "credit_applied g1 -300.00"], total: "0.00", delta: "0.00", action: "invoice" },
  { name: "credits never pay the platform fee",
    spec: { versions: one({ platformFee: { amount: "500" }, meters: [api("1")], prepaidCredits: [grant("g1", "1000")] }), usage: { api: "300" } },
    lines: ["platform_fee 500.00", "usage api 300.00", "credit_applied g1 -300.00"], total: "500.00", delta: "500.00", action: "invoice" },
  { name: "credit limited by the available balance the caller computed",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("g1", "1000")] }), usage: { api: "300" }, creditBalances: [{ grantId: "g1", available: "100" }] },
    lines: ["usage api 300.00", "credit_applied g1 -100.00"], total: "200.00",
    descriptions: [
      "api: 300 used − 0 included = 300 billable; 300 × 1 = 300.00 (v1, Jan 1–Jan 31, 2026)",
      "Prepaid credit g1 (expires 2027-01-01T00:00:00.000Z): 100.00 available, 100.00 applied, 0.00 left",
    ] },
  { name: "two grants: earliest expiry first",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("g-late", "1000"), grant("g-early", "100", "2026-06-01T00:00:00Z")] }), usage: { api: "300" } },
    lines: ["usage api 300.00", "credit_applied g-early -100.00", "credit_applied g-late -200.00"], total: "0.00" },
  { name: "two grants expiring together: by grant id",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("b", "100"), grant("a", "100")] }), usage: { api: "150" } },
    lines: ["usage api 150.00", "credit_applied a -100.00", "credit_applied b -50.00"], total: "0.00" },
  { name: "a grant expiring mid-period still pays the period",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("g1", "1000", "2026-01-15T00:00:00Z")] }), usage: { api: "300" } },
    lines: ["usage api 300.00", "credit_applied g1 -300.00"], total: "0.00" },
  { name: "a grant expired at the period start, or granted at its end, does not apply",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("old", "1000", "2026-01-01T00:00:00Z", "2025-01-01T00:00:00Z"), grant("new", "1000", "2027-01-01T00:00:00Z", "2026-02-01T00:00:00Z")] }), usage: { api: "300" } },
    lines: ["usage api 300.00"], total: "300.00" },
  { name: "credits pay the shortfall and usage net of the contract discount: 500 − 50 + 550 = 1000",
    spec: { versions: one({ discountPercent: "10", commitment: { amount: "1000" }, meters: [api("1")], prepaidCredits: [grant("g1", "5000")] }), usage: { api: "500" } },
    lines: ["usage api 500.00", "contract_discount -50.00", "commitment_shortfall 550.00", "credit_applied g1 -1000.00"], total: "0.00" },
  { name: "a balance with sub-cent digits is truncated, never exceeded: 100.005 → 100.00",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("g1", "1000")] }), usage: { api: "300" }, creditBalances: [{ grantId: "g1", available: "100.005" }] },
    lines: ["usage api 300.00", "credit_applied g1 -100.00"], total: "200.00" },
  { name: "credits of the latest version's grant definition win",
    spec: { versions: [{ terms: { meters: [api("1")], prepaidCredits: [grant("g1", "10")] } }, { from: JAN11, terms: { meters: [api("1")], prepaidCredits: [grant("g1", "50")] } }], usage: [{ api: "100" }, { api: "100" }] },
    lines: ["usage api 100.00", "usage api 100.00", "credit_applied g1 -50.00"], total: "150.00" },

  // ---- rule 9: rounding
  { name: "JPY has no minor unit, half_up: 2469 × 0.5 = 1234.5 → 1235",
    spec: { contract: { currency: "JPY" }, versions: one({ meters: [api("0.5")] }), usage: { api: "2469" } },
    lines: ["usage api 1235"], total: "1235", delta: "1235" },
  { name: "JPY half_even: 1234.5 → 1234",
    spec: { contract: { currency: "JPY", roundingMode: "half_even" }, versions: one({ meters: [api("0.5")] }), usage: { api: "2469" } },
    lines: ["usage api 1234"], total: "1234" },
  { name: "half_up on a half cent: 0.125 → 0.13", spec: { versions: one({ meters: [api("0.125")] }), usage: { api: "1" } },
    lines: ["usage api 0.13"], total: "0.13" },
  { name: "half_even on a half cent: 0.125 → 0.12", spec: { contract: { roundingMode: "half_even" }, versions: one({ meters: [api("0.125")] }), usage: { api: "1" } },
    lines: ["usage api 0.12"], total: "0.12" },
  { name: "half_even on an odd cent: 0.135 → 0.14", spec: { contract: { roundingMode: "half_even" }, versions: one({ meters: [api("0.135")] }), usage: { api: "1" } },
    lines: ["usage api 0.14"] },
  { name: "BHD has three decimals: 0.0005 → 0.001", spec: { contract: { currency: "BHD" }, versions: one({ meters: [api("0.0005")] }), usage: { api: "1" } },
    lines: ["usage api 0.001"], total: "0.001" },
  { name: "three prorated fee lines rounded one by one: 0.32 + 0.32 + 0.35 = 0.99",
    spec: { versions: [{ terms: { platformFee: { amount: "0.99" }, meters: [] } }, { from: "2026-01-11T00:00:00Z", terms: { platformFee: { amount: "0.99" }, meters: [] } }, { from: "2026-01-21T00:00:00Z", terms: { platformFee: { amount: "0.99" }, meters: [] } }] },
    // 0.99 × 10/31 = 0.3193 → 0.32; × 10/31 → 0.32; × 11/31 = 0.3513 → 0.35
    lines: ["platform_fee 0.32", "platform_fee 0.32", "platform_fee 0.35"], total: "0.99" },

  // ---- rule 11: compare and action
  { name: "true-down with allowTrueDown → credit memo", spec: { contract: { allowTrueDown: true }, versions: one({ meters: [api("0.10")] }), usage: { api: "1000" }, alreadyBilled: "150.00" },
    total: "100.00", delta: "-50.00", action: "credit_memo" },
  { name: "true-down without allowTrueDown → none and over_billed", spec: { versions: one({ meters: [api("0.10")] }), usage: { api: "1000" }, alreadyBilled: "150.00" },
    total: "100.00", delta: "-50.00", action: "none", exceptions: ["over_billed:"] },
  { name: "billed exactly → none", spec: { versions: one({ meters: [api("0.10")] }), usage: { api: "1000" }, alreadyBilled: "100" },
    delta: "0.00", action: "none" },
  { name: "same total, credits different from the last document's → zero-amount invoice",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("g1", "1000")] }), usage: { api: "300" }, previousCreditsApplied: [{ grantId: "g1", amount: "250.00" }] },
    delta: "0.00", action: "invoice" },
  { name: "same total and same credits → none",
    spec: { versions: one({ meters: [api("1")], prepaidCredits: [grant("g1", "1000")] }), usage: { api: "300" }, previousCreditsApplied: [{ grantId: "g1", amount: "300" }] },
    delta: "0.00", action: "none" },

  // ---- periods and time zones
  { name: "DST month in America/New_York: 743-hour March, amendment at local midnight Mar 16 → 359 h and 384 h",
    spec: {
      contract: { timezone: "America/New_York" },
      versions: [
        { from: "2026-01-01T05:00:00Z", terms: { platformFee: { amount: "743.00" }, meters: [] } },
        { from: "2026-03-16T04:00:00Z", terms: { platformFee: { amount: "743.00" }, meters: [] } },
      ],
      period: "2026-03-01T05:00:00Z",
    },
    lines: ["platform_fee 359.00", "platform_fee 384.00"], total: "743.00" },
  { name: "leap-year February: 29 days, amendment on the 15th → 14/29 and 15/29 of 2900",
    spec: {
      contract: { startDate: "2028-01-01" },
      versions: [{ from: "2028-01-01T00:00:00Z", terms: { platformFee: { amount: "2900" }, meters: [] } }, { from: "2028-02-15T00:00:00Z", terms: { platformFee: { amount: "2900" }, meters: [] } }],
      period: "2028-02-01T00:00:00Z",
    },
    lines: ["platform_fee 1400.00", "platform_fee 1500.00"], total: "2900.00" },
  { name: "quarterly period: 90 days, amendment on Mar 1 → 59/90 and 31/90 of 9000",
    spec: { contract: { billingPeriod: "quarterly" }, versions: [{ terms: { platformFee: { amount: "9000" }, meters: [] } }, { from: "2026-03-01T00:00:00Z", terms: { platformFee: { amount: "9000" }, meters: [] } }] },
    lines: ["platform_fee 5900.00", "platform_fee 3100.00"], total: "9000.00" },
  { name: "annual period: 365 days, amendment on Jul 1 → 181/365 and 184/365 of 365",
    spec: { contract: { billingPeriod: "annual" }, versions: [{ terms: { platformFee: { amount: "365" }, meters: [] } }, { from: "2026-07-01T00:00:00Z", terms: { platformFee: { amount: "365" }, meters: [] } }] },
    lines: ["platform_fee 181.00", "platform_fee 184.00"], total: "365.00" },
  { name: "contract ending mid-period: Mar 1–15 prorated 15/31 against the nominal month (fee, included units)",
    spec: { contract: { endDate: "2026-03-15" }, versions: one({ platformFee: { amount: "3100" }, meters: [api("0.10", { included: "3100" })] }), period: "2026-03-01T00:00:00Z", usage: { api: "2000" } },
    // fee 3100 × 15/31 = 1500; included 1500; (2000 − 1500) × 0.10 = 50
    lines: ["platform_fee 1500.00", "usage api 50.00"], total: "1550.00" },

  // ---- term commitment
  { name: "term commitment: shortfall billed in the term's last period (1000 − (100 + 200 + 300) = 400)",
    spec: { contract: { endDate: "2026-03-31" }, versions: one({ commitment: { amount: "1000", scope: "term" }, meters: [api("1")] }), period: "2026-03-01T00:00:00Z",
      usage: { api: "300" }, otherUsage: { "2026-01-01T00:00:00Z": { api: "100" }, "2026-02-01T00:00:00Z": { api: "200" } } },
    lines: ["usage api 300.00", "commitment_shortfall 400.00"], total: "700.00" },
  { name: "term commitment: nothing before the last period",
    spec: { contract: { endDate: "2026-03-31" }, versions: one({ commitment: { amount: "1000", scope: "term" }, meters: [api("1")] }), period: "2026-02-01T00:00:00Z", usage: { api: "200" } },
    lines: ["usage api 200.00"], total: "200.00" },
  { name: "term commitment met over the term (400 + 300 + 300)",
    spec: { contract: { endDate: "2026-03-31" }, versions: one({ commitment: { amount: "1000", scope: "term" }, meters: [api("1")] }), period: "2026-03-01T00:00:00Z",
      usage: { api: "300" }, otherUsage: { "2026-01-01T00:00:00Z": { api: "400" }, "2026-02-01T00:00:00Z": { api: "300" } } },
    lines: ["usage api 300.00"], total: "300.00" },
  { name: "evergreen contract: a term commitment is never evaluated",
    spec: { versions: one({ commitment: { amount: "1000", scope: "term" }, meters: [api("1")] }), period: "2026-03-01T00:00:00Z", usage: { api: "300" } },
    lines: ["usage api 300.00"] },

  // ---- exceptions
  { name: "usage spike: 601 > 3 × average(100, 200, 300) = 600",
    spec: { versions: one({ spikeFactor: "3", meters: [api("1")] }), period: "2026-04-01T00:00:00Z", usage: { api: "601" },
      otherUsage: { "2026-01-01T00:00:00Z": { api: "100" }, "2026-02-01T00:00:00Z": { api: "200" }, "2026-03-01T00:00:00Z": { api: "300" } } },
    lines: ["usage api 601.00"], exceptions: ["usage_spike:api"] },
  { name: "usage spike across a mid-period amendment: 300 + 301 = 601 > 3 × average(100, 200, 300) = 600",
    spec: { versions: [{ terms: { spikeFactor: "3", meters: [api("1")] } }, { from: "2026-04-16T00:00:00Z", terms: { spikeFactor: "3", meters: [api("1")] } }],
      period: "2026-04-01T00:00:00Z", usage: [{ api: "300" }, { api: "301" }],
      otherUsage: { "2026-01-01T00:00:00Z": { api: "100" }, "2026-02-01T00:00:00Z": { api: "200" }, "2026-03-01T00:00:00Z": { api: "300" } } },
    lines: ["usage api 300.00", "usage api 301.00"], exceptions: ["usage_spike:api"] },
  { name: "no spike at exactly the factor: 600 = 3 × 200",
    spec: { versions: one({ spikeFactor: "3", meters: [api("1")] }), period: "2026-04-01T00:00:00Z", usage: { api: "600" },
      otherUsage: { "2026-01-01T00:00:00Z": { api: "100" }, "2026-02-01T00:00:00Z": { api: "200" }, "2026-03-01T00:00:00Z": { api: "300" } } } },
  { name: "spike over the one prior period that exists: 301 > 3 × 100",
    spec: { versions: one({ spikeFactor: "3", meters: [api("1")] }), period: "2026-02-01T00:00:00Z", usage: { api: "301" }, otherUsage: { "2026-01-01T00:00:00Z": { api: "100" } } },
    exceptions: ["usage_spike:api"] },
  { name: "no spike check in the first period, nor when the prior average is 0",
    spec: { versions: one({ spikeFactor: "3", meters: [api("1")] }), period: "2026-01-01T00:00:00Z", usage: { api: "1000000" } } },
  { name: "no spike when prior periods had no usage",
    spec: { versions: one({ spikeFactor: "3", meters: [api("1")] }), period: "2026-04-01T00:00:00Z", usage: { api: "1000000" } } },
  { name: "materiality: |delta| 1000.00 ≥ threshold 1000",
    spec: { versions: one({ materialityThreshold: "1000", meters: [api("1")] }), usage: { api: "1000" } },
    delta: "1000.00", exceptions: ["materiality:"] },
  { name: "materiality on a credit memo too: |−1000.00| ≥ 1000",
    spec: { contract: { allowTrueDown: true }, versions: one({ materialityThreshold: "1000", meters: [api("1")] }), usage: { api: "1000" }, alreadyBilled: "2000" },
    delta: "-1000.00", action: "credit_memo", exceptions: ["materiality:"] },
  { name: "below materiality: 999.99 < 1000",
    spec: { versions: one({ materialityThreshold: "1000", meters: [api("1")] }), usage: { api: "999.99" } },
    delta: "999.99", exceptions: [] },
  { name: "missing terms: the gap before the first version is not rated (fee and usage from Jan 11 only)",
    spec: { versions: [{ from: JAN11, terms: { platformFee: { amount: "3100" }, meters: [api("0.10")] } }], usage: [{ api: "500" }, { api: "1000" }] },
    lines: ["platform_fee 2100.00", "usage api 100.00"], total: "2200.00",
    exceptions: ["missing_terms:2026-01-01T00:00:00.000Z/2026-01-11T00:00:00.000Z"] },
  { name: "unpriced metric: not billed, raised once",
    spec: { versions: one({ meters: [api("0.10")] }), usage: { api: "1000", storage_gb: "50" } },
    lines: ["usage api 100.00"], total: "100.00", exceptions: ["unpriced_metric:storage_gb"] },
  { name: "amendment conflict: two versions share an effectiveFrom (the higher number is used)",
    spec: { versions: [{ terms: { meters: [api("1")] } }, { from: "2026-01-15T00:00:00Z", terms: { meters: [api("2")] } }, { from: "2026-01-15T00:00:00Z", terms: { meters: [api("3")] } }], usage: [{ api: "1" }, { api: "1" }] },
    lines: ["usage api 1.00", "usage api 3.00"], exceptions: ["amendment_conflict:2,3"] },
  { name: "amendment conflict: a version taking effect strictly inside an issued period",
    spec: { versions: [{ terms: { meters: [api("1")] } }, { from: "2026-01-15T00:00:00Z", terms: { meters: [api("2")] } }], usage: [{ api: "1" }, { api: "1" }],
      issuedPeriods: [{ start: "2026-01-01T00:00:00Z", end: "2026-02-01T00:00:00Z" }], alreadyBilled: "1" },
    lines: ["usage api 1.00", "usage api 2.00"], exceptions: ["amendment_conflict:2"] },
  { name: "no conflict for a version taking effect at an issued period's boundary",
    spec: { versions: [{ terms: { meters: [api("1")] } }, { from: "2026-02-01T00:00:00Z", terms: { meters: [api("2")] } }], period: "2026-02-01T00:00:00Z", usage: { api: "1" },
      issuedPeriods: [{ start: "2026-01-01T00:00:00Z", end: "2026-02-01T00:00:00Z" }, { start: "2026-02-01T00:00:00Z", end: "2026-03-01T00:00:00Z" }], alreadyBilled: "2" },
    lines: ["usage api 2.00"], action: "none", exceptions: [] },
];

describe("rating table", () => {
  it("has at least 40 cases", () => expect(cases.length).toBeGreaterThanOrEqual(40));

  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const r = rate(c.spec);
    if (c.lines) expect(lineSummary(r)).toEqual(c.lines);
    if (c.total) expect(r.total).toBe(c.total);
    if (c.delta) expect(r.delta).toBe(c.delta);
    if (c.action) expect(r.action).toBe(c.action);
    if (c.descriptions) expect(r.lines.map((l) => l.description)).toEqual(c.descriptions);
    expect(r.exceptions.map((e) => `${e.kind}:${e.subject}`)).toEqual(c.exceptions ?? []);
    expect(r.exceptions.every((e) => e.blocking)).toBe(true);
  });
});
