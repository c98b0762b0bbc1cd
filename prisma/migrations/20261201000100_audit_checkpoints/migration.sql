-- Signed checkpoints of the audit chain's head, and the batch that stored each usage event (docs/audit.md).
--
-- A checkpoint is an HMAC-SHA256, with a key kept outside PostgreSQL (AUDIT_SIGNING_KEY or
-- DATA_DIR/audit-signing-key), over (seq, hash of the entry at seq, at, entries): whoever can write the database
-- but not read that key cannot make a shortened or rewritten chain match it. Append-only like the log itself.
CREATE TABLE "audit_checkpoints" (
    "id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    "entries" BIGINT NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL,
    "key_id" TEXT NOT NULL,
    "signature" TEXT NOT NULL,
    -- 'periodic' (every AUDIT_CHECKPOINT_EVERY entries, in the appending transaction) or 'on_demand'.
    "reason" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,

    CONSTRAINT "audit_checkpoints_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "audit_checkpoints_seq_idx" ON "audit_checkpoints"("seq");

CREATE TRIGGER "audit_checkpoints_append_only" BEFORE UPDATE OR DELETE ON "audit_checkpoints" FOR EACH ROW EXECUTE FUNCTION "reject_mutation"();
CREATE TRIGGER "audit_checkpoints_no_truncate" BEFORE TRUNCATE ON "audit_checkpoints" FOR EACH STATEMENT EXECUTE FUNCTION "reject_mutation"();

-- Ties an event to the usage.ingested audit entry of the batch that stored it, whose payload carries the
-- digest of the batch's stored events: a deep verify recomputes it from the rows. NULL only for events stored
-- before this migration (a deep verify reports them as unattested). A void never changes it.
ALTER TABLE "usage_events" ADD COLUMN "batch_id" UUID;

-- rating_runtime: created by 20261201000000_least_privilege, which always runs first.
GRANT SELECT, INSERT ON "audit_checkpoints" TO "rating_runtime";
