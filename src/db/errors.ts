// Recognising database failures by kind: unreachable or timed out (→ 503), retryable (serialization, deadlock),
// constraint violations (→ 409). Prisma wraps pg errors; look through the wrappers for the SQLSTATE.

const UNAVAILABLE_NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"]);

function chain(e: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur && typeof cur === "object"; i++) {
    out.push(cur);
    const c = cur as { cause?: unknown; meta?: { driverAdapterError?: unknown } };
    cur = c.cause ?? c.meta?.driverAdapterError;
  }
  return out;
}

/** The PostgreSQL SQLSTATE behind an error, if any. */
export function sqlState(e: unknown): string | undefined {
  for (const x of chain(e)) {
    const o = x as { code?: unknown; originalCode?: unknown; cause?: { originalCode?: unknown } };
    if (typeof o.originalCode === "string" && /^[0-9A-Z]{5}$/.test(o.originalCode)) return o.originalCode;
    if (typeof o.code === "string" && /^[0-9A-Z]{5}$/.test(o.code) && !o.code.startsWith("P")) return o.code;
  }
  return undefined;
}

export function isDatabaseUnavailable(e: unknown): boolean {
  for (const x of chain(e)) {
    const o = x as { code?: unknown; message?: unknown; kind?: unknown };
    if (typeof o.code === "string" && UNAVAILABLE_NODE_CODES.has(o.code)) return true;
    // A Unix-socket connection to a stopped server: the socket file is gone. pg says so with syscall
    // "connect"; Prisma copies only the code and the message ("connect ENOENT /path/.s.PGSQL.5432").
    if (o.code === "ENOENT" && ((x as { syscall?: unknown }).syscall === "connect" || (typeof o.message === "string" && /connect ENOENT/.test(o.message))))
      return true;
    if (o.kind === "DatabaseNotReachable" || o.kind === "ConnectionClosed" || o.kind === "SocketTimeout") return true;
    if (typeof o.code === "string" && ["57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"].includes(o.code)) return true;
    if (typeof o.message === "string" && /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|terminating connection/i.test(o.message))
      return true;
  }
  const state = sqlState(e);
  return state !== undefined && (state.startsWith("08") || state === "57P01" || state === "57P03");
}

/**
 * PostgreSQL gave up on a statement: statement_timeout (57014 query_canceled), lock_timeout (55P03
 * lock_not_available) or idle_in_transaction_session_timeout (25P03). The database is stuck or contended,
 * not the request wrong: 503 with Retry-After, like an unreachable database.
 */
const TIMEOUT_STATES = new Set(["57014", "55P03", "25P03"]);
export const isDatabaseTimeout = (e: unknown) => {
  const s = sqlState(e);
  return s !== undefined && TIMEOUT_STATES.has(s);
};

export const isUniqueViolation = (e: unknown) => sqlState(e) === "23505";
export const isExclusionViolation = (e: unknown) => sqlState(e) === "23P01";
export const isRetryable = (e: unknown) => {
  const s = sqlState(e);
  return s === "40001" || s === "40P01";
};

/**
 * A value PostgreSQL refuses to store: a numeric overflow (22003, e.g. an amount past numeric(20,6)), a
 * date/time out of range or malformed (22008, 22007), text with a NUL or bytes that are not valid UTF-8
 * (22021, 22P05). They come from the caller's input, so they are a 4xx, never a 500; the edge and the
 * services check the known limits first and say which field, this is the net under those checks.
 */
const UNSTORABLE_STATES = new Set(["22003", "22007", "22008", "22021", "22P05"]);
export const isUnstorableValue = (e: unknown) => {
  const s = sqlState(e);
  return s !== undefined && UNSTORABLE_STATES.has(s);
};
