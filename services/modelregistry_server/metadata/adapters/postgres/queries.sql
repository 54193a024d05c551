-- Named queries of the metadata schema. Parameters are $n only; identifiers are fixed.

-- name: insert_model
-- Create a model; ON CONFLICT turns a duplicate name into zero rows instead of an aborted transaction.
INSERT INTO metadata.models (model_id, description, labels, owner, etag)
VALUES ($1, $2, $3::jsonb, $4, $5)
ON CONFLICT (model_id) DO NOTHING
RETURNING model_id, uid, description, labels, owner, create_time, update_time, etag;

-- name: get_model
SELECT model_id, uid, description, labels, owner, create_time, update_time, etag
FROM metadata.models
WHERE model_id = $1;

-- name: update_model
-- $5 is the caller's etag ('' = unconditional). Zero rows means missing or stale; the caller tells which.
UPDATE metadata.models
SET description = CASE WHEN $2::text IS NULL THEN description ELSE $2 END,
    labels      = CASE WHEN $3::jsonb IS NULL THEN labels ELSE $3 END,
    owner       = CASE WHEN $4::text IS NULL THEN owner ELSE $4 END,
    update_time = now(),
    etag        = $6
WHERE model_id = $1 AND ($5 = '' OR etag = $5)
RETURNING model_id, uid, description, labels, owner, create_time, update_time, etag;

-- name: delete_model
DELETE FROM metadata.models
WHERE model_id = $1 AND ($2 = '' OR etag = $2)
RETURNING model_id;

-- name: get_model_etag
SELECT etag FROM metadata.models WHERE model_id = $1;

-- name: record_request
-- Claim a request_id; zero rows back means it was used in the last 24 hours (a replay).
-- An older entry is taken over: the contract promises idempotency for 24 hours only.
INSERT INTO metadata.request_log (request_id, method, resource)
VALUES ($1, $2, $3)
ON CONFLICT (request_id) DO UPDATE
SET method = EXCLUDED.method, resource = EXCLUDED.resource, create_time = now()
WHERE metadata.request_log.create_time < now() - interval '24 hours'
RETURNING request_id;

-- name: get_request
SELECT method, resource FROM metadata.request_log WHERE request_id = $1;

