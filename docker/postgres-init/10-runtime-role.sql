-- Run by the postgres image once, when it initialises an empty data volume (as POSTGRES_USER, in
-- POSTGRES_DB); or by hand for an older volume (docs/database-roles.md). Creates the role the service runs
-- as: rating_app, a login that owns nothing and is a member of rating_runtime, the group role the
-- migrations grant to. Idempotent: a second run only resets rating_app's password and attributes.
\set ON_ERROR_STOP on
\getenv app_password RATING_APP_PASSWORD
\if :{?app_password}
\else
  \warn 'RATING_APP_PASSWORD is not set: it is the password of rating_app, the role the service runs as'
  SELECT 1 / 0 AS "RATING_APP_PASSWORD is not set";
\endif

SELECT 'CREATE ROLE rating_runtime NOLOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rating_runtime') \gexec
SELECT 'CREATE ROLE rating_app LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rating_app') \gexec
ALTER ROLE rating_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'app_password';
GRANT rating_runtime TO rating_app;
