-- Named queries of the metadata schema. Parameters are $n only; identifiers are fixed.

-- name: insert_model
-- Create a model; ON CONFLICT turns a duplicate name into zero rows instead of an aborted transaction.
INSERT INTO metadata.models (model_id, description, labels, owner, etag)
VALUES ($1, $2, $3::jsonb, $4, $5)
ON CONFLICT (model_id) DO NOTHING
RETURNING model_id, uid, description, labels, owner, create_time, update_time, etag;

-- name: get_model
-- Read one model.
SELECT model_id, uid, description, labels, owner, create_time, update_time, etag
FROM metadata.models
WHERE model_id = $1;

-- name: lock_model
-- Read a model and lock its row until the transaction ends (UpdateModel, DeleteModel).
SELECT model_id, uid, description, labels, owner, create_time, update_time, etag
FROM metadata.models
WHERE model_id = $1
FOR UPDATE;

-- name: update_model
-- Overwrite the fields given (NULL keeps the stored value) with a new etag $5; the row is locked.
UPDATE metadata.models
SET description = CASE WHEN $2::text IS NULL THEN description ELSE $2 END,
    labels      = CASE WHEN $3::jsonb IS NULL THEN labels ELSE $3 END,
    owner       = CASE WHEN $4::text IS NULL THEN owner ELSE $4 END,
    update_time = now(),
    etag        = $5
WHERE model_id = $1
RETURNING model_id, uid, description, labels, owner, create_time, update_time, etag;

-- name: delete_model
-- Delete a model; its versions, aliases and alias history go with it (ON DELETE CASCADE).
DELETE FROM metadata.models WHERE model_id = $1;

-- name: model_exists
-- Whether a model exists (ListAliases tells "no such model" from "no aliases").
SELECT EXISTS (SELECT 1 FROM metadata.models WHERE model_id = $1);

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
-- The method and resource an earlier call recorded under a request_id.
SELECT method, resource FROM metadata.request_log WHERE request_id = $1;

