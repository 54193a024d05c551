-- Named queries the shared adapter code runs: migrations and the embedded database.
-- Parameters are $n only. Where PostgreSQL needs an identifier (a schema or database name),
-- format('%I') quotes it on the server and the caller runs the statement it returns.

-- name: lock_migrations
-- Serialise replicas migrating one schema; hashtext gives a stable key, released at commit.
SELECT pg_advisory_xact_lock(hashtext('modelregistry.migrations.' || $1::text));

-- name: create_schema_statement
-- The statement that creates the schema $1 if missing, with the name quoted by the server.
SELECT format('CREATE SCHEMA IF NOT EXISTS %I', $1::text);

-- name: use_schema
-- Unqualified names resolve in the schema $1 until the transaction ends (SET LOCAL).
SELECT set_config('search_path', $1::text, true);

-- name: create_migrations_table
-- The record of applied migrations, in the schema use_schema selected.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
-- Which migrations the schema has, oldest first, with the checksum of the file applied.
SELECT version, name, checksum FROM schema_migrations ORDER BY version;

-- name: record_migration
-- Record a migration as applied, in the transaction that applied it.
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: database_exists
-- Whether the database $1 exists (the embedded server creates its own on first start).
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1);

-- name: create_database_statement
-- The statement that creates the database $1, with the name quoted by the server.
SELECT format('CREATE DATABASE %I', $1::text);

-- name: no_lock_timeout
-- Migrations wait as long as another replica's migration takes (the pool's lock_timeout is 5 s).
SELECT set_config('lock_timeout', '0', true);

-- name: ping
-- The health probe: the database answers at all.
SELECT 1;
