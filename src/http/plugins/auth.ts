// Bearer API keys with roles. Secrets are kept only as sha256 digests; a presented key is hashed and
// compared in constant time. Routes declare the role they need in `config.role`; no role = public.
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { Role } from "../../config.js";
import { ProblemError } from "../problems.js";

export interface ApiKey {
  name: string;
  role: Role;
  secret: string;
}

export interface Principal {
  name: string;
  role: Role;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** The role a route needs; absent on public routes ("admin" only for admin-only routes, e.g. audit checkpoints). */
    role?: Role;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** Who may do what: admin does everything; writers and approvers also read. Writers cannot approve their own work. */
const GRANTS: Record<Role, ReadonlySet<Role>> = {
  reader: new Set(["reader"]),
  writer: new Set(["reader", "writer"]),
  approver: new Set(["reader", "approver"]),
  admin: new Set(["reader", "writer", "approver", "admin"]),
};

// Bytes, not hex: the final comparison is timingSafeEqual on the raw digests.
const digest = (s: string) => createHash("sha256").update(s).digest();

export class KeyRing {
  private readonly byDigest = new Map<string, { digest: Buffer; principal: Principal }>();

  constructor(keys: ApiKey[]) {
    for (const k of keys) {
      const d = digest(k.secret);
      this.byDigest.set(d.toString("hex"), { digest: d, principal: { name: k.name, role: k.role } });
    }
  }

  authenticate(secret: string): Principal | undefined {
    const d = digest(secret);
    const hit = this.byDigest.get(d.toString("hex"));
    // The map lookup is on a digest (learning its prefix reveals nothing of the secret); the final
    // comparison is constant-time regardless.
    return hit && timingSafeEqual(hit.digest, d) ? hit.principal : undefined;
  }
}

/**
 * Failed authentications per client address, in a fixed one-minute window from the first failure. Past
 * `max`, every request from the address that needs a key is refused with 429 until the window ends, a
 * valid key included: answering a correct guess differently would let the guessing go on. In memory, per
 * process (like the per-key rate limit); the number of addresses tracked is bounded.
 */
export class AuthFailureThrottle {
  private readonly windows = new Map<string, { failures: number; resetAt: number }>();

  constructor(
    readonly max: number,
    private readonly windowMs = 60_000,
    private readonly maxTracked = 100_000,
  ) {}

  /** Seconds until the address may try again; 0 when it may now. */
  retryAfter(address: string, now = Date.now()): number {
    const w = this.windows.get(address);
    if (!w) return 0;
    if (w.resetAt <= now) {
      this.windows.delete(address);
      return 0;
    }
    return w.failures >= this.max ? Math.ceil((w.resetAt - now) / 1000) : 0;
  }

  fail(address: string, now = Date.now()): void {
    const w = this.windows.get(address);
    if (w && w.resetAt > now) {
      w.failures++;
      return;
    }
    if (this.windows.size >= this.maxTracked) {
      for (const [k, v] of this.windows) if (v.resetAt <= now) this.windows.delete(k);
      // Still full (a flood from many addresses): forget the oldest rather than grow without bound.
      if (this.windows.size >= this.maxTracked) this.windows.delete(this.windows.keys().next().value!);
    }
    this.windows.delete(address);
    this.windows.set(address, { failures: 1, resetAt: now + this.windowMs });
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (typeof h !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

export const authPlugin = fp(
  async function auth(app: FastifyInstance, opts: { keys: KeyRing; maxFailuresPerMinute: number }) {
    const throttle = new AuthFailureThrottle(opts.maxFailuresPerMinute);
    app.decorateRequest("principal", undefined);
    app.addHook("onRequest", async (request) => {
      const needed = request.routeOptions.config?.role;
      if (!needed) return;
      const wait = throttle.retryAfter(request.ip);
      if (wait > 0)
        throw new ProblemError(
          "rate_limited",
          `more than ${throttle.max} failed authentications from this address in a minute (AUTH_FAILURES_PER_MINUTE); retry later`,
          {},
          { "Retry-After": String(wait) },
        );
      const token = bearerToken(request);
      const principal = token ? opts.keys.authenticate(token) : undefined;
      if (!principal) {
        throttle.fail(request.ip);
        throw new ProblemError("unauthorized", token ? "the API key is not valid" : "send Authorization: Bearer <api key>", {}, {
          "WWW-Authenticate": 'Bearer realm="rating"',
        });
      }
      if (!GRANTS[principal.role].has(needed))
        throw new ProblemError("forbidden", `the key "${principal.name}" has role ${principal.role}; this needs ${needed}`);
      request.principal = principal;
    });
    // What a key may read must not stay in a shared or browser cache; refusals too (401, 403, 429).
    app.addHook("onSend", async (request, reply) => {
      if (request.routeOptions.config?.role) reply.header("cache-control", "no-store");
    });
  },
  { name: "auth" },
);

/** The actor recorded in the audit log for a request. */
export const actorOf = (request: FastifyRequest) => request.principal?.name ?? "anonymous";

/** Whether the request's key holds `role` (for a route that more than one role may call, and checks itself). */
export const holds = (request: FastifyRequest, role: Role): boolean => request.principal !== undefined && GRANTS[request.principal.role].has(role);
