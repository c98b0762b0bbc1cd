-- Least privilege (docs/database-roles.md). The tables stay owned by the role that runs
-- the migrations; the service at run time logs in as a role that owns nothing and is a member of the group
-- role `rating_runtime`, which holds exactly what the code needs: SELECT and INSERT where it reads and
-- writes, UPDATE only on the columns it updates, no DELETE or TRUNCATE anywhere (the code never deletes).
-- Not being the owner or a superuser, it can neither ALTER TABLE … DISABLE TRIGGER nor
-- SET session_replication_role = replica, so the triggers below bind it. They bind the owner too, unless
-- the owner switches them off on purpose.
--
-- A migration that adds a table grants rating_runtime what the service needs on it, in the same migration.

-- Roles are global to the cluster: several databases (or a test run's clones) share this one. Two databases
-- migrating at once may both see it missing; the loser's CREATE fails and is ignored.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rating_runtime') THEN
        CREATE ROLE "rating_runtime" NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- Nobody but the owner creates objects here (PostgreSQL 15+ already defaults to this; older clusters
-- upgraded in place do not).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM "rating_runtime";
GRANT USAGE ON SCHEMA public TO "rating_runtime";

-- Contracts are never updated; the one UPDATE column exists only because SELECT … FOR UPDATE / FOR SHARE
-- (issuing and ingestion lock the contract) needs UPDATE on some column. The trigger refuses actual UPDATEs.
GRANT SELECT, INSERT ON "contracts" TO "rating_runtime";
GRANT UPDATE ("created_at") ON "contracts" TO "rating_runtime";
GRANT SELECT, INSERT ON "contract_versions" TO "rating_runtime";
GRANT SELECT, INSERT ON "contract_identifiers" TO "rating_runtime";
GRANT SELECT, INSERT ON "external_billings" TO "rating_runtime";
-- A void sets these three; nothing else about an event ever changes.
GRANT SELECT, INSERT ON "usage_events" TO "rating_runtime";
GRANT UPDATE ("voided_at", "void_reason", "voided_by") ON "usage_events" TO "rating_runtime";
GRANT USAGE ON SEQUENCE "usage_events_id_seq" TO "rating_runtime";
-- Ingestion and voids upsert the hourly sums.
GRANT SELECT, INSERT ON "usage_rollups" TO "rating_runtime";
GRANT UPDATE ("quantity", "events") ON "usage_rollups" TO "rating_runtime";
GRANT SELECT, INSERT ON "calculations" TO "rating_runtime";
-- Raising again refreshes message, details, last_seen_at and calculation_id; a decision sets the other five.
GRANT SELECT, INSERT ON "exceptions" TO "rating_runtime";
GRANT UPDATE ("message", "details", "last_seen_at", "calculation_id", "status", "decision", "note", "resolved_by", "resolved_at")
    ON "exceptions" TO "rating_runtime";
GRANT SELECT, INSERT ON "documents" TO "rating_runtime";
GRANT SELECT, INSERT ON "document_lines" TO "rating_runtime";
GRANT SELECT, INSERT ON "credit_drawdowns" TO "rating_runtime";
-- The counters' rows are seeded by the init migration; issuing only increments them.
GRANT SELECT ON "document_counters" TO "rating_runtime";
GRANT UPDATE ("last_number") ON "document_counters" TO "rating_runtime";
GRANT SELECT, INSERT ON "idempotency_keys" TO "rating_runtime";
GRANT SELECT, INSERT ON "audit_log" TO "rating_runtime";
-- _prisma_migrations: nothing. The runtime role never migrates.

-- The columns an UPDATE changed (NULL-safe, by value). Used by the guards below to name what was refused.
CREATE FUNCTION "changed_columns"("old_row" JSONB, "new_row" JSONB) RETURNS TEXT[] LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(n.key ORDER BY n.key), '{}')
    FROM jsonb_each("new_row") AS n(key, value)
    WHERE n.value IS DISTINCT FROM "old_row" -> n.key
$$;

