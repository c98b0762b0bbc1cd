-- Alerts and webhooks (DESIGN.md §9, docs/webhooks.md). The job queue itself is graphile-worker's schema
-- (graphile_worker), installed and granted by the migrator (src/db/job-queue.ts), not by this file.

-- What fired: at most once per contract, alert id and billing period, by this table's key, whatever the
-- number of batches, workers or service instances. Append-only.
CREATE TABLE "alerts" (
    "id" UUID NOT NULL,
    "contract_id" UUID NOT NULL,
    "alert_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "metric" TEXT,
    "grant_id" TEXT,
    "threshold" DECIMAL(38,9) NOT NULL,
    -- The measured figure: usage, usage charges or a balance; and its ratio for the share kinds.
    "value" DECIMAL(38,9) NOT NULL,
    "share" DECIMAL(38,9),
    "period_start" TIMESTAMPTZ(6) NOT NULL,
    "period_end" TIMESTAMPTZ(6) NOT NULL,
    "version" INTEGER NOT NULL,
    "fired_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alerts_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "alerts_kind_check" CHECK ("kind" IN ('included_share', 'quantity', 'commitment_share', 'credit_balance'))
);
CREATE UNIQUE INDEX "alerts_contract_id_alert_id_period_start_key" ON "alerts"("contract_id", "alert_id", "period_start");
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_contract_id_fkey" FOREIGN KEY ("contract_id") REFERENCES "contracts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Receivers. The secret is needed to sign every attempt, so it is kept; it is never returned after creation
-- and never logged.
CREATE TABLE "webhook_endpoints" (
    "id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "event_types" TEXT[] NOT NULL,
    "description" TEXT,
    "secret" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'enabled',
    "disabled_reason" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_endpoints_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_endpoints_status_check" CHECK ("status" IN ('enabled', 'disabled'))
);

-- An event, as sent: the body's exact bytes, signed per attempt. Append-only.
CREATE TABLE "webhook_events" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_events_pkey" PRIMARY KEY ("id")
);

-- One row per attempt of one event to one endpoint. A row is written 'pending' with the job that makes the
-- attempt (in one transaction), and completed once: its outcome columns are the only ones the service may update.
CREATE TABLE "webhook_deliveries" (
    "id" UUID NOT NULL,
    "endpoint_id" UUID NOT NULL,
    "event_id" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "manual" BOOLEAN NOT NULL DEFAULT false,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "response_code" INTEGER,
    "duration_ms" INTEGER,
    "error" TEXT,
    "scheduled_at" TIMESTAMPTZ(6) NOT NULL,
    "attempted_at" TIMESTAMPTZ(6),
    "next_attempt_at" TIMESTAMPTZ(6),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_deliveries_status_check" CHECK ("status" IN ('pending', 'succeeded', 'failed', 'exhausted')),
    CONSTRAINT "webhook_deliveries_attempt_check" CHECK ("attempt" >= 1)
);
CREATE UNIQUE INDEX "webhook_deliveries_endpoint_id_event_id_attempt_key" ON "webhook_deliveries"("endpoint_id", "event_id", "attempt");
CREATE INDEX "webhook_deliveries_event_id_idx" ON "webhook_deliveries"("event_id");
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_endpoint_id_fkey" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoints"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "webhook_events"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TRIGGER "alerts_append_only" BEFORE UPDATE OR DELETE ON "alerts" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "alerts_no_truncate" BEFORE TRUNCATE ON "alerts" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "webhook_events_append_only" BEFORE UPDATE OR DELETE ON "webhook_events" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "webhook_events_no_truncate" BEFORE TRUNCATE ON "webhook_events" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();

GRANT SELECT, INSERT ON "alerts", "webhook_events" TO "rating_runtime";
GRANT SELECT, INSERT ON "webhook_endpoints", "webhook_deliveries" TO "rating_runtime";
GRANT UPDATE ("url", "event_types", "description", "status", "disabled_reason", "updated_at") ON "webhook_endpoints" TO "rating_runtime";
GRANT UPDATE ("status", "response_code", "duration_ms", "error", "attempted_at", "next_attempt_at") ON "webhook_deliveries" TO "rating_runtime";
