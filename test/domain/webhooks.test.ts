// The pure rules of alerts and Standard Webhooks: the signature (checked against the reference library),
// the retry schedule and its jitter, Retry-After, what a response means, private addresses, and when an
// alert is reached.
import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import {
  Decimal,
  STANDARD_RETRY_SCHEDULE,
  alertsReached,
  isPrivateAddress,
  nextAttemptDelayMs,
  outcomeOf,
  parseRetrySchedule,
  retryAfterSeconds,
  webhookSignature,
} from "../../src/domain/index.js";

describe("the signature", () => {
  it("is what the reference library signs and verifies, for any body", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 24, maxLength: 64 }), fc.string(), fc.integer({ min: 1_600_000_000, max: 2_100_000_000 }), (key, body, ts) => {
        const secret = `whsec_${Buffer.from(key).toString("base64")}`;
        const id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
        const ours = webhookSignature(secret, id, ts, body);
        expect(ours).toBe(new Webhook(secret).sign(id, new Date(ts * 1000), body));
      }),
    );
  });

  it("matches the specification's published example", () => {
    // https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md (the example in "Signature scheme")
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = '{"test": 2432232314}';
    expect(webhookSignature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });
});

describe("retries", () => {
  it("parses WEBHOOK_RETRY_SCHEDULE and refuses what is not whole seconds", () => {
    expect(parseRetrySchedule("0, 1,1,2")).toEqual([0, 1, 1, 2]);
    for (const bad of ["", "1,,2", "-1", "1.5", "a", "0x10"]) expect(parseRetrySchedule(bad), bad).toBeNull();
  });

  it("waits the schedule's delay ±10% before each next attempt, none after the last", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: STANDARD_RETRY_SCHEDULE.length }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, random) => {
        const delay = nextAttemptDelayMs(attempt, STANDARD_RETRY_SCHEDULE, null, random);
        const planned = STANDARD_RETRY_SCHEDULE[attempt];
        if (planned === undefined) expect(delay).toBeNull();
        else {
          expect(delay).toBeGreaterThanOrEqual(Math.floor(planned * 900));
          expect(delay).toBeLessThanOrEqual(Math.ceil(planned * 1100));
        }
      }),
    );
    expect(nextAttemptDelayMs(1, [0, 5], null, 0.5)).toBe(5000);
    expect(nextAttemptDelayMs(2, [0, 5], null, 0.5)).toBeNull();
  });

  it("honours Retry-After (seconds or a date) up to an hour, only on 429 and 503", () => {
    const now = Date.parse("2026-11-20T12:00:00Z");
    expect(retryAfterSeconds("120", now)).toBe(120);
    expect(retryAfterSeconds("Fri, 20 Nov 2026 12:00:30 GMT", now)).toBe(30);
    expect(retryAfterSeconds("86400", now)).toBe(3600);
    expect(retryAfterSeconds("soon", now)).toBeNull();
    expect(outcomeOf(503, "7", now)).toEqual({ kind: "failed", retryAfterSeconds: 7 });
    expect(outcomeOf(429, "7", now)).toEqual({ kind: "failed", retryAfterSeconds: 7 });
    expect(outcomeOf(500, "7", now)).toEqual({ kind: "failed", retryAfterSeconds: null });
    expect(nextAttemptDelayMs(1, [0, 1], 7, 0.5)).toBe(7000);
  });

  it("only a 2xx succeeds; a 410 is gone; a 3xx or no answer failed", () => {
    for (const s of [200, 201, 204, 299]) expect(outcomeOf(s, null, 0).kind).toBe("succeeded");
    expect(outcomeOf(410, null, 0).kind).toBe("gone");
    for (const s of [301, 302, 400, 404, 500, null]) expect(outcomeOf(s, null, 0).kind).toBe("failed");
  });
});

it("knows private, loopback and link-local addresses", () => {
  for (const a of ["127.0.0.1", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "::1", "[::1]", "fd00::1", "fe80::1", "::ffff:10.0.0.1", "localhost", "api.localhost"])
    expect(isPrivateAddress(a), a).toBe(true);
  for (const a of ["8.8.8.8", "172.32.0.1", "192.169.0.1", "2606:4700::1111", "hooks.example.com", "::ffff:8.8.8.8"]) expect(isPrivateAddress(a), a).toBe(false);
});

describe("alertsReached", () => {
  const figures = {
    meters: new Map([
      ["calls", { used: new Decimal("800"), included: new Decimal("1000") }],
      ["seats", { used: new Decimal("10"), included: new Decimal("0") }],
    ]),
    usageCharges: new Decimal("499.99"),
    periodCommitment: new Decimal("1000"),
    grantBalances: new Map([
      ["a", new Decimal("150")],
      ["b", new Decimal("100")],
    ]),
  };
  const ids = (alerts: any[]) => alertsReached(alerts, figures).map((r) => r.alert.id);

  it("reaches a share or quantity at ≥ and a balance at ≤, exactly", () => {
    expect(
      ids([
        { id: "share-at", kind: "included_share", metric: "calls", threshold: "0.8" },
        { id: "share-above", kind: "included_share", metric: "calls", threshold: "0.800000001" },
        { id: "qty", kind: "quantity", metric: "calls", threshold: "800" },
        { id: "commit", kind: "commitment_share", threshold: "0.5" },
        { id: "commit-at", kind: "commitment_share", threshold: "0.49999" },
        { id: "grant-at", kind: "credit_balance", grantId: "a", threshold: "150" },
        { id: "grant-below", kind: "credit_balance", grantId: "a", threshold: "149.99" },
        { id: "all", kind: "credit_balance", threshold: "250" },
        { id: "all-below", kind: "credit_balance", threshold: "249.999999" },
      ]),
    ).toEqual(["share-at", "qty", "commit-at", "grant-at", "all"]);
  });

  it("never reaches a share of nothing: 0 included units, no commitment, a grant not valid in the period", () => {
    expect(
      ids([
        { id: "seats", kind: "included_share", metric: "seats", threshold: "0.1" },
        { id: "gone", kind: "credit_balance", grantId: "expired", threshold: "1000" },
      ]),
    ).toEqual([]);
    expect(alertsReached([{ id: "c", kind: "commitment_share", threshold: "0.1" }], { ...figures, periodCommitment: null })).toEqual([]);
  });

  it("reports the value and the share at 9 decimals, half-up", () => {
    const [r] = alertsReached([{ id: "x", kind: "included_share", metric: "calls", threshold: "0.5" }], {
      ...figures,
      meters: new Map([["calls", { used: new Decimal("2"), included: new Decimal("3") }]]),
    });
    expect(r).toMatchObject({ value: "2", share: "0.666666667" });
  });
});
