-- The preview's late-usage check (events that arrived or were voided after a period's latest document)
-- must not scan the period's events: late and voided events are few, so partial indexes over just those
-- keep it a short index range scan however many events the period holds. Prisma cannot express partial
-- indexes; test/api/schema-drift.test.ts lists them as SQL-only.
CREATE INDEX "usage_events_late_received_idx" ON "usage_events" ("customer_id", "received_at") WHERE "late";
CREATE INDEX "usage_events_voided_at_idx" ON "usage_events" ("customer_id", "voided_at") WHERE "voided_at" IS NOT NULL;
