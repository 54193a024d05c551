-- Versions, their manifests, aliases with history, the audit log and the change-event log.

-- Version numbers come from this per-model counter, bumped with UPDATE ... RETURNING in the
-- creating transaction: concurrent creates serialise on the model row and never collide.
ALTER TABLE models ADD COLUMN next_version bigint NOT NULL DEFAULT 1;

CREATE TABLE model_versions (
    model_id         text NOT NULL REFERENCES models (model_id) ON DELETE CASCADE,
    version          bigint NOT NULL,
    uid              uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    state            text NOT NULL
                     CHECK (state IN ('PENDING', 'READY', 'FAILED', 'ARCHIVED', 'DELETED')),
    description      text NOT NULL DEFAULT '',
    labels           jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Typed params as JSON scalars: string, integral number, non-integral number, boolean.
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics          jsonb NOT NULL DEFAULT '{}'::jsonb,
    lineage          jsonb NOT NULL DEFAULT '{}'::jsonb,
    framework        text NOT NULL DEFAULT '',
    format           text NOT NULL DEFAULT '',
    signature        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The manifest: [{path, sha256, size, media_type}], set once by CommitModelVersion.
    files            jsonb NOT NULL DEFAULT '[]'::jsonb,
    total_size_bytes bigint NOT NULL DEFAULT 0,
    created_by       text NOT NULL DEFAULT '',
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now(),
    ready_time       timestamptz,
    etag             text NOT NULL,
    PRIMARY KEY (model_id, version)
);

CREATE INDEX model_versions_state_idx ON model_versions (model_id, state, version DESC);
CREATE INDEX model_versions_create_time_idx ON model_versions (create_time, model_id, version);
CREATE INDEX model_versions_labels_idx ON model_versions USING gin (labels);

-- One row per file of a committed version: lets garbage collection ask "is this digest still
-- referenced?" with an index lookup instead of scanning every manifest.
CREATE TABLE version_blobs (
    model_id text NOT NULL,
    version  bigint NOT NULL,
    sha256   text NOT NULL,
    size     bigint NOT NULL,
    PRIMARY KEY (model_id, version, sha256),
    FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version) ON DELETE CASCADE
);
CREATE INDEX version_blobs_sha256_idx ON version_blobs (sha256);

CREATE TABLE aliases (
    model_id    text NOT NULL REFERENCES models (model_id) ON DELETE CASCADE,
    alias       text NOT NULL,
    version     bigint NOT NULL,
    update_time timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT '',
    PRIMARY KEY (model_id, alias),
    FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
);

-- Every alias move (version NULL = removed), so "what was production at T" is one query.
CREATE TABLE alias_history (
    id         bigserial PRIMARY KEY,
    model_id   text NOT NULL,
    alias      text NOT NULL,
    version    bigint,
    valid_from timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text NOT NULL DEFAULT ''
);
CREATE INDEX alias_history_lookup_idx ON alias_history (model_id, alias, valid_from DESC);

CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL DEFAULT '',
    method      text NOT NULL,
    resource    text NOT NULL,
    model_id    text,
    event_time  timestamptz NOT NULL DEFAULT clock_timestamp(),
    before      jsonb,
    after       jsonb,
    request_id  text,
    trace_id    text
);
CREATE INDEX audit_events_model_idx ON audit_events (model_id, event_time);
CREATE INDEX audit_events_time_idx ON audit_events (event_time);

-- Change events for WatchModelEvents; ids are the resume cursor (a watcher that reconnects
-- with its last id reads the rows after it, then follows LISTEN/NOTIFY).
CREATE TABLE model_events (
    id         bigserial PRIMARY KEY,
    type       text NOT NULL,
    model_id   text NOT NULL,
    version    bigint,
    alias      text,
    event_time timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text NOT NULL DEFAULT ''
);
CREATE INDEX model_events_model_idx ON model_events (model_id, id);
