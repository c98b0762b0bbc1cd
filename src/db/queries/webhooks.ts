// Webhook endpoints, events and delivery attempts (DESIGN.md §9, docs/webhooks.md). A delivery attempt is a
// row written 'pending' together with the job that makes it; the job completes the row once.
import type { Sql } from "../sql.js";
import { TASKS } from "./jobs.js";

export interface EndpointRow {
  id: string;
  url: string;
  event_types: string[];
  description: string | null;
  status: "enabled" | "disabled";
  disabled_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

const ENDPOINT_COLUMNS = `id::text AS id, url, event_types, description, status, disabled_reason, created_at, updated_at`;

export async function insertEndpoint(
  sql: Sql,
  e: { id: string; url: string; eventTypes: string[]; description: string | null; secret: string },
): Promise<EndpointRow> {
  const [row] = await sql.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, url, event_types, description, secret) VALUES ($1::uuid, $2, $3::text[], $4, $5)
     RETURNING ${ENDPOINT_COLUMNS}`,
    [e.id, e.url, e.eventTypes, e.description, e.secret],
  );
  return row!;
}

export async function endpointById(sql: Sql, id: string, lock = false): Promise<EndpointRow | undefined> {
  const [row] = await sql.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1::uuid${lock ? " FOR UPDATE" : ""}`, [id]);
  return row;
}

export async function listEndpoints(sql: Sql, after: string | undefined, limit: number): Promise<EndpointRow[]> {
  return sql.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2`,
    [after ?? null, limit],
  );
}

export interface EndpointChange {
  url?: string | undefined;
  eventTypes?: string[] | undefined;
  description?: string | null | undefined;
  status?: "enabled" | "disabled" | undefined;
  disabledReason?: string | null | undefined;
}

export async function updateEndpoint(sql: Sql, id: string, c: EndpointChange): Promise<EndpointRow | undefined> {
  const [row] = await sql.query<EndpointRow>(
    `UPDATE webhook_endpoints SET
       url = COALESCE($2, url),
       event_types = COALESCE($3::text[], event_types),
       description = CASE WHEN $4::boolean THEN $5 ELSE description END,
       status = COALESCE($6, status),
       disabled_reason = CASE WHEN $7::boolean THEN $8 ELSE disabled_reason END,
       updated_at = now()
     WHERE id = $1::uuid
     RETURNING ${ENDPOINT_COLUMNS}`,
    [
      id,
      c.url ?? null,
      c.eventTypes ?? null,
      c.description !== undefined,
      c.description ?? null,
      c.status ?? null,
      c.disabledReason !== undefined,
      c.disabledReason ?? null,
    ],
  );
  return row;
}

/** The enabled endpoints that take an event type, and the database's clock (the event's timestamp). */
export async function subscribedEndpoints(sql: Sql, type: string): Promise<{ ids: string[]; now: Date }> {
  const rows = await sql.query<{ id: string | null; now: Date }>(
    `SELECT e.id::text AS id, now.now FROM (SELECT clock_timestamp() AS now) now
     LEFT JOIN webhook_endpoints e ON e.status = 'enabled' AND $1 = ANY(e.event_types)
     ORDER BY e.id`,
    [type],
  );
  return { ids: rows.flatMap((r) => (r.id ? [r.id] : [])), now: rows[0]!.now };
}

/** The event and its first attempt to each endpoint, each with its job: one statement, on the caller's transaction. */
export async function insertEventWithDeliveries(
  sql: Sql,
  event: { id: string; type: string; body: string },
  deliveries: { id: string; endpointId: string }[],
): Promise<void> {
  await sql.query(
    `WITH ev AS (INSERT INTO webhook_events (id, type, body) VALUES ($1, $2, $3) RETURNING id),
     d AS (INSERT INTO webhook_deliveries (id, endpoint_id, event_id, attempt, status, scheduled_at)
           SELECT x.id, x.endpoint_id, ev.id, 1, 'pending', now() FROM ev, unnest($4::uuid[], $5::uuid[]) AS x(id, endpoint_id)
           RETURNING id)
     SELECT graphile_worker.add_jobs(array_agg(($6::text, json_build_object('deliveryId', d.id::text), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec))
     FROM d`,
    [event.id, event.type, event.body, deliveries.map((d) => d.id), deliveries.map((d) => d.endpointId), TASKS.deliverWebhook],
  );
}

export interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  attempt: number;
  manual: boolean;
  status: "pending" | "succeeded" | "failed" | "exhausted";
  response_code: number | null;
  duration_ms: number | null;
  error: string | null;
  scheduled_at: Date;
  attempted_at: Date | null;
  next_attempt_at: Date | null;
  created_at: Date;
}

const DELIVERY_COLUMNS = `d.id::text AS id, d.endpoint_id::text AS endpoint_id, d.event_id, ev.type AS event_type, d.attempt, d.manual, d.status,
  d.response_code, d.duration_ms, d.error, d.scheduled_at, d.attempted_at, d.next_attempt_at, d.created_at`;

export async function deliveryById(sql: Sql, id: string): Promise<DeliveryRow | undefined> {
  const [row] = await sql.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id WHERE d.id = $1::uuid`,
    [id],
  );
  return row;
}

