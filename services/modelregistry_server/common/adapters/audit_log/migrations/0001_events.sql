-- The registry's audit log. model_id is NULL for registry-wide resources (tokens, role
-- bindings, blobs); denied_permission is set only on the record of a refused call.
CREATE TABLE audit.events (
    id                bigserial PRIMARY KEY,
    actor             text NOT NULL DEFAULT '',
    method            text NOT NULL,
    resource          text NOT NULL,
    model_id          text,
    event_time        timestamptz NOT NULL DEFAULT clock_timestamp(),
    before            jsonb,
    after             jsonb,
    request_id        text,
    trace_id          text,
    denied_permission text
);
CREATE INDEX events_model_idx ON audit.events (model_id, event_time);
CREATE INDEX events_time_idx ON audit.events (event_time);
