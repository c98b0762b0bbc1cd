// Every /v1 route module, registered in one place.
import type { FastifyPluginAsync } from "fastify";
import type { Clock } from "../../clock.js";
import type { Config } from "../../config.js";
import type { Database } from "../../db/client.js";
import { DEFAULT_ACCOUNTS } from "../../domain/index.js";
import { auditRoutes } from "./audit.js";
import { billingRunRoutes } from "./billing-runs.js";
import { contractRoutes } from "./contracts.js";
import { documentRoutes } from "./documents.js";
import { exceptionRoutes } from "./exceptions.js";
import { reconciliationRoutes } from "./reconciliations.js";
import { revenueRoutes } from "./revenue.js";
import { trueUpRoutes } from "./true-ups.js";
import { usageRoutes } from "./usage.js";
import { webhookRoutes } from "./webhooks.js";

export interface V1Options {
  db: Database;
  config: Pick<Config, "USAGE_MAX_AGE_DAYS" | "USAGE_MAX_FUTURE_DAYS"> & Partial<Pick<Config, "REVENUE_ACCOUNTS" | "WEBHOOK_DENY_PRIVATE">>;
  clock: Clock;
}

export const v1Routes: FastifyPluginAsync<V1Options> = async (app, opts) => {
  await app.register(contractRoutes, { db: opts.db });
  await app.register(trueUpRoutes, { db: opts.db, clock: opts.clock });
  await app.register(exceptionRoutes, { db: opts.db });
  await app.register(documentRoutes, { db: opts.db });
  await app.register(auditRoutes, { db: opts.db });
  await app.register(reconciliationRoutes, { db: opts.db, clock: opts.clock });
  await app.register(revenueRoutes, { db: opts.db, clock: opts.clock, accounts: opts.config.REVENUE_ACCOUNTS ?? DEFAULT_ACCOUNTS });
  await app.register(usageRoutes, { db: opts.db, config: opts.config, clock: opts.clock });
  await app.register(billingRunRoutes, { db: opts.db, clock: opts.clock });
  await app.register(webhookRoutes, { db: opts.db, denyPrivate: opts.config.WEBHOOK_DENY_PRIVATE ?? false });
};
