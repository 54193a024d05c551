-- Bearer tokens: only the SHA-256 of each secret is kept.
CREATE TABLE access.tokens (
    token_id      text PRIMARY KEY,
    secret_sha256 text NOT NULL,
    principal     text NOT NULL,
    description   text NOT NULL DEFAULT '',
    created_by    text NOT NULL,
    create_time   timestamptz NOT NULL DEFAULT now(),
    expire_time   timestamptz,
    last_use_time timestamptz,
    revoke_time   timestamptz
);

CREATE INDEX tokens_by_time ON access.tokens (create_time DESC, token_id DESC);
CREATE INDEX tokens_by_principal ON access.tokens (principal, create_time DESC, token_id DESC);

-- Server-wide secrets every replica shares (the page-token key of ListAccessTokens).
CREATE TABLE access.server_secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
