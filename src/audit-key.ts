// The audit checkpoints' signing key (docs/audit.md). It must live outside PostgreSQL: whoever can rewrite
// the database must not also be able to re-sign its head. From AUDIT_SIGNING_KEY, or else generated once and
// kept in DATA_DIR/audit-signing-key (mode 0600), like the generated admin key, so a restart signs alike.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config.js";

export const AUDIT_KEY_FILE = "audit-signing-key";

export function loadAuditSigningKey(config: Pick<Config, "AUDIT_SIGNING_KEY" | "DATA_DIR">): { key: Buffer; file: string | null } {
  if (config.AUDIT_SIGNING_KEY) return { key: Buffer.from(config.AUDIT_SIGNING_KEY, "utf8"), file: null };
  mkdirSync(config.DATA_DIR, { recursive: true });
  const file = join(config.DATA_DIR, AUDIT_KEY_FILE);
  // "wx": two processes starting on one DATA_DIR at once must not each write a different key.
  if (!existsSync(file)) {
    try {
      writeFileSync(file, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  const text = readFileSync(file, "utf8").trim();
  if (text.length < 32) throw new Error(`${file} holds fewer than 32 characters: not a usable audit signing key`);
  return { key: Buffer.from(text, "utf8"), file };
}
