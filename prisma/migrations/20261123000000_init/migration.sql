-- Initial schema: contracts and versions, usage, calculations, exceptions, documents, audit log.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- CreateTable
CREATE TABLE "contracts" (
    "id" UUID NOT NULL,
    "customer_id" TEXT NOT NULL,
    "account_ids" TEXT[],
    "name" TEXT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "timezone" TEXT NOT NULL,
    "billing_period" TEXT NOT NULL CHECK ("billing_period" IN ('monthly', 'quarterly', 'annual')),
    "start_date" DATE NOT NULL,
    "end_date" DATE,
    "term_start" TIMESTAMPTZ(6) NOT NULL,
    "term_end" TIMESTAMPTZ(6),
    "rounding_mode" TEXT NOT NULL CHECK ("rounding_mode" IN ('half_up', 'half_even')),
    "allow_true_down" BOOLEAN NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT NOT NULL,
    CONSTRAINT "contracts_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "contracts_term_check" CHECK ("term_end" IS NULL OR "term_end" > "term_start")
);

CREATE TABLE "contract_versions" (
    "id" UUID NOT NULL,
    "contract_id" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "effective_from" TIMESTAMPTZ(6) NOT NULL,
    "signed_at" TIMESTAMPTZ(6) NOT NULL,
    "kind" TEXT NOT NULL CHECK ("kind" IN ('original', 'amendment', 'ramp')),
    "reason" TEXT NOT NULL,
    "terms" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT NOT NULL,
    CONSTRAINT "contract_versions_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "contract_identifiers" (
    "contract_id" UUID NOT NULL,
    "identifier" TEXT NOT NULL,
    "term_start" TIMESTAMPTZ(6) NOT NULL,
    "term_end" TIMESTAMPTZ(6),
    CONSTRAINT "contract_identifiers_pkey" PRIMARY KEY ("contract_id", "identifier"),
    -- One contract per customer or account id at any instant; the database, not the code, guarantees it.
    CONSTRAINT "contract_identifiers_no_overlap" EXCLUDE USING gist (
        "identifier" WITH =,
        tstzrange("term_start", "term_end", '[)') WITH &&
    )
);

CREATE TABLE "external_billings" (
    "id" UUID NOT NULL,
    "contract_id" UUID NOT NULL,
    "period_start" TIMESTAMPTZ(6) NOT NULL,
    "period_end" TIMESTAMPTZ(6) NOT NULL,
    "amount" DECIMAL(20,6) NOT NULL,
    "reference" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT NOT NULL,
    CONSTRAINT "external_billings_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "usage_events" (
    "id" BIGSERIAL NOT NULL,
    "customer_id" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "metric" TEXT NOT NULL,
    "quantity" DECIMAL(38,9) NOT NULL,
    "occurred_at" TIMESTAMPTZ(6) NOT NULL,
    "properties" JSONB,
    "body_hash" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "late" BOOLEAN NOT NULL DEFAULT false,
    "voided_at" TIMESTAMPTZ(6),
    "void_reason" TEXT,
    "voided_by" TEXT,
    CONSTRAINT "usage_events_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "usage_rollups" (
    "customer_id" TEXT NOT NULL,
    "metric" TEXT NOT NULL,
    "hour" TIMESTAMPTZ(6) NOT NULL,
    "quantity" DECIMAL(38,9) NOT NULL,
    "events" BIGINT NOT NULL,
    CONSTRAINT "usage_rollups_pkey" PRIMARY KEY ("customer_id", "metric", "hour")
);

