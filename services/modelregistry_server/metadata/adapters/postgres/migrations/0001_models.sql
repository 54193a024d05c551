-- Models, the idempotency log for mutating calls, and server-wide secrets.
-- Runs with search_path set to the metadata schema.

CREATE TABLE models (
    model_id    text PRIMARY KEY,
    uid         uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    description text NOT NULL DEFAULT '',
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
    owner       text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    -- Changes on every write; compared inside the UPDATE so a stale writer cannot win a race.
    etag        text NOT NULL
);

-- Keyset pagination walks (sort column, model_id); these make every supported order an index scan.
CREATE INDEX models_create_time_idx ON models (create_time, model_id);
CREATE INDEX models_update_time_idx ON models (update_time, model_id);

-- A mutating call that carries a request_id is recorded here in its own transaction, so a
-- retry returns the original result instead of doing the work twice.
CREATE TABLE request_log (
    request_id  text PRIMARY KEY,
    method      text NOT NULL,
    resource    text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE server_secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
