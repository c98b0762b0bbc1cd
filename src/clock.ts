// The one source of "now" for business rules (which period is closed, how old usage may be, the default
// `at` of a summary). The domain takes instants as arguments; the app gets a Clock so tests can fix time
// and no test depends on today's date.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that always answers the same instant (tests, replays). */
export function fixedClock(at: string | Date): Clock {
  const ms = typeof at === "string" ? Date.parse(at) : at.getTime();
  if (!Number.isFinite(ms)) throw new Error(`fixedClock: not an instant: ${String(at)}`);
  return { now: () => new Date(ms) };
}
