// The one sha256 of the codebase (hex of UTF-8 text). Hashing is pure computation, so the domain may own it.
// crypto.hash is the one-shot form, about twice as fast as createHash for short inputs (usage ingestion
// hashes every event's body).
import { hash } from "node:crypto";

export function sha256Hex(text: string): string {
  return hash("sha256", text, "hex");
}
