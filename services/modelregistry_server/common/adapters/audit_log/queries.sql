-- Named queries of the audit schema. Parameters are $n only.

-- name: insert_event
-- Append to the audit log, in the transaction of the change it records.
INSERT INTO audit.events
    (actor, method, resource, model_id, before, after, request_id, trace_id, denied_permission)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9);
