// Waiting for the job queue (graphile-worker) to run what is due: a test that asserts something did NOT
// happen (no alert, no delivery) must first know the job that would have done it has run.
import type { Database } from "../../src/db/client.js";

/** Resolves once no job but the per-minute cron is waiting or running (rejects after `ms`). */
export async function jobsDrained(db: Database, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const [row] = await db.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier <> 'release_stale_jobs' AND run_at <= now() + interval '2 seconds'`,
    );
    if (row!.n === 0) return;
    if (Date.now() > until) throw new Error(`${row!.n} job(s) still queued after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Polls `read` until `done` holds of its result (rejects after `ms`). */
export async function eventually<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
