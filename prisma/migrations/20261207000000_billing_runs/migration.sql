-- Billing runs (DESIGN.md §10, docs/billing-runs.md): a run closes periods for the whole book; its items are
-- the work, one row per contract and period, claimed by the job queue and completed once.
CREATE TABLE "billing_runs" (
    "id" UUID NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'running',
    "period_end" TIMESTAMPTZ(6) NOT NULL,
    "auto_issue" BOOLEAN NOT NULL,
    "contract_ids" TEXT[],
    "created_by" TEXT NOT NULL,
    "started_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(6),

    CONSTRAINT "billing_runs_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "billing_runs_status_check" CHECK ("status" IN ('running', 'completed', 'failed'))
);
-- At most one run is running at a time, whoever starts it and from whichever instance.
CREATE UNIQUE INDEX "billing_runs_one_running_key" ON "billing_runs" ((true)) WHERE "status" = 'running';

CREATE TABLE "billing_run_items" (
    "run_id" UUID NOT NULL,
    "contract_id" UUID NOT NULL,
    "period_start" TIMESTAMPTZ(6) NOT NULL,
    "period_end" TIMESTAMPTZ(6) NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "calculation_id" UUID,
    "document_id" UUID,
    "blocking_exception_ids" TEXT[] NOT NULL DEFAULT '{}',
    "error" TEXT,
    "finished_at" TIMESTAMPTZ(6),

    CONSTRAINT "billing_run_items_pkey" PRIMARY KEY ("run_id", "contract_id", "period_start"),
    CONSTRAINT "billing_run_items_status_check" CHECK ("status" IN ('pending', 'issued', 'previewed', 'blocked', 'nothing_to_issue', 'failed'))
);
-- The latest item of a contract's period (a nothing_to_issue period is skipped until it sees activity).
CREATE INDEX "billing_run_items_contract_id_period_start_idx" ON "billing_run_items"("contract_id", "period_start");
-- Whether a run has anything left to do, asked by every job as it finishes: only the pending items.
CREATE INDEX "billing_run_items_pending_idx" ON "billing_run_items"("run_id") WHERE "status" = 'pending';
ALTER TABLE "billing_run_items" ADD CONSTRAINT "billing_run_items_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "billing_runs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "billing_run_items" ADD CONSTRAINT "billing_run_items_contract_id_fkey" FOREIGN KEY ("contract_id") REFERENCES "contracts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

GRANT SELECT, INSERT ON "billing_runs", "billing_run_items" TO "rating_runtime";
GRANT UPDATE ("status", "finished_at") ON "billing_runs" TO "rating_runtime";
GRANT UPDATE ("status", "calculation_id", "document_id", "blocking_exception_ids", "error", "finished_at") ON "billing_run_items" TO "rating_runtime";
