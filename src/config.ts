// Environment parsed once, at start-up. A bad value stops the process with a message naming the variable.
import { z } from "zod";

const ApiKeySpec = z
  .string()
  .transform((s, ctx) => {
    const entries = s
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e.length > 0);
    const keys: { name: string; role: Role; secret: string }[] = [];
    for (const entry of entries) {
      const [name, role, ...rest] = entry.split(":");
      const secret = rest.join(":");
      if (!name || !role || !secret) {
        ctx.addIssue({ code: "custom", message: `entry "${name ?? entry}" must be name:role:secret` });
        continue;
      }
      if (!ROLES.includes(role as Role)) {
        ctx.addIssue({ code: "custom", message: `entry "${name}" has unknown role "${role}" (one of ${ROLES.join(", ")})` });
        continue;
      }
      if (secret.length < 8) {
        ctx.addIssue({ code: "custom", message: `entry "${name}" has a secret shorter than 8 characters` });
        continue;
      }
      keys.push({ name, role: role as Role, secret });
    }
    return keys;
  });

export const ROLES = ["reader", "writer", "approver", "admin"] as const;
export type Role = (typeof ROLES)[number];

const intFromEnv = (def: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(def);

const ConfigSchema = z.object({
  PORT: intFromEnv(3000, 0, 65535),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
    .optional(),
  DATA_DIR: z.string().min(1).default("./.data"),
  API_KEYS: ApiKeySpec.default([]),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  BODY_LIMIT_BYTES: intFromEnv(5 * 1024 * 1024, 1024, 100 * 1024 * 1024),
  RATE_LIMIT_PER_MINUTE: intFromEnv(6000, 1, 10_000_000),
  DB_POOL_SIZE: intFromEnv(10, 1, 200),
  USAGE_MAX_AGE_DAYS: intFromEnv(400, 1, 3650),
  USAGE_MAX_FUTURE_DAYS: intFromEnv(1, 0, 365),
});

export type Config = z.output<typeof ConfigSchema>;
export type ApiKeyConfig = Config["API_KEYS"][number];

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = ConfigSchema.safeParse(
    Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== "")),
  );
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(env)"}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
