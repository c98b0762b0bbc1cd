-- Closing the books (DESIGN.md §7.2, docs/revenue.md): a close of a month (and every earlier one, book-wide),
-- and each contract's months as they stood when closed. Both append-only: a closed month never changes, and
-- later changes to it are shown as catch-up in the first open month.
CREATE TABLE "revenue_closes" (
    -- YYYY-MM: one close per month; every earlier month is closed with it.
    "month" TEXT NOT NULL,
    "closed_at" TIMESTAMPTZ(6) NOT NULL,
    "actor" TEXT NOT NULL,
    "note" TEXT NOT NULL,
    "unbilled_periods" INTEGER NOT NULL,
    "open_exceptions" INTEGER NOT NULL,

    CONSTRAINT "revenue_closes_pkey" PRIMARY KEY ("month"),
    CONSTRAINT "revenue_closes_month_check" CHECK ("month" ~ '^[0-9]{4}-(0[1-9]|1[0-2])$')
);

CREATE TABLE "revenue_closed_months" (
    "contract_id" UUID NOT NULL,
    "month" TEXT NOT NULL,
    "close_month" TEXT NOT NULL,
    -- The month's report as it stood: recognized, billed, basis, credits, and the documents it came from.
    "figures" JSONB NOT NULL,

    CONSTRAINT "revenue_closed_months_pkey" PRIMARY KEY ("contract_id", "month")
);
ALTER TABLE "revenue_closed_months" ADD CONSTRAINT "revenue_closed_months_close_month_fkey" FOREIGN KEY ("close_month") REFERENCES "revenue_closes"("month") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "revenue_closed_months" ADD CONSTRAINT "revenue_closed_months_contract_id_fkey" FOREIGN KEY ("contract_id") REFERENCES "contracts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TRIGGER "revenue_closes_append_only" BEFORE UPDATE OR DELETE ON "revenue_closes" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "revenue_closes_no_truncate" BEFORE TRUNCATE ON "revenue_closes" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "revenue_closed_months_append_only" BEFORE UPDATE OR DELETE ON "revenue_closed_months" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "revenue_closed_months_no_truncate" BEFORE TRUNCATE ON "revenue_closed_months" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();

GRANT SELECT, INSERT ON "revenue_closes", "revenue_closed_months" TO "rating_runtime";
