-- Room on every page of the rollups for their next versions: ingestion updates an hour's row with every batch
-- that has events in it, and with free space on the row's page the update is HOT (no new index entries, the
-- old version pruned on the page) instead of a new tuple elsewhere and a new entry in the primary key.
ALTER TABLE "usage_rollups" SET (fillfactor = 70);
ALTER TABLE "usage_unique_values" SET (fillfactor = 70);
