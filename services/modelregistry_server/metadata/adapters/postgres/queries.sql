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