-- name: insert_secret
INSERT INTO metadata.server_secrets (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING;

-- name: get_secret
SELECT value FROM metadata.server_secrets WHERE name = $1;

-- name: allocate_version
-- Race-free version numbers: the model row is locked by this UPDATE until commit, so
-- concurrent creates on one model queue here and each gets the next number.
UPDATE metadata.models SET next_version = next_version + 1
WHERE model_id = $1
RETURNING next_version - 1 AS version;

-- name: insert_version
INSERT INTO metadata.model_versions
    (model_id, version, state, description, labels, params, metrics, lineage, framework,
     format, signature, created_by, etag)
VALUES ($1, $2, 'PENDING', $3, $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9, $10::jsonb,
        $11, $12)
RETURNING model_id, version;

-- name: get_version
SELECT v.*, ARRAY(SELECT a.alias FROM metadata.aliases a
                  WHERE a.model_id = v.model_id AND a.version = v.version
                  ORDER BY a.alias) AS aliases
FROM metadata.model_versions v
WHERE v.model_id = $1 AND v.version = $2;

-- name: lock_version
SELECT state, etag FROM metadata.model_versions
WHERE model_id = $1 AND version = $2
FOR UPDATE;

-- name: get_version_by_uid
-- ResolveModelVersion reads a version in ONE statement whatever the reference form: the alias
-- or "latest" lookup is a scalar subquery that the planner runs once (an InitPlan) before an
-- index lookup on the primary key. One round trip instead of two halves the resolve's
-- PostgreSQL and event-loop cost. No row = nothing found under that reference.
SELECT v.*, ARRAY(SELECT a.alias FROM metadata.aliases a
                  WHERE a.model_id = v.model_id AND a.version = v.version
                  ORDER BY a.alias) AS aliases
FROM metadata.model_versions v
WHERE v.uid = $1::uuid;

-- name: get_latest_ready_version
-- "name" means the newest READY version; as of $2 (NULL = now) it is the newest that was
-- READY by then and not deleted since.
SELECT v.*, ARRAY(SELECT a.alias FROM metadata.aliases a
                  WHERE a.model_id = v.model_id AND a.version = v.version
                  ORDER BY a.alias) AS aliases
FROM metadata.model_versions v
WHERE v.model_id = $1
  AND v.version = (SELECT l.version FROM metadata.model_versions l
                   WHERE l.model_id = $1 AND l.state = 'READY'
                     AND l.ready_time <= COALESCE($2, 'infinity'::timestamptz)
                   ORDER BY l.version DESC
                   LIMIT 1);

-- name: get_version_by_alias
SELECT v.*, ARRAY(SELECT a.alias FROM metadata.aliases a
                  WHERE a.model_id = v.model_id AND a.version = v.version
                  ORDER BY a.alias) AS aliases
FROM metadata.model_versions v
WHERE v.model_id = $1
  AND v.version = (SELECT t.version FROM metadata.aliases t
                   WHERE t.model_id = $1 AND t.alias = $2);

-- name: get_version_by_alias_at
-- The alias' last move at or before $3; a NULL version (it had been removed) finds no row.
SELECT v.*, ARRAY(SELECT a.alias FROM metadata.aliases a
                  WHERE a.model_id = v.model_id AND a.version = v.version
                  ORDER BY a.alias) AS aliases
FROM metadata.model_versions v
WHERE v.model_id = $1
  AND v.version = (SELECT h.version FROM metadata.alias_history h
                   WHERE h.model_id = $1 AND h.alias = $2 AND h.valid_from <= $3
                   ORDER BY h.valid_from DESC, h.id DESC
                   LIMIT 1);

-- name: update_version
UPDATE metadata.model_versions
SET description = CASE WHEN $3::text IS NULL THEN description ELSE $3 END,
    labels      = CASE WHEN $4::jsonb IS NULL THEN labels ELSE $4 END,
    params      = CASE WHEN $5::jsonb IS NULL THEN params ELSE $5 END,
    metrics     = CASE WHEN $6::jsonb IS NULL THEN metrics ELSE $6 END,
    lineage     = CASE WHEN $7::jsonb IS NULL THEN lineage ELSE $7 END,
    framework   = CASE WHEN $8::text IS NULL THEN framework ELSE $8 END,
    format      = CASE WHEN $9::text IS NULL THEN format ELSE $9 END,
    signature   = CASE WHEN $10::jsonb IS NULL THEN signature ELSE $10 END,
    update_time = now(),
    etag        = $11
WHERE model_id = $1 AND version = $2;

-- name: commit_version
UPDATE metadata.model_versions
SET state = 'READY', files = $3::jsonb, total_size_bytes = $4, ready_time = clock_timestamp(),
    update_time = now(), etag = $5
WHERE model_id = $1 AND version = $2;

-- name: insert_version_blob
INSERT INTO metadata.version_blobs (model_id, version, sha256, size)
VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING;

-- name: soft_delete_version
UPDATE metadata.model_versions
SET state = 'DELETED', update_time = now(), etag = $3
WHERE model_id = $1 AND version = $2;

-- name: delete_aliases_of_version
DELETE FROM metadata.aliases WHERE model_id = $1 AND version = $2 RETURNING alias;

-- name: upsert_alias
INSERT INTO metadata.aliases (model_id, alias, version, updated_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (model_id, alias) DO UPDATE
SET version = EXCLUDED.version, update_time = now(), updated_by = EXCLUDED.updated_by
RETURNING model_id, alias, version, update_time, updated_by;

-- name: lock_alias
SELECT model_id, alias, version, update_time, updated_by FROM metadata.aliases
WHERE model_id = $1 AND alias = $2
FOR UPDATE;

-- name: delete_alias
DELETE FROM metadata.aliases WHERE model_id = $1 AND alias = $2 RETURNING version;

-- name: record_alias_move
INSERT INTO metadata.alias_history (model_id, alias, version, actor) VALUES ($1, $2, $3, $4);

-- name: list_aliases
SELECT model_id, alias, version, update_time, updated_by FROM metadata.aliases
WHERE model_id = $1 AND alias > $2
ORDER BY alias
LIMIT $3;

-- name: count_live_versions
SELECT count(*) FROM metadata.model_versions WHERE model_id = $1 AND state <> 'DELETED';

-- name: insert_audit_event
INSERT INTO metadata.audit_events
    (actor, method, resource, model_id, before, after, request_id, trace_id)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8);

-- name: insert_model_event
-- The NOTIFY is delivered at commit, so watchers never see an event of a rolled-back change.
-- Payload "<event id> <model id>": the model id lets every replica drop only that model's
-- entries from its resolve cache.
WITH event AS (
    INSERT INTO metadata.model_events (type, model_id, version, alias, actor)
    VALUES ($1, $2, $3, $4, $5)
    RETURNING id
)
SELECT pg_notify('modelregistry_model_events', id::text || ' ' || $2) FROM event;

-- name: notify_model_changed
-- A change that is no watchable event (UpdateModelVersion: labels, description) but still
-- changes what ResolveModelVersion returns: tells every replica's resolve cache, at commit.
-- Payload "- <model id>" (no event row; watchers that wake up find nothing new).
SELECT pg_notify('modelregistry_model_events', '- ' || $1);

-- name: lock_blob_shared
-- Commits hold this while they verify and record a digest; GC takes it exclusively.
SELECT pg_advisory_xact_lock_shared(7457, hashtext($1));

-- name: lock_blob_exclusive
SELECT pg_advisory_xact_lock(7457, hashtext($1));

-- name: blob_referenced
SELECT EXISTS (
    SELECT 1 FROM metadata.version_blobs b
    JOIN metadata.model_versions v USING (model_id, version)
    WHERE b.sha256 = $1 AND v.state <> 'DELETED'
);

-- name: referenced_blobs
SELECT DISTINCT b.sha256 FROM metadata.version_blobs b
JOIN metadata.model_versions v USING (model_id, version)
WHERE b.sha256 = ANY($1::text[]) AND v.state <> 'DELETED';

-- name: stale_pending_versions
SELECT model_id, version FROM metadata.model_versions
WHERE state = 'PENDING' AND create_time < $1
FOR UPDATE SKIP LOCKED;

-- name: fail_version
UPDATE metadata.model_versions SET state = 'FAILED', update_time = now(), etag = $3
WHERE model_id = $1 AND version = $2;
