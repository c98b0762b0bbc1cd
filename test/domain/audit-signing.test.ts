// The pure parts of the audit chain's outside anchor: checkpoint signatures, tokens, digests.
import { describe, expect, it } from "vitest";
import {
  checkpointSignatureValid,
  decodeCheckpointToken,
  digestOf,
  encodeCheckpointToken,
  keyIdOf,
  signCheckpoint,
  usageBatchDigest,
} from "../../src/domain/audit-signing.js";

const KEY = Buffer.from("unit-test-audit-signing-key-0123456789");
const OTHER = Buffer.from("another-audit-signing-key-0123456789ab");
const claim = { seq: "42", hash: "a".repeat(64), at: "2026-12-01T10:00:00.000Z", entries: "42" };

describe("checkpoint signatures", () => {
  it("verify with the signing key only, and break on any changed field", () => {
    const cp = signCheckpoint(KEY, claim);
    expect(cp.signature).toMatch(/^[0-9a-f]{64}$/);
    expect(cp.keyId).toBe(keyIdOf(KEY));
    expect(checkpointSignatureValid(KEY, cp)).toBe(true);
    expect(checkpointSignatureValid(OTHER, cp)).toBe(false);
    for (const change of [{ seq: "43" }, { hash: "b".repeat(64) }, { at: "2026-12-01T10:00:00.001Z" }, { entries: "41" }, { signature: "0".repeat(64) }])
      expect(checkpointSignatureValid(KEY, { ...cp, ...change }), JSON.stringify(change)).toBe(false);
    // Deterministic: the same claim signs the same way.
    expect(signCheckpoint(KEY, claim)).toEqual(cp);
  });

  it("key ids tell keys apart without revealing them", () => {
    expect(keyIdOf(KEY)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyIdOf(KEY)).not.toBe(keyIdOf(OTHER));
    expect(KEY.toString("hex")).not.toContain(keyIdOf(KEY));
  });
});

describe("checkpoint tokens", () => {
  it("round-trip, and refuse anything malformed", () => {
    const cp = signCheckpoint(KEY, claim);
    const token = encodeCheckpointToken(cp);
    expect(token).toMatch(/^acp1\.[A-Za-z0-9_-]+$/);
    expect(decodeCheckpointToken(token)).toEqual(cp);
    const b64 = (v: unknown) => `acp1.${Buffer.from(JSON.stringify(v)).toString("base64url")}`;
    for (const bad of [
      "",
      "acp1.",
      "acp2.e30",
      `acp1.${"!".repeat(10)}`,
      "acp1.bm90IGpzb24",
      b64([]),
      b64({ ...cp, extra: 1 }),
      b64({ ...cp, seq: 42 }),
      b64({ ...cp, seq: "0" }),
      b64({ ...cp, hash: "A".repeat(64) }),
      b64({ ...cp, at: "2026-12-01" }),
      `${token}${"A".repeat(1000)}`,
    ])
      expect(decodeCheckpointToken(bad), bad).toBeNull();
  });
});

describe("digests", () => {
  it("digestOf is canonical: key order and decimal spelling do not matter, values do", () => {
    expect(digestOf({ a: 1, b: [1, 2] })).toBe(digestOf({ b: [1, 2], a: 1 }));
    expect(digestOf({ a: 1 })).not.toBe(digestOf({ a: 2 }));
  });

  it("a usage batch's digest ignores order but not any covered field", () => {
    const e = (customerId: string, eventId: string, late = false, h = "1".repeat(64)) => ({ customerId, eventId, bodyHash: h, storedBodyHash: h, late });
    const batch = [e("acme", "1"), e("acme", "2"), e("beta", "1")];
    const d = usageBatchDigest(batch);
    expect(usageBatchDigest([...batch].reverse())).toBe(d);
    expect(usageBatchDigest([e("acme", "1"), e("acme", "2")])).not.toBe(d);
    expect(usageBatchDigest([e("acme", "1"), e("acme", "2"), e("beta", "1", true)])).not.toBe(d);
    expect(usageBatchDigest([e("acme", "1"), e("acme", "2"), { ...e("beta", "1"), bodyHash: "2".repeat(64) }])).not.toBe(d);
    expect(usageBatchDigest([e("acme", "1"), e("acme", "2"), { ...e("beta", "1"), storedBodyHash: "2".repeat(64) }])).not.toBe(d);
    // Field boundaries are unambiguous.
    expect(usageBatchDigest([e("ab", "c")])).not.toBe(usageBatchDigest([e("a", "bc")]));
  });
});
