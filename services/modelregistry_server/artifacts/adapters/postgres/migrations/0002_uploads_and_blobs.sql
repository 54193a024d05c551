-- Resumable upload sessions and the index of stored blobs.

CREATE TABLE upload_sessions (
    session_id     text PRIMARY KEY,
    sha256         text NOT NULL,
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    part_size      bigint NOT NULL CHECK (part_size > 0),
    -- The store's multipart upload id; NULL until the first part is sent, so sessions that are
    -- never written to (or dedupe at once) leave nothing to clean up in the store.
    upload_id      text,
    committed_size bigint NOT NULL DEFAULT 0,
    -- SHA-256 state (OpenSSL SHA256_CTX bytes) after committed_size bytes: resuming after a
    -- restart continues the hash instead of re-reading everything uploaded so far.
    hash_state     bytea,
    parts          jsonb NOT NULL DEFAULT '[]'::jsonb,
    complete       boolean NOT NULL DEFAULT false,
    -- Changes whenever a new stream takes the session over; progress from an older stream is refused.
    writer_token   text,
    -- The CreateUploadSession request_id, so a retried create returns the same session.
    request_id     text UNIQUE,
    create_time    timestamptz NOT NULL DEFAULT now(),
    expire_time    timestamptz NOT NULL
);

CREATE INDEX upload_sessions_expire_idx ON upload_sessions (expire_time);

CREATE TABLE blobs (
    sha256      text PRIMARY KEY,
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    create_time timestamptz NOT NULL DEFAULT now()
);

-- Secrets shared by every replica of the artifact service (the page-token key).
CREATE TABLE server_secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