-- Contracts, contract versions and external billings are immutable: an amendment is a new version, a
-- correction of an external billing is a new billing.
CREATE TRIGGER "contracts_append_only" BEFORE UPDATE OR DELETE ON "contracts" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "contracts_no_truncate" BEFORE TRUNCATE ON "contracts" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "contract_versions_append_only" BEFORE UPDATE OR DELETE ON "contract_versions" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "contract_versions_no_truncate" BEFORE TRUNCATE ON "contract_versions" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "external_billings_append_only" BEFORE UPDATE OR DELETE ON "external_billings" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "external_billings_no_truncate" BEFORE TRUNCATE ON "external_billings" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();

-- Usage events: corrections are voids, never deletes, and a void is final.
CREATE FUNCTION "usage_event_void_once"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed TEXT[] := "changed_columns"(to_jsonb(OLD), to_jsonb(NEW));
BEGIN
    IF OLD."voided_at" IS NOT NULL THEN
        RAISE EXCEPTION 'usage event % is already voided: a void is final', OLD."id" USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW."voided_at" IS NULL OR NOT changed <@ ARRAY['voided_at', 'void_reason', 'voided_by'] THEN
        RAISE EXCEPTION 'an UPDATE of usage_events may only void the event (set voided_at, void_reason, voided_by), not change %', changed
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER "usage_events_void_once" BEFORE UPDATE ON "usage_events" FOR EACH ROW EXECUTE FUNCTION "usage_event_void_once"();
CREATE TRIGGER "usage_events_no_delete" BEFORE DELETE ON "usage_events" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "usage_events_no_truncate" BEFORE TRUNCATE ON "usage_events" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();

-- Document counters only go up: a number once given out is never given out again.
CREATE FUNCTION "document_counter_only_up"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW."kind" IS DISTINCT FROM OLD."kind" OR NEW."last_number" IS NULL OR NEW."last_number" <= OLD."last_number" THEN
        RAISE EXCEPTION 'document counter % may only increase (% → %)', OLD."kind", OLD."last_number", NEW."last_number"
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER "document_counters_only_up" BEFORE UPDATE ON "document_counters" FOR EACH ROW EXECUTE FUNCTION "document_counter_only_up"();
CREATE TRIGGER "document_counters_no_delete" BEFORE DELETE ON "document_counters" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "document_counters_no_truncate" BEFORE TRUNCATE ON "document_counters" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();

-- Exceptions: raising again may refresh what was seen (message, details, last_seen_at, calculation_id). The
-- decision goes open → approved or open → rejected, and a rejection may later be reconsidered and approved
-- (docs/conventions.md: a rejection keeps the issue blocked until approved); an approval is final. Each decision
-- records its actor and time and is audited by the service in the same transaction. What an exception is
-- about (kind, subject, contract, period, blocking, …) never changes.
CREATE FUNCTION "exception_decided_once"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed TEXT[] := "changed_columns"(to_jsonb(OLD), to_jsonb(NEW));
BEGIN
    IF NOT changed <@ ARRAY['message', 'details', 'last_seen_at', 'calculation_id', 'status', 'decision', 'note', 'resolved_by', 'resolved_at'] THEN
        RAISE EXCEPTION 'exceptions: % may not change', changed USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF changed && ARRAY['status', 'decision', 'note', 'resolved_by', 'resolved_at'] THEN
        IF NOT ((OLD."status" = 'open' AND NEW."status" IN ('approved', 'rejected'))
                OR (OLD."status" = 'rejected' AND NEW."status" = 'approved')) THEN
            RAISE EXCEPTION 'exception %: a decision cannot take it from % to % (an approval is final)', OLD."id", OLD."status", NEW."status"
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW."decision" IS DISTINCT FROM (CASE NEW."status" WHEN 'approved' THEN 'approve' ELSE 'reject' END)
           OR NEW."resolved_by" IS NULL OR NEW."resolved_at" IS NULL THEN
            RAISE EXCEPTION 'exception %: a decision records its decision, actor and time', OLD."id" USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER "exceptions_decided_once" BEFORE UPDATE ON "exceptions" FOR EACH ROW EXECUTE FUNCTION "exception_decided_once"();
CREATE TRIGGER "exceptions_no_delete" BEFORE DELETE ON "exceptions" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "exceptions_no_truncate" BEFORE TRUNCATE ON "exceptions" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();
