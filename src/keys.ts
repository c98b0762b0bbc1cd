// API keys: from API_KEYS, or, when none are configured, one admin key generated on first start and kept
// in DATA_DIR (mode 0600) so a restart prints the same key.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config.js";
import { type ApiKey, KeyRing } from "./http/plugins/auth.js";

export function loadKeys(config: Pick<Config, "API_KEYS" | "DATA_DIR">): { ring: KeyRing; generatedAdminKey: string | null } {
  if (config.API_KEYS.length > 0) return { ring: new KeyRing(config.API_KEYS), generatedAdminKey: null };
  mkdirSync(config.DATA_DIR, { recursive: true });
  const file = join(config.DATA_DIR, "admin-key");
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(24).toString("base64url")}\n`, { mode: 0o600 });
  const secret = readFileSync(file, "utf8").trim();
  const keys: ApiKey[] = [{ name: "admin", role: "admin", secret }];
  return { ring: new KeyRing(keys), generatedAdminKey: secret };
}
