// Environment parsed once, at start-up. A bad value stops the process with a message naming the variable.
import { z } from "zod";
import { STANDARD_RETRY_SCHEDULE, parseRetrySchedule } from "./domain/webhooks.js";
import { ACCOUNT_ROLES, type AccountRole, type Accounts, DEFAULT_ACCOUNTS } from "./domain/revenue/journal.js";

/** REVENUE_ACCOUNTS="deferred_revenue=2400,revenue_usage=4010": the journal's account names, over the defaults. */
const AccountsSpec = z.string().transform((s, ctx): Accounts => {
  const accounts = { ...DEFAULT_ACCOUNTS };
  for (const entry of s.split(",").map((e) => e.trim()).filter(Boolean)) {
    const [role, name, ...rest] = entry.split("=");
    if (!role || !name || rest.length > 0 || !ACCOUNT_ROLES.includes(role as AccountRole)) {
      ctx.addIssue({ code: "custom", message: `entry "${entry}" must be role=name, the role one of ${ACCOUNT_ROLES.join(", ")}` });
      continue;
    }
    accounts[role as AccountRole] = name;
  }
  return accounts;
});

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

const PostgresUrl = z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL");

const ConfigSchema = z.object({
  PORT: intFromEnv(3000, 0, 65535),
  HOST: z.string().min(1).default("127.0.0.1"),
  /** The role the service runs as: owns nothing, a member of rating_runtime (docs/database-roles.md). */
  DATABASE_URL: PostgresUrl.optional(),
  /** The owner of the tables, for migrations only; default DATABASE_URL. Needs DATABASE_URL. */
  MIGRATION_DATABASE_URL: PostgresUrl.optional(),
  DATA_DIR: z.string().min(1).default("./.data"),
  API_KEYS: ApiKeySpec.default([]),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  BODY_LIMIT_BYTES: intFromEnv(5 * 1024 * 1024, 1024, 100 * 1024 * 1024),
  RATE_LIMIT_PER_MINUTE: intFromEnv(6000, 1, 10_000_000),
  /** Failed authentications (missing or wrong key) per client address per minute before 429. */
  AUTH_FAILURES_PER_MINUTE: intFromEnv(20, 1, 1_000_000),
  /** Receiving a whole request (headers and body) may take this long → 408. */
  REQUEST_TIMEOUT_MS: intFromEnv(30_000, 100, 600_000),
  /** One SQL statement (and one lock wait) may take this long → 503. */
  DB_STATEMENT_TIMEOUT_MS: intFromEnv(15_000, 100, 600_000),
  DB_POOL_SIZE: intFromEnv(10, 1, 200),
  USAGE_MAX_AGE_DAYS: intFromEnv(400, 1, 3650),
  USAGE_MAX_FUTURE_DAYS: intFromEnv(1, 0, 365),
  /** The HMAC key of audit checkpoints (docs/audit.md); absent → generated once into DATA_DIR/audit-signing-key. */
  AUDIT_SIGNING_KEY: z
    .string()
    .min(32, "must be at least 32 characters (e.g. openssl rand -hex 32)")
    .max(1024, "must be at most 1024 characters")
    .optional(),
  /** A signed checkpoint of the chain's head at least every this many audit entries. */
  AUDIT_CHECKPOINT_EVERY: intFromEnv(1000, 1, 10_000_000),
  /** The journal's account names (docs/revenue.md). */
  REVENUE_ACCOUNTS: AccountsSpec.default(DEFAULT_ACCOUNTS),
  /** inline: the job worker (alerts, webhooks) runs in this process; off: only `npm run worker` processes run jobs (docs/webhooks.md). */
  WORKER: z.enum(["inline", "off"]).default("inline"),
  /** Jobs one worker runs at once. */
  WORKER_CONCURRENCY: intFromEnv(4, 1, 100),
  /** Seconds before each delivery attempt, comma-separated (the first usually 0); default the Standard Webhooks schedule. */
  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .transform((s, ctx) => {
      const parsed = parseRetrySchedule(s);
      if (!parsed) ctx.addIssue({ code: "custom", message: "must be comma-separated whole seconds, e.g. 0,5,300" });
      return parsed ?? [];
    })
    .default([...STANDARD_RETRY_SCHEDULE]),
  /** A delivery attempt is abandoned (and retried) after this long. */
  WEBHOOK_TIMEOUT_MS: intFromEnv(15_000, 100, 120_000),
  /** true: endpoints may not point at private, loopback or link-local addresses. */
  WEBHOOK_DENY_PRIVATE: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  /** A job locked longer than this belongs to a worker that died: it is released and runs again. */
  JOB_LOCK_TIMEOUT_SECONDS: intFromEnv(120, 5, 86_400),
}).superRefine((c, ctx) => {
  // Without DATABASE_URL the embedded PostgreSQL sets up both roles itself: an owner URL alone is a mistake.
  if (c.MIGRATION_DATABASE_URL && !c.DATABASE_URL)
    ctx.addIssue({ code: "custom", path: ["MIGRATION_DATABASE_URL"], message: "needs DATABASE_URL (the role the service runs as) too" });
  // A live worker's delivery must never look dead: the lock outlives the longest attempt.
  if (c.JOB_LOCK_TIMEOUT_SECONDS * 1000 <= c.WEBHOOK_TIMEOUT_MS + 1000)
    ctx.addIssue({ code: "custom", path: ["JOB_LOCK_TIMEOUT_SECONDS"], message: "must be longer than WEBHOOK_TIMEOUT_MS plus a second" });
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
