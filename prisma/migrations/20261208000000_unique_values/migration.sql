-- Distinct-value rollups for unique_count meters (docs/rating.md, "Where the figures come from"), so that a
-- unique_count preview reads one row per distinct value and month instead of a period's events.
--
-- usage_dimensions.unique_by names, per customer or account id and metric, the properties some unique_count
-- meter of its contracts counts (uniqueBy; like `properties`, the set only grows). Ingestion keeps one row
-- per id, metric, property, UTC month, dims and value: `hours` has bit h set when the value occurs in a
-- non-voided event of that month's hour h (h = 0 is the month's first hour; 744 = 31 × 24 bits). A window's
-- distinct values are the rows whose bits meet the window's whole hours, plus the values of the events in its
-- partial edge hours. `value` is usage_unique_key of the property's value: a text equal for two values exactly
-- when they are equal as jsonb ("1" and 1 differ, 1 and 1.0 do not), as the count over the events has it, and
-- cheap to hash; an absent property or a JSON null has no row.
-- Rebuilt with the rollups when a contract or an amendment grows the id's set (emptied to zero bits and
-- recomputed: the runtime role deletes nothing).
ALTER TABLE "usage_dimensions" ADD COLUMN "unique_by" TEXT[] NOT NULL DEFAULT '{}';

CREATE TABLE "usage_unique_values" (
    "customer_id" TEXT NOT NULL,
    "metric" TEXT NOT NULL,
    "property" TEXT NOT NULL,
    "month" TIMESTAMPTZ(6) NOT NULL,
    "dims" TEXT NOT NULL DEFAULT '{}',
    "value" TEXT COLLATE "C" NOT NULL,
    "hours" BIT(744) NOT NULL,

    CONSTRAINT "usage_unique_values_pkey" PRIMARY KEY ("customer_id", "metric", "property", "month", "value", "dims")
);

-- A jsonb value with every number, at any depth, in its shortest form (trailing zeros trimmed): two values are
-- equal as jsonb exactly when their normal forms have the same text (jsonb prints object keys in one order).
CREATE FUNCTION "usage_jsonb_normal"("v" JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN CASE jsonb_typeof(v)
    WHEN 'number' THEN to_jsonb(trim_scale(v::numeric))
    WHEN 'object' THEN (SELECT coalesce(jsonb_object_agg(e.k, usage_jsonb_normal(e.x)), '{}'::jsonb) FROM jsonb_each(v) AS e(k, x))
    WHEN 'array' THEN (SELECT coalesce(jsonb_agg(usage_jsonb_normal(a.x) ORDER BY a.i), '[]'::jsonb) FROM jsonb_array_elements(v) WITH ORDINALITY AS a(x, i))
    ELSE v
  END;
END
$$;

-- The text a unique_count meter counts a value by: equal exactly when the values are equal as jsonb, typed by
-- its first letter (a string "1" is s1, the number 1 is n1); NULL for an absent property or a JSON null.
CREATE FUNCTION "usage_unique_key"("v" JSONB) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof($1)
    WHEN 'string' THEN 's' || ($1 #>> '{}')
    WHEN 'number' THEN 'n' || trim_scale($1::numeric)::text
    WHEN 'boolean' THEN 'b' || $1::text
    WHEN 'null' THEN NULL
    ELSE 'j' || usage_jsonb_normal($1)::text
  END
$$;

-- The ids and metrics that contracts already count distinct values of, and their rows from the events.
INSERT INTO "usage_dimensions" ("customer_id", "metric", "properties", "unique_by")
SELECT ci."identifier", m ->> 'metric', '{}', array_agg(DISTINCT m ->> 'uniqueBy' ORDER BY m ->> 'uniqueBy')
FROM "contract_identifiers" ci
JOIN "contract_versions" v ON v."contract_id" = ci."contract_id"
CROSS JOIN LATERAL jsonb_array_elements(v."terms" -> 'meters') AS m
WHERE m ->> 'aggregation' = 'unique_count' AND m ->> 'uniqueBy' IS NOT NULL
GROUP BY 1, 2
ON CONFLICT ("customer_id", "metric") DO UPDATE SET "unique_by" = EXCLUDED."unique_by";

INSERT INTO "usage_unique_values" ("customer_id", "metric", "property", "month", "dims", "value", "hours")
SELECT e."customer_id", e."metric", k.property, date_trunc('month', e."occurred_at", 'UTC'),
       CASE WHEN d."properties" = '{}' THEN '{}' ELSE usage_dims(e."properties", d."properties") END,
       usage_unique_key(e."properties" -> k.property),
       bit_or(B'1'::bit(744) >> (extract(epoch FROM date_trunc('hour', e."occurred_at", 'UTC') - date_trunc('month', e."occurred_at", 'UTC')) / 3600)::int)
FROM "usage_dimensions" d
CROSS JOIN unnest(d."unique_by") AS k(property)
JOIN "usage_events" e ON e."customer_id" = d."customer_id" AND e."metric" = d."metric" AND e."voided_at" IS NULL
WHERE usage_unique_key(e."properties" -> k.property) IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;

GRANT SELECT, INSERT ON "usage_unique_values" TO "rating_runtime";
GRANT UPDATE ("hours") ON "usage_unique_values" TO "rating_runtime";
GRANT UPDATE ("unique_by") ON "usage_dimensions" TO "rating_runtime";
GRANT EXECUTE ON FUNCTION "usage_jsonb_normal"(JSONB) TO "rating_runtime";
GRANT EXECUTE ON FUNCTION "usage_unique_key"(JSONB) TO "rating_runtime";
