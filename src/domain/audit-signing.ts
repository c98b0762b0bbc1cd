// What makes the audit chain checkable from outside the database (docs/audit.md), as pure functions:
// - checkpoints: an HMAC-SHA256, with a key PostgreSQL never sees, over (seq, hash of the entry at seq, at,
//   entries) of the chain's head; the token form lets a party outside hold one and present it later;
// - digests: sha256 of the canonical JSON of a row set (a document with its lines and drawdowns, a contract
//   version), and of a usage batch's stored events, written into the audit entry that created them and
//   recomputed from the rows by a deep verify. One function per digest, used at write and at verify time.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { canonicalJson } from "./canonical-json.js";
import { sha256Hex } from "./sha256.js";

export interface CheckpointClaim {
  /** The seq of the head entry (a decimal string: seq is a bigint). */
  seq: string;
  /** The hash of the entry at seq. */
  hash: string;
  /** When the checkpoint was taken (ISO instant, milliseconds). */
  at: string;
  /** How many entries the chain held (equal to seq in an intact, gapless chain). */
  entries: string;
}

export interface SignedCheckpoint extends CheckpointClaim {
  /** Which key signed: a fingerprint of it, never the key. */
  keyId: string;
  /** HMAC-SHA256 (hex) of checkpointMessage(claim). */
  signature: string;
}

const DOMAIN = "rating-audit-checkpoint/v1";
const TOKEN_PREFIX = "acp1.";
const SEQ = /^[1-9]\d{0,18}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A public fingerprint of the signing key: tells which key signed a checkpoint (rotation) without revealing it. */
export function keyIdOf(key: Uint8Array): string {
  return createHash("sha256").update(`${DOMAIN}/key-id\n`).update(key).digest("hex").slice(0, 16);
}

/** The exact bytes signed. The domain string keeps a checkpoint MAC from being valid for anything else. */
function checkpointMessage(c: CheckpointClaim): string {
  return canonicalJson({ domain: DOMAIN, seq: c.seq, hash: c.hash, at: c.at, entries: c.entries });
}

export function signCheckpoint(key: Uint8Array, claim: CheckpointClaim): SignedCheckpoint {
  const signature = createHmac("sha256", key).update(checkpointMessage(claim)).digest("hex");
  return { seq: claim.seq, hash: claim.hash, at: claim.at, entries: claim.entries, keyId: keyIdOf(key), signature };
}

/** True when the checkpoint was signed with this key and not altered since (constant-time comparison). */
export function checkpointSignatureValid(key: Uint8Array, cp: SignedCheckpoint): boolean {
  if (cp.keyId !== keyIdOf(key) || !HEX64.test(cp.signature)) return false;
  const expected = createHmac("sha256", key).update(checkpointMessage(cp)).digest();
  return timingSafeEqual(expected, Buffer.from(cp.signature, "hex"));
}

/** The token an outside party keeps: "acp1." + base64url of the signed checkpoint's canonical JSON. */
export function encodeCheckpointToken(cp: SignedCheckpoint): string {
  const { seq, hash, at, entries, keyId, signature } = cp;
  return TOKEN_PREFIX + Buffer.from(canonicalJson({ seq, hash, at, entries, keyId, signature }), "utf8").toString("base64url");
}

/** The checkpoint a token carries, or null when it is not a well-formed token (the signature is not checked here). */
export function decodeCheckpointToken(token: string): SignedCheckpoint | null {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 1000) return null;
  const body = token.slice(TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) return null;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const str = (k: string, re: RegExp) => (typeof o[k] === "string" && re.test(o[k]) ? (o[k] as string) : null);
  const seq = str("seq", SEQ), hash = str("hash", HEX64), at = str("at", INSTANT), entries = str("entries", SEQ);
  const keyId = str("keyId", KEY_ID), signature = str("signature", HEX64);
  if (Object.keys(o).length !== 6 || !seq || !hash || !at || !entries || !keyId || !signature) return null;
  return { seq, hash, at, entries, keyId, signature };
}

/** sha256 (hex) of the canonical JSON of a row set, as read back from the database. */
export function digestOf(record: unknown): string {
  return sha256Hex(canonicalJson(record));
}

/** What a usage batch's digest covers of one stored event: only columns a void never changes. */
export interface UsageEventFacts {
  customerId: string;
  eventId: string;
  /** The body hash recomputed from the event's metric, quantity, timestamp and properties. */
  bodyHash: string;
  /** The body_hash column as stored (it decides duplicate vs conflict on a repeat). */
  storedBodyHash: string;
  late: boolean;
}

const byUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The digest of the events one batch stored, in (customerId, eventId) order by UTF-16 code units (not the
 * database's collation, which may differ between servers). Ids hold no NUL (ingestion refuses control
 * characters), so NUL separates fields unambiguously.
 */
export function usageBatchDigest(events: readonly UsageEventFacts[]): string {
  const sorted = [...events].sort((a, b) => byUnits(a.customerId, b.customerId) || byUnits(a.eventId, b.eventId));
  const h = createHash("sha256");
  for (const e of sorted) h.update(`${e.customerId}\u0000${e.eventId}\u0000${e.bodyHash}\u0000${e.storedBodyHash}\u0000${e.late ? "1" : "0"}\n`, "utf8");
  return h.digest("hex");
}
