-- What a meter measures (docs/rating.md, "What a meter measures"; docs/usage.md, "Rollups"): hourly rollups
-- by dimension, with each hour's largest quantity, so that sum, count and max meters, filtered or not, never
-- read a period's events.
--
-- usage_dimensions names, per customer or account id and metric, the properties some meter of one of its
-- contracts filters on (every version, every contract of the id: the set only grows). Ingestion and voids roll
-- an event up under `dims`, the canonical JSON text of those properties' values (usage_dims), so a filtered
-- meter reads the rollup rows whose dims match its filter. When a contract or an amendment adds a property, the
-- rollups of that id and metric are rebuilt from the events in the same transaction (emptied and recomputed:
-- the runtime role deletes nothing).
CREATE TABLE "usage_dimensions" (
    "customer_id" TEXT NOT NULL,
    "metric" TEXT NOT NULL,
    "properties" TEXT[] NOT NULL,

    CONSTRAINT "usage_dimensions_pkey" PRIMARY KEY ("customer_id", "metric")
);

ALTER TABLE "usage_rollups" ADD COLUMN "dims" TEXT NOT NULL DEFAULT '{}';
-- NULL when the hour has no event left (all voided).
ALTER TABLE "usage_rollups" ADD COLUMN "max_quantity" DECIMAL(38,9);
ALTER TABLE "usage_rollups" DROP CONSTRAINT "usage_rollups_pkey";
ALTER TABLE "usage_rollups" ADD CONSTRAINT "usage_rollups_pkey" PRIMARY KEY ("customer_id", "metric", "hour", "dims");

UPDATE "usage_rollups" r SET "max_quantity" = (
    SELECT max(e."quantity") FROM "usage_events" e
    WHERE e."customer_id" = r."customer_id" AND e."metric" = r."metric" AND e."voided_at" IS NULL
      AND e."occurred_at" >= r."hour" AND e."occurred_at" < r."hour" + interval '1 hour');

-- The values of `keys` in an event's properties, as one canonical text: jsonb's own output (keys sorted, one
-- spelling per value), '{}' when there are no keys or none is present.
CREATE FUNCTION "usage_dims"("properties" JSONB, "keys" TEXT[]) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce((SELECT jsonb_object_agg(k, $1 -> k) FROM unnest($2) AS k WHERE $1 ? k)::text, '{}')
$$;

-- Whether properties (an event's, or a rollup row's dims) match a filter {property: [values]}: for every
-- property named, its value is one of the values (jsonb equality: "1" and 1 differ; a missing property never
-- matches).
CREATE FUNCTION "usage_matches"("properties" JSONB, "filter" JSONB) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT NOT EXISTS (
    SELECT 1 FROM jsonb_each($2) AS f(k, vals)
    WHERE $1 IS NULL OR NOT ($1 ? f.k) OR NOT (f.vals @> jsonb_build_array($1 -> f.k))
  )
$$;

GRANT SELECT, INSERT ON "usage_dimensions" TO "rating_runtime";
GRANT UPDATE ("properties") ON "usage_dimensions" TO "rating_runtime";
GRANT UPDATE ("max_quantity") ON "usage_rollups" TO "rating_runtime";
GRANT EXECUTE ON FUNCTION "usage_dims"(JSONB, TEXT[]) TO "rating_runtime";
GRANT EXECUTE ON FUNCTION "usage_matches"(JSONB, JSONB) TO "rating_runtime";
