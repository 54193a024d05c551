-- The audit log moved to the registry-wide `audit` schema, which every service appends to
-- (access records token and binding changes and refused calls there). The `audit` schema is
-- migrated before this one; what was recorded here is copied over, oldest first, and the old
-- table dropped. Ids are new (they are opaque); times, actors and snapshots are kept.
INSERT INTO audit.events
    (actor, method, resource, model_id, event_time, before, after, request_id, trace_id)
SELECT actor, method, resource, NULLIF(model_id, ''), event_time, before, after, request_id,
       trace_id
FROM metadata.audit_events
ORDER BY id;
DROP TABLE metadata.audit_events;