CREATE TABLE "calculations" (
    "id" UUID NOT NULL,
    "contract_id" UUID NOT NULL,
    "period_start" TIMESTAMPTZ(6) NOT NULL,
    "period_end" TIMESTAMPTZ(6) NOT NULL,
    "engine_version" TEXT NOT NULL,
    "inputs_hash" TEXT NOT NULL,
    "inputs" JSONB NOT NULL,
    "result" JSONB NOT NULL,
    "total" DECIMAL(20,6) NOT NULL,
    "already_billed" DECIMAL(20,6) NOT NULL,
    "delta" DECIMAL(20,6) NOT NULL,
    "action" TEXT NOT NULL CHECK ("action" IN ('invoice', 'credit_memo', 'none')),
    "currency" CHAR(3) NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT NOT NULL,
    CONSTRAINT "calculations_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "exceptions" (
    "id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "blocking" BOOLEAN NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'open' CHECK ("status" IN ('open', 'approved', 'rejected')),
    "dedupe_key" TEXT NOT NULL,
    "contract_id" UUID,
    "customer_id" TEXT,
    "period_start" TIMESTAMPTZ(6),
    "period_end" TIMESTAMPTZ(6),
    "subject" TEXT NOT NULL DEFAULT '',
    "message" TEXT NOT NULL,
    "details" JSONB NOT NULL,
    "calculation_id" UUID,
    "owner" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "resolved_at" TIMESTAMPTZ(6),
    "resolved_by" TEXT,
    "decision" TEXT,
    "note" TEXT,
    CONSTRAINT "exceptions_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "documents" (
    "id" UUID NOT NULL,
    "number" TEXT NOT NULL,
    "kind" TEXT NOT NULL CHECK ("kind" IN ('invoice', 'credit_memo')),
    "kind_seq" INTEGER NOT NULL,
    "contract_id" UUID NOT NULL,
    "period_start" TIMESTAMPTZ(6) NOT NULL,
    "period_end" TIMESTAMPTZ(6) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "subtotal" DECIMAL(20,6) NOT NULL,
    "already_billed" DECIMAL(20,6) NOT NULL,
    "amount" DECIMAL(20,6) NOT NULL CHECK ("amount" >= 0),
    "credits_applied" JSONB NOT NULL,
    "calculation_id" UUID NOT NULL,
    "inputs_hash" TEXT NOT NULL,
    "issued_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "issued_by" TEXT NOT NULL,
    CONSTRAINT "documents_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "document_lines" (
    "document_id" UUID NOT NULL,
    "line_no" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "metric" TEXT,
    "amount" DECIMAL(20,6) NOT NULL,
    "explanation" JSONB NOT NULL,
    CONSTRAINT "document_lines_pkey" PRIMARY KEY ("document_id", "line_no")
);

CREATE TABLE "credit_drawdowns" (
    "document_id" UUID NOT NULL,
    "grant_id" TEXT NOT NULL,
    "contract_id" UUID NOT NULL,
    "period_start" TIMESTAMPTZ(6) NOT NULL,
    "amount" DECIMAL(20,6) NOT NULL,
    CONSTRAINT "credit_drawdowns_pkey" PRIMARY KEY ("document_id", "grant_id")
);

CREATE TABLE "document_counters" (
    "kind" TEXT NOT NULL,
    "last_number" INTEGER NOT NULL,
    CONSTRAINT "document_counters_pkey" PRIMARY KEY ("kind")
);
INSERT INTO "document_counters" ("kind", "last_number") VALUES ('invoice', 0), ('credit_memo', 0);

CREATE TABLE "idempotency_keys" (
    "scope" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "status_code" INTEGER NOT NULL,
    "response" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("scope", "key")
);

