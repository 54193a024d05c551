-- Named queries of the artifacts schema. Parameters are $n only.

-- name: insert_session
-- A request_id seen before inserts nothing; the caller then reads the earlier session.
INSERT INTO artifacts.upload_sessions
    (session_id, sha256, size_bytes, part_size, committed_size, complete, expire_time, request_id,
     owner)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (request_id) DO NOTHING
RETURNING *;

-- name: lock_owner_sessions
-- Serialise the creations of one owner's sessions (quota check, then insert); released at commit.
SELECT pg_advisory_xact_lock(hashtext('modelregistry.upload-quota.' || $1::text));

-- name: owner_session_usage
-- The owner's unfinished, unexpired sessions, and the bytes they declared but did not write.
SELECT count(*) AS sessions,
       coalesce(sum(size_bytes - committed_size), 0)::bigint AS unwritten
FROM artifacts.upload_sessions
WHERE owner = $1 AND NOT complete AND expire_time > now();

-- name: unfinished_sessions
-- Every owner's unfinished, unexpired sessions and the bytes they have yet to receive (metrics).
SELECT count(*) AS sessions,
       coalesce(sum(size_bytes - committed_size), 0)::bigint AS unwritten
FROM artifacts.upload_sessions
WHERE NOT complete AND expire_time > now();

-- name: get_session_by_request
-- The session an earlier CreateUploadSession with this request_id made.
SELECT * FROM artifacts.upload_sessions WHERE request_id = $1;

-- name: get_session
-- Read one upload session.
SELECT * FROM artifacts.upload_sessions WHERE session_id = $1;

-- name: claim_writer
-- Make the caller the session's one writer (a newer Write stream takes over).
UPDATE artifacts.upload_sessions SET writer_token = $2
WHERE session_id = $1
RETURNING *;

-- name: set_upload_id
-- Remember the store's multipart upload id of a session, once.
UPDATE artifacts.upload_sessions SET upload_id = $3
WHERE session_id = $1 AND writer_token = $2
RETURNING session_id;

-- name: record_progress
-- Only the current writer may advance the session, and never backwards.
UPDATE artifacts.upload_sessions
SET committed_size = $3, hash_state = $4, parts = $5::jsonb
WHERE session_id = $1 AND writer_token = $2 AND committed_size <= $3 AND NOT complete
RETURNING session_id;

-- name: mark_complete
-- The blob is stored: the session is complete and keeps its digest.
UPDATE artifacts.upload_sessions
SET complete = true, committed_size = size_bytes, writer_token = NULL
WHERE session_id = $1 AND writer_token = $2
RETURNING session_id;

-- name: delete_session
-- Forget an upload session.
DELETE FROM artifacts.upload_sessions WHERE session_id = $1;

-- name: list_expired_sessions
-- Sessions past their expiry, for the sweeper to abort and delete.
SELECT * FROM artifacts.upload_sessions
WHERE expire_time < $1
ORDER BY expire_time
LIMIT $2;

-- name: known_upload_ids
-- Every multipart upload id a session holds (others in the store are orphans).
SELECT upload_id FROM artifacts.upload_sessions WHERE upload_id IS NOT NULL;

-- name: add_blob
-- The first writer's create_time wins; a repeated add returns the existing row.
WITH inserted AS (
    INSERT INTO artifacts.blobs (sha256, size_bytes) VALUES ($1, $2)
    ON CONFLICT (sha256) DO NOTHING
    RETURNING sha256, size_bytes, create_time
)
SELECT * FROM inserted
UNION ALL
SELECT sha256, size_bytes, create_time FROM artifacts.blobs WHERE sha256 = $1
LIMIT 1;

-- name: get_blob
-- Read one blob's index row.
SELECT sha256, size_bytes, create_time FROM artifacts.blobs WHERE sha256 = $1;

-- name: find_blobs
-- Which of the digests $1 are indexed, with their sizes (FindMissingBlobs).
SELECT sha256, size_bytes FROM artifacts.blobs WHERE sha256 = ANY($1::text[]);

-- name: list_blobs
-- One page of blobs in digest order after $1, created before $3 (NULL: any).
SELECT sha256, size_bytes, create_time FROM artifacts.blobs
WHERE sha256 > $1 AND ($3::timestamptz IS NULL OR create_time < $3)
ORDER BY sha256
LIMIT $2;

-- name: remove_blob
-- Drop a blob from the index (before its bytes are deleted).
DELETE FROM artifacts.blobs WHERE sha256 = $1;

-- name: insert_secret
-- Store a server-wide secret unless one of that name exists (the first replica wins).
INSERT INTO artifacts.server_secrets (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING;

-- name: get_secret
-- Read a server-wide secret.
SELECT value FROM artifacts.server_secrets WHERE name = $1;
