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
    /** The role a route needs; absent on public routes. */
    role?: Exclude<Role, "admin">;
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

export function bearerToken(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (typeof h !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

export const authPlugin = fp(
  async function auth(app: FastifyInstance, opts: { keys: KeyRing }) {
    app.decorateRequest("principal", undefined);
    app.addHook("onRequest", async (request) => {
      const needed = request.routeOptions.config?.role;
      if (!needed) return;
      const token = bearerToken(request);
      const principal = token ? opts.keys.authenticate(token) : undefined;
      if (!principal)
        throw new ProblemError("unauthorized", token ? "the API key is not valid" : "send Authorization: Bearer <api key>", {}, {
          "WWW-Authenticate": 'Bearer realm="rating"',
        });
      if (!GRANTS[principal.role].has(needed))
        throw new ProblemError("forbidden", `the key "${principal.name}" has role ${principal.role}; this needs ${needed}`);
      request.principal = principal;
    });
  },
  { name: "auth" },
);

/** The actor recorded in the audit log for a request. */
export const actorOf = (request: FastifyRequest) => request.principal?.name ?? "anonymous";