-- name: insert_secret
-- Store a server-wide secret unless one of that name exists (the first replica wins).
INSERT INTO metadata.server_secrets (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING;

-- name: get_secret
-- Read a server-wide secret.
SELECT value FROM metadata.server_secrets WHERE name = $1;

-- name: allocate_version
-- Race-free version numbers: the model row is locked by this UPDATE until commit, so
-- concurrent creates on one model queue here and each gets the next number.
UPDATE metadata.models SET next_version = next_version + 1
WHERE model_id = $1
RETURNING next_version - 1 AS version;

-- name: insert_version
-- Insert a PENDING version with the number allocate_version handed out.
INSERT INTO metadata.model_versions
    (model_id, version, state, description, labels, params, metrics, lineage, framework,
     format, signature, created_by, etag)
VALUES ($1, $2, 'PENDING', $3, $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9, $10::jsonb,
        $11, $12)
RETURNING model_id, version;

-- name: get_version
-- Read one version with its aliases.
SELECT v.*, ARRAY(SELECT a.alias FROM metadata.aliases a
                  WHERE a.model_id = v.model_id AND a.version = v.version
                  ORDER BY a.alias) AS aliases
FROM metadata.model_versions v
WHERE v.model_id = $1 AND v.version = $2;

-- name: lock_version
-- Read a version with its aliases and lock its row until the transaction ends.
SELECT v.*, ARRAY(SELECT a.alias FROM metadata.aliases a
                  WHERE a.model_id = v.model_id AND a.version = v.version
                  ORDER BY a.alias) AS aliases
FROM metadata.model_versions v
WHERE v.model_id = $1 AND v.version = $2
FOR UPDATE OF v;

-- name: latest_version_number
-- The newest version number of a model (a replayed CreateModelVersion returns that version).
SELECT max(version) FROM metadata.model_versions WHERE model_id = $1;

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
-- The version an alias points at now, with its aliases (ResolveModelVersion name@alias).
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
-- Overwrite the fields given (NULL keeps the stored value) with a new etag $11.
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
-- PENDING -> READY: store the manifest and its total size, with a new etag.
UPDATE metadata.model_versions
SET state = 'READY', files = $3::jsonb, total_size_bytes = $4, ready_time = clock_timestamp(),
    update_time = now(), etag = $5
WHERE model_id = $1 AND version = $2;

-- name: insert_version_blob
-- Record that a version references a blob (what GC checks before deleting it).
INSERT INTO metadata.version_blobs (model_id, version, sha256, size)
VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING;

-- name: soft_delete_version
-- Mark a version DELETED, with a new etag (the row stays for audit and history).
UPDATE metadata.model_versions
SET state = 'DELETED', update_time = now(), etag = $3
WHERE model_id = $1 AND version = $2;

-- name: delete_aliases_of_version
-- Remove every alias of a version being deleted; returns their names.
DELETE FROM metadata.aliases WHERE model_id = $1 AND version = $2 RETURNING alias;

-- name: upsert_alias
-- Point an alias at a version, creating it if needed.
INSERT INTO metadata.aliases (model_id, alias, version, updated_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (model_id, alias) DO UPDATE
SET version = EXCLUDED.version, update_time = now(), updated_by = EXCLUDED.updated_by
RETURNING model_id, alias, version, update_time, updated_by;

-- name: lock_alias
-- Where an alias points now, locked until the transaction ends (SetAlias compare-and-set).
SELECT model_id, alias, version, update_time, updated_by FROM metadata.aliases
WHERE model_id = $1 AND alias = $2
FOR UPDATE;

-- name: lock_model_aliases
-- SetAlias adding an alias holds this until it commits, so concurrent ones count in turn.
SELECT pg_advisory_xact_lock(7458, hashtext($1));

-- name: count_aliases
-- How many aliases a model has (capped per model; counted under lock_model_aliases).
SELECT count(*) FROM metadata.aliases WHERE model_id = $1;

-- name: delete_alias
-- Remove an alias; returns the version it pointed at (no row: no such alias).
DELETE FROM metadata.aliases WHERE model_id = $1 AND alias = $2 RETURNING version;

-- name: record_alias_move
-- Append an alias move to its history (version NULL: removed), for "as of" resolves.
INSERT INTO metadata.alias_history (model_id, alias, version, actor) VALUES ($1, $2, $3, $4);

-- name: list_aliases
-- A model's aliases in name order, after the alias $2 ('' for the first page).
SELECT model_id, alias, version, update_time, updated_by FROM metadata.aliases
WHERE model_id = $1 AND alias > $2
ORDER BY alias
LIMIT $3;

-- name: count_live_versions
-- How many versions of a model are not DELETED (DeleteModel without force).
SELECT count(*) FROM metadata.model_versions WHERE model_id = $1 AND state <> 'DELETED';

-- name: lock_model_events
-- Taken by a transaction right before it inserts its change events, as the last thing before
-- its commit: the sequence hands out ids at insert time, so two writers could otherwise commit
-- the other way round, and a watcher that has read id n would never see the id below it that
-- commits later. Held only through the inserts and the commit, after every row lock the
-- transaction takes, so it cannot deadlock.
SELECT pg_advisory_xact_lock(7461, 0);

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
-- GC holds this while it re-checks references and deletes a blob.
SELECT pg_advisory_xact_lock(7457, hashtext($1));

-- name: blob_referenced
-- Whether a non-deleted version references the digest $1.
SELECT EXISTS (
    SELECT 1 FROM metadata.version_blobs b
    JOIN metadata.model_versions v USING (model_id, version)
    WHERE b.sha256 = $1 AND v.state <> 'DELETED'
);

-- name: referenced_blobs
-- Which of the digests $1 a non-deleted version references.
SELECT DISTINCT b.sha256 FROM metadata.version_blobs b
JOIN metadata.model_versions v USING (model_id, version)
WHERE b.sha256 = ANY($1::text[]) AND v.state <> 'DELETED';

-- name: stale_pending_versions
-- PENDING versions created before $1, locked; rows another transaction holds are skipped.
SELECT v.*, ARRAY[]::text[] AS aliases FROM metadata.model_versions v
WHERE v.state = 'PENDING' AND v.create_time < $1
FOR UPDATE SKIP LOCKED;

-- name: fail_version
-- PENDING -> FAILED (garbage collection of an abandoned push), with a new etag.
UPDATE metadata.model_versions SET state = 'FAILED', update_time = now(), etag = $3
WHERE model_id = $1 AND version = $2;

-- name: list_audit_events_desc
-- One page of the audit log, newest first, after the keyset position ($5 time, $6 id); only
-- models the caller may see ($8 all, else ids $9 and LIKE patterns $10); $11 a method or NULL.
SELECT id, actor, method, resource, event_time, before, after, request_id, trace_id,
       denied_permission, model_id, seq, prev_hash, hash
FROM audit.events
WHERE ($1::text IS NULL OR model_id = $1)
  AND ($2::timestamptz IS NULL OR event_time >= $2)
  AND ($3::timestamptz IS NULL OR event_time < $3)
  AND ($4::text IS NULL OR actor = $4)
  AND ($11::text IS NULL OR method = $11)
  AND ($5::timestamptz IS NULL OR (event_time, id) < ($5, $6::bigint))
  AND ($8::boolean OR model_id = ANY($9::text[]) OR model_id LIKE ANY($10::text[]))
ORDER BY event_time DESC, id DESC
LIMIT $7;

-- name: list_audit_events_asc
-- One page of the audit log, oldest first, after the keyset position ($5 time, $6 id); only
-- models the caller may see ($8 all, else ids $9 and LIKE patterns $10); $11 a method or NULL.
SELECT id, actor, method, resource, event_time, before, after, request_id, trace_id,
       denied_permission, model_id, seq, prev_hash, hash
FROM audit.events
WHERE ($1::text IS NULL OR model_id = $1)
  AND ($2::timestamptz IS NULL OR event_time >= $2)
  AND ($3::timestamptz IS NULL OR event_time < $3)
  AND ($4::text IS NULL OR actor = $4)
  AND ($11::text IS NULL OR method = $11)
  AND ($5::timestamptz IS NULL OR (event_time, id) > ($5, $6::bigint))
  AND ($8::boolean OR model_id = ANY($9::text[]) OR model_id LIKE ANY($10::text[]))
ORDER BY event_time ASC, id ASC
LIMIT $7;

-- name: list_model_events
-- Change events after the id $1, of one model ($2, NULL: all) and of the types $3 (empty: all).
SELECT id, type, model_id, version, alias, event_time, actor
FROM metadata.model_events
WHERE id > $1 AND ($2::text IS NULL OR model_id = $2)
  AND (cardinality($3::text[]) = 0 OR type = ANY($3::text[]))
ORDER BY id
LIMIT $4;

-- name: latest_model_event_id
-- The id of the newest change event (0 when there is none): where a new watch starts. Never
-- below the highest pruned id, which a watch could not resume from.
SELECT GREATEST(COALESCE(max(id), 0), (SELECT pruned_through FROM metadata.event_retention))
FROM metadata.model_events;

-- name: pruned_event_id
-- The highest change-event id housekeeping has deleted (0: none); every later one is kept.
SELECT pruned_through FROM metadata.event_retention;

-- name: prune_model_events
-- Delete at most $2 of the oldest change events, stopping at the first one (in id order) that
-- is younger than $1, so what is deleted is always a prefix of the ids; record the highest id
-- deleted. Returns how many were deleted.
WITH head AS (
    SELECT id, event_time FROM metadata.model_events ORDER BY id LIMIT $2
), kept AS (
    SELECT min(id) AS id FROM head WHERE event_time >= now() - $1::interval
), gone AS (
    DELETE FROM metadata.model_events e USING head
    WHERE e.id = head.id AND head.id < COALESCE((SELECT id FROM kept), 9223372036854775807)
    RETURNING e.id
), mark AS (
    UPDATE metadata.event_retention SET pruned_through = (SELECT max(id) FROM gone)
    WHERE (SELECT max(id) FROM gone) > pruned_through
)
SELECT count(*) FROM gone;

-- name: prune_request_ids
-- Delete at most $2 of the request ids recorded more than $1 ago, oldest first; returns how
-- many were deleted.
WITH gone AS (
    DELETE FROM metadata.request_log WHERE request_id IN (
        SELECT request_id FROM metadata.request_log
        WHERE create_time < now() - $1::interval
        ORDER BY create_time
        LIMIT $2
    )
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: try_lock_scheduled_job
-- The scheduled job $1's lock, until the transaction ends; false when another replica runs it.
SELECT pg_try_advisory_xact_lock(7459, hashtext($1));

-- name: claim_scheduled_run
-- Record a run of job $1 now when its last run (on any replica) is at least $2 ago, or when
-- $3 (forced); true when recorded, and the caller then runs the job. A job seen for the first
-- time is recorded without a run: it first runs one interval after scheduling began.
WITH previous AS (
    SELECT last_run FROM metadata.scheduled_runs WHERE job = $1
), claimed AS (
    INSERT INTO metadata.scheduled_runs (job, last_run) VALUES ($1, now())
    ON CONFLICT (job) DO UPDATE SET last_run = now()
    WHERE $3 OR metadata.scheduled_runs.last_run <= now() - $2::interval
    RETURNING job
)
SELECT EXISTS (SELECT 1 FROM claimed) AND ($3 OR EXISTS (SELECT 1 FROM previous));
