-- Three-way reconciliation (DESIGN.md §7.1, docs/reconciliation.md): a run, its breaks, the dispositions
-- of its breaks and its sign-off. All four are evidence for the close and append-only: a disposition
-- changed before sign-off is a new row (the latest one counts), a run is signed off once (its primary key).
CREATE TABLE "reconciliation_runs" (
    "id" UUID NOT NULL,
    "period_start" TIMESTAMPTZ(6) NOT NULL,
    "period_end" TIMESTAMPTZ(6) NOT NULL,
    -- metric → factor from the contract's unit to the metered unit, as given.
    "unit_conversions" JSONB NOT NULL,
    -- 'caller' (the request's invoiced rows) or 'documents' (this service's own latest documents).
    "invoiced_source" TEXT NOT NULL CHECK ("invoiced_source" IN ('caller', 'documents')),
    "metered_rows" INTEGER NOT NULL,
    "invoiced_rows" INTEGER NOT NULL,
    -- The statement: per class { keys, units, amount }, the totals, the money per currency, the watch-list.
    "counts" JSONB NOT NULL,
    "totals" JSONB NOT NULL,
    "currency" CHAR(3),
    "by_currency" JSONB NOT NULL,
    "previous_run_id" UUID,
    "watchlist" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL,
    "created_by" TEXT NOT NULL,

    CONSTRAINT "reconciliation_runs_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "reconciliation_runs_window_check" CHECK ("period_end" > "period_start")
);
-- The previous run of a window is the latest earlier one.
CREATE INDEX "reconciliation_runs_period_start_period_end_id_idx" ON "reconciliation_runs"("period_start", "period_end", "id");

CREATE TABLE "reconciliation_breaks" (
    "id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "contract_id" UUID,
    "customer_id" TEXT NOT NULL,
    "metric" TEXT NOT NULL,
    "class" TEXT NOT NULL CHECK ("class" IN ('timing', 'credit', 'proration', 'under_bill', 'over_bill', 'metering', 'unmapped')),
    "source" TEXT CHECK ("source" IN ('metering', 'billing', 'both')),
    "owner" TEXT NOT NULL CHECK ("owner" IN ('revops', 'csm', 'watchlist', 'data', 'none')),
    -- Quantities in the metered unit: a conversion can add fraction digits, hence wider than numeric(38,9).
    "raw" DECIMAL(56,18) NOT NULL,
    "metered" DECIMAL(56,18) NOT NULL,
    "invoiced" DECIMAL(56,18) NOT NULL,
    "late" DECIMAL(56,18) NOT NULL,
    "units" DECIMAL(56,18) NOT NULL,
    "amount" DECIMAL(20,6),
    "currency" CHAR(3),
    "previous_class" TEXT,
    "last_invoiced_at" TIMESTAMPTZ(6),

    CONSTRAINT "reconciliation_breaks_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "reconciliation_breaks_run_id_customer_id_metric_key" ON "reconciliation_breaks"("run_id", "customer_id", "metric");
CREATE INDEX "reconciliation_breaks_run_id_id_idx" ON "reconciliation_breaks"("run_id", "id");
ALTER TABLE "reconciliation_breaks" ADD CONSTRAINT "reconciliation_breaks_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "reconciliation_runs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "reconciliation_dispositions" (
    "id" UUID NOT NULL,
    "break_id" UUID NOT NULL,
    "decision" TEXT NOT NULL CHECK ("decision" IN ('catch_up_charge', 'credit', 'absorb', 'no_action')),
    "note" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "reconciliation_dispositions_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "reconciliation_dispositions_break_id_id_idx" ON "reconciliation_dispositions"("break_id", "id");
ALTER TABLE "reconciliation_dispositions" ADD CONSTRAINT "reconciliation_dispositions_break_id_fkey" FOREIGN KEY ("break_id") REFERENCES "reconciliation_breaks"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "reconciliation_sign_offs" (
    "run_id" UUID NOT NULL,
    "note" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "reconciliation_sign_offs_pkey" PRIMARY KEY ("run_id")
);
ALTER TABLE "reconciliation_sign_offs" ADD CONSTRAINT "reconciliation_sign_offs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "reconciliation_runs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TRIGGER "reconciliation_runs_append_only" BEFORE UPDATE OR DELETE ON "reconciliation_runs" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "reconciliation_runs_no_truncate" BEFORE TRUNCATE ON "reconciliation_runs" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "reconciliation_breaks_append_only" BEFORE UPDATE OR DELETE ON "reconciliation_breaks" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "reconciliation_breaks_no_truncate" BEFORE TRUNCATE ON "reconciliation_breaks" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "reconciliation_dispositions_append_only" BEFORE UPDATE OR DELETE ON "reconciliation_dispositions" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "reconciliation_dispositions_no_truncate" BEFORE TRUNCATE ON "reconciliation_dispositions" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "reconciliation_sign_offs_append_only" BEFORE UPDATE OR DELETE ON "reconciliation_sign_offs" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "reconciliation_sign_offs_no_truncate" BEFORE TRUNCATE ON "reconciliation_sign_offs" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();

-- rating_runtime: created by 20261201000000_least_privilege, which always runs first. The one UPDATE grant
-- is what SELECT … FOR UPDATE needs to lock a run (dispositions and sign-off queue on it); the trigger
-- still rejects any actual update.
GRANT SELECT, INSERT ON "reconciliation_runs", "reconciliation_breaks", "reconciliation_dispositions", "reconciliation_sign_offs" TO "rating_runtime";
GRANT UPDATE ("created_at") ON "reconciliation_runs" TO "rating_runtime";