CREATE TABLE "audit_log" (
    "id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "entity_type" TEXT NOT NULL,
    "entity_id" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "prev_hash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    CONSTRAINT "audit_log_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "contracts_customer_id_idx" ON "contracts"("customer_id");
CREATE UNIQUE INDEX "contract_versions_contract_id_version_key" ON "contract_versions"("contract_id", "version");
CREATE INDEX "contract_identifiers_identifier_idx" ON "contract_identifiers"("identifier");
CREATE UNIQUE INDEX "external_billings_contract_id_reference_key" ON "external_billings"("contract_id", "reference");
CREATE INDEX "external_billings_contract_id_period_start_idx" ON "external_billings"("contract_id", "period_start");
CREATE UNIQUE INDEX "usage_events_customer_id_event_id_key" ON "usage_events"("customer_id", "event_id");
CREATE INDEX "usage_events_customer_id_metric_occurred_at_idx" ON "usage_events"("customer_id", "metric", "occurred_at");
CREATE INDEX "calculations_contract_id_period_start_idx" ON "calculations"("contract_id", "period_start");
CREATE UNIQUE INDEX "exceptions_dedupe_key_key" ON "exceptions"("dedupe_key");
CREATE INDEX "exceptions_status_created_at_idx" ON "exceptions"("status", "created_at");
CREATE INDEX "exceptions_contract_id_period_start_idx" ON "exceptions"("contract_id", "period_start");
CREATE UNIQUE INDEX "documents_number_key" ON "documents"("number");
CREATE UNIQUE INDEX "documents_calculation_id_key" ON "documents"("calculation_id");
CREATE INDEX "documents_contract_id_period_start_idx" ON "documents"("contract_id", "period_start");
CREATE UNIQUE INDEX "documents_kind_kind_seq_key" ON "documents"("kind", "kind_seq");
CREATE INDEX "credit_drawdowns_contract_id_grant_id_idx" ON "credit_drawdowns"("contract_id", "grant_id");
CREATE UNIQUE INDEX "audit_log_seq_key" ON "audit_log"("seq");
CREATE INDEX "audit_log_entity_id_seq_idx" ON "audit_log"("entity_id", "seq");

-- AddForeignKey
ALTER TABLE "contract_versions" ADD CONSTRAINT "contract_versions_contract_id_fkey" FOREIGN KEY ("contract_id") REFERENCES "contracts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "contract_identifiers" ADD CONSTRAINT "contract_identifiers_contract_id_fkey" FOREIGN KEY ("contract_id") REFERENCES "contracts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "external_billings" ADD CONSTRAINT "external_billings_contract_id_fkey" FOREIGN KEY ("contract_id") REFERENCES "contracts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "calculations" ADD CONSTRAINT "calculations_contract_id_fkey" FOREIGN KEY ("contract_id") REFERENCES "contracts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "documents" ADD CONSTRAINT "documents_contract_id_fkey" FOREIGN KEY ("contract_id") REFERENCES "contracts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "documents" ADD CONSTRAINT "documents_calculation_id_fkey" FOREIGN KEY ("calculation_id") REFERENCES "calculations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "document_lines" ADD CONSTRAINT "document_lines_document_id_fkey" FOREIGN KEY ("document_id") REFERENCES "documents"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "credit_drawdowns" ADD CONSTRAINT "credit_drawdowns_document_id_fkey" FOREIGN KEY ("document_id") REFERENCES "documents"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Immutability: issued documents, their lines and drawdowns, stored calculations and the audit log are
-- append-only. Corrections are new documents (credit memos), never edits.
CREATE FUNCTION "reject_mutation"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "documents_append_only" BEFORE UPDATE OR DELETE ON "documents" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "documents_no_truncate" BEFORE TRUNCATE ON "documents" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "document_lines_append_only" BEFORE UPDATE OR DELETE ON "document_lines" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "document_lines_no_truncate" BEFORE TRUNCATE ON "document_lines" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "credit_drawdowns_append_only" BEFORE UPDATE OR DELETE ON "credit_drawdowns" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "credit_drawdowns_no_truncate" BEFORE TRUNCATE ON "credit_drawdowns" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "calculations_append_only" BEFORE UPDATE OR DELETE ON "calculations" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "calculations_no_truncate" BEFORE TRUNCATE ON "calculations" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "audit_log_append_only" BEFORE UPDATE OR DELETE ON "audit_log" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "audit_log_no_truncate" BEFORE TRUNCATE ON "audit_log" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
