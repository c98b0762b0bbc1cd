// The PostgreSQL roles (docs/database-roles.md): the owner runs the migrations; the service runs as a login
// role that owns nothing and is a member of RUNTIME_GROUP, to which the migrations grant what the code needs.
import type pg from "pg";

/** The NOLOGIN group role the migrations grant to (migration 20261201000000_least_privilege). Cluster-global. */
export const RUNTIME_GROUP = "rating_runtime";

type Queryable = Pick<pg.ClientBase, "query" | "escapeLiteral" | "escapeIdentifier">;

/**
 * Creates (or repairs) a runtime login role: LOGIN with this password, no special attributes, a member of
 * RUNTIME_GROUP (created here if the migrations have not run yet, exactly as they would create it).
 * Needs a connection as a superuser or a role with CREATEROLE. Idempotent, so it runs on every start.
 */
export async function ensureRuntimeLogin(client: Queryable, login: string, password: string): Promise<void> {
  await client.query(`DO $$
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${client.escapeLiteral(RUNTIME_GROUP)}) THEN
        CREATE ROLE ${client.escapeIdentifier(RUNTIME_GROUP)} NOLOGIN;
      END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${client.escapeLiteral(login)}) THEN
        CREATE ROLE ${client.escapeIdentifier(login)} LOGIN;
      END IF;
    END $$`);
  // Always reset the attributes and the password, so the role matches its password file after either changed.
  await client.query(
    `ALTER ROLE ${client.escapeIdentifier(login)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD ${client.escapeLiteral(password)}`,
  );
  await client.query(`GRANT ${client.escapeIdentifier(RUNTIME_GROUP)} TO ${client.escapeIdentifier(login)}`);
}

/**
 * What is wrong with the connection the service runs on, as human-readable warnings (empty: least
 * privilege holds). A superuser, or a role that owns (or may act as the owner of) the tables, can switch the
 * immutability triggers off; a role outside RUNTIME_GROUP will be refused by every request.
 */
export async function runtimePrivilegeWarnings(pool: Pick<pg.Pool, "query">): Promise<string[]> {
  const { rows } = await pool.query<{ role: string; superuser: boolean; owned: string[]; in_group: boolean | null }>(
    `SELECT current_user AS role,
            r.rolsuper AS superuser,
            array(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                    AND pg_has_role(current_user, c.relowner, 'MEMBER')
                  ORDER BY c.relname) AS owned,
            (SELECT pg_has_role(current_user, g.oid, 'USAGE') FROM pg_roles g WHERE g.rolname = $1) AS in_group
     FROM pg_roles r WHERE r.rolname = current_user`,
    [RUNTIME_GROUP],
  );
  const r = rows[0];
  if (!r) return [];
  const how = "set DATABASE_URL to a role that owns nothing and is a member of rating_runtime, and MIGRATION_DATABASE_URL to the owner (docs/database-roles.md)";
  if (r.superuser) return [`the service connects to PostgreSQL as the superuser "${r.role}": it could switch the immutability triggers off; ${how}`];
  const warnings: string[] = [];
  if (r.owned.length > 0)
    warnings.push(
      `the service connects to PostgreSQL as "${r.role}", the owner of ${r.owned.length} table(s) (${r.owned.slice(0, 5).join(", ")}${r.owned.length > 5 ? ", …" : ""}): it could switch the immutability triggers off; ${how}`,
    );
  else if (!r.in_group) warnings.push(`the service's PostgreSQL role "${r.role}" is not a member of rating_runtime: requests will be refused (GRANT rating_runtime TO "${r.role}")`);
  return warnings;
}