/** What one attempt sends: the pending attempt, its event's body and its endpoint (with the secret). */
export interface AttemptToMake {
  id: string;
  attempt: number;
  manual: boolean;
  event_id: string;
  body: string;
  endpoint_id: string;
  url: string;
  secret: string;
  endpoint_status: "enabled" | "disabled";
}

export async function pendingAttempt(sql: Sql, id: string): Promise<AttemptToMake | undefined> {
  const [row] = await sql.query<AttemptToMake>(
    `SELECT d.id::text AS id, d.attempt, d.manual, d.event_id, ev.body, e.id::text AS endpoint_id, e.url, e.secret, e.status AS endpoint_status
     FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id JOIN webhook_endpoints e ON e.id = d.endpoint_id
     WHERE d.id = $1::uuid AND d.status = 'pending'`,
    [id],
  );
  return row;
}

export interface AttemptResult {
  status: "succeeded" | "failed" | "exhausted";
  responseCode: number | null;
  durationMs: number | null;
  error: string | null;
  /** Milliseconds until the next attempt, or null when there is none. */
  nextAttemptInMs: number | null;
}

/**
 * Completes a pending attempt, once: false when it was no longer pending (another run of its job finished it).
 * Times are the database's clock, the one graphile-worker schedules jobs by.
 */
export async function completeAttempt(sql: Sql, id: string, r: AttemptResult): Promise<boolean> {
  const rows = await sql.query(
    `UPDATE webhook_deliveries SET status = $2, response_code = $3, duration_ms = $4, error = $5,
       attempted_at = clock_timestamp() - make_interval(secs => COALESCE($4, 0)::float8 / 1000),
       next_attempt_at = clock_timestamp() + make_interval(secs => $6::float8 / 1000)
     WHERE id = $1::uuid AND status = 'pending' RETURNING id`,
    [id, r.status, r.responseCode, r.durationMs, r.error, r.nextAttemptInMs],
  );
  return rows.length === 1;
}

/**
 * A further attempt of an event to an endpoint, pending, with the job that makes it in `inMs` — on the
 * database's clock, which graphile-worker runs jobs by (an app server's clock may differ).
 */
export async function scheduleAttempt(
  sql: Sql,
  a: { id: string; endpointId: string; eventId: string; attempt: number; manual: boolean; inMs: number },
): Promise<void> {
  await sql.query(
    `WITH d AS (INSERT INTO webhook_deliveries (id, endpoint_id, event_id, attempt, manual, status, scheduled_at)
                VALUES ($1::uuid, $2::uuid, $3, $4, $5, 'pending', clock_timestamp() + make_interval(secs => $6::float8 / 1000))
                RETURNING id, scheduled_at)
     SELECT graphile_worker.add_job($7, json_build_object('deliveryId', d.id::text), run_at => d.scheduled_at) FROM d`,
    [a.id, a.endpointId, a.eventId, a.attempt, a.manual, a.inMs, TASKS.deliverWebhook],
  );
}

export async function lastAttemptNumber(sql: Sql, endpointId: string, eventId: string): Promise<number> {
  const [row] = await sql.query<{ n: number }>(
    `SELECT COALESCE(max(attempt), 0)::int AS n FROM webhook_deliveries WHERE endpoint_id = $1::uuid AND event_id = $2`,
    [endpointId, eventId],
  );
  return row!.n;
}

export interface DeliveryFilter {
  endpointId?: string | undefined;
  eventId?: string | undefined;
  eventType?: string | undefined;
  status?: string | undefined;
  after?: string | undefined;
  limit: number;
}

/** Attempts newest first (ids are time-ordered), after a cursor. */
export async function listDeliveries(sql: Sql, f: DeliveryFilter): Promise<DeliveryRow[]> {
  return sql.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
     WHERE ($1::uuid IS NULL OR d.endpoint_id = $1::uuid)
       AND ($2::text IS NULL OR d.event_id = $2)
       AND ($3::text IS NULL OR ev.type = $3)
       AND ($4::text IS NULL OR d.status = $4)
       AND ($5::uuid IS NULL OR d.id < $5::uuid)
     ORDER BY d.id DESC
     LIMIT $6`,
    [f.endpointId ?? null, f.eventId ?? null, f.eventType ?? null, f.status ?? null, f.after ?? null, f.limit],
  );
}
