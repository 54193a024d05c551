-- Retention: change events and request ids older than their retention are deleted on a
-- schedule (housekeeping); garbage collection runs on a schedule too. The alias history and
-- the audit log are kept for ever. Runs with search_path set to the metadata schema.

-- The highest change-event id housekeeping has deleted. Events are deleted oldest id first,
-- so every event above it is still stored: a watch resuming after an id below it would have
-- a gap and is refused (EVENT_ID_EXPIRED). One row.
CREATE TABLE event_retention (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO event_retention DEFAULT VALUES;

-- Request ids are deleted oldest first, in batches.
CREATE INDEX request_log_create_time_idx ON request_log (create_time);

-- When each scheduled job (housekeeping, garbage collection) last ran, on any replica: a job
-- runs once per interval across the replicas and across restarts.
CREATE TABLE scheduled_runs (
    job      text PRIMARY KEY,
    last_run timestamptz NOT NULL
);
