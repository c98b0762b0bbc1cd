-- An hourly rollup sums many events, each up to numeric(38,9): the sum needs more integer digits than one
-- event, or a valid batch would fail with "numeric field overflow". 65 digits hold 10^27 maximal events.
ALTER TABLE "usage_rollups" ALTER COLUMN "quantity" TYPE DECIMAL(65,9);
