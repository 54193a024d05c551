-- Named queries of the access schema. Parameters are $n only.

-- name: insert_token
-- Store a new token; a taken id inserts nothing (the caller draws another).
INSERT INTO access.tokens
    (token_id, secret_sha256, principal, description, created_by, create_time, expire_time)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (token_id) DO NOTHING
RETURNING token_id;

-- name: get_token
-- Read one token by id (authentication, revocation).
SELECT * FROM access.tokens WHERE token_id = $1;

-- name: list_tokens
-- Tokens newest first after the keyset position ($3 time, $4 id); of principal $1 (NULL: all);
-- only those active at $2 (NULL: every token).
SELECT * FROM access.tokens
WHERE ($1::text IS NULL OR principal = $1)
  AND ($2::timestamptz IS NULL
       OR (revoke_time IS NULL AND (expire_time IS NULL OR expire_time > $2)))
  AND ($3::timestamptz IS NULL OR (create_time, token_id) < ($3, $4::text))
ORDER BY create_time DESC, token_id DESC
LIMIT $5;

-- name: lock_token
-- Read one token and hold it until the transaction ends (revocation writes its audit row).
SELECT * FROM access.tokens WHERE token_id = $1 FOR UPDATE;

-- name: revoke_token
-- Revoke a token; a revoked one keeps its first revoke time. No row: no such token.
UPDATE access.tokens SET revoke_time = COALESCE(revoke_time, $2)
WHERE token_id = $1
RETURNING *;

-- name: record_token_use
-- Remember when a token was last accepted (at most once a minute per token and server).
UPDATE access.tokens SET last_use_time = $2 WHERE token_id = $1;

-- name: insert_secret
-- Store a server-wide secret unless one of that name exists (the first replica wins).
INSERT INTO access.server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING;

-- name: get_secret
-- Read a server-wide secret.
SELECT value FROM access.server_secrets WHERE name = $1;

-- name: insert_binding
-- Grant a role; granting the same subject the same role on the same scope again returns the
-- existing binding.
WITH inserted AS (
    INSERT INTO access.role_bindings (binding_id, subject, role, scope, created_by, create_time)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (subject, role, scope) DO NOTHING
    RETURNING *
)
SELECT * FROM inserted
UNION ALL
SELECT * FROM access.role_bindings WHERE subject = $2 AND role = $3 AND scope = $4
LIMIT 1;

-- name: delete_binding
-- Revoke a binding; no row: no such binding.
DELETE FROM access.role_bindings WHERE binding_id = $1 RETURNING *;

-- name: all_bindings
-- Every binding (the policy keeps them in memory; there are few).
SELECT * FROM access.role_bindings ORDER BY subject, scope, role;
