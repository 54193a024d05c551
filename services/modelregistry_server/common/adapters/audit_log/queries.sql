-- Named queries of the audit schema. Parameters are $n only.

-- name: insert_event
-- Append to the audit log, in the transaction of the change it records.
INSERT INTO audit.events
    (actor, method, resource, model_id, before, after, request_id, trace_id, denied_permission)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9);

-- name: try_lock_chain
-- Become the one chainer (across replicas) for this transaction, or learn another one is.
SELECT pg_try_advisory_xact_lock(7460, 0);

-- name: lock_chain
-- Become the one chainer for this transaction, waiting for the one running (at most the
-- connection's lock_timeout).
SELECT pg_advisory_xact_lock(7460, 0);

-- name: chain_head
-- The last chain position given out and its hash (0 and 32 zero bytes before the first).
SELECT seq, hash FROM audit.chain_head;

-- name: unchained_events
-- Committed events without a chain position, oldest id first, at most $1.
SELECT id, event_time, actor, method, resource, model_id, before, after, request_id, trace_id,
       denied_permission
FROM audit.events
WHERE seq IS NULL
ORDER BY id
LIMIT $1;

-- name: chain_events
-- Give the events $1 their positions $2, previous hashes $3 and hashes $4, and make the last
-- one ($5, $6) the head, in one statement; no row comes back (and the head stays) unless
-- every one of the events was still unchained.
WITH linked AS (
    UPDATE audit.events AS e
    SET seq = c.seq, prev_hash = c.prev_hash, hash = c.hash
    FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])
        AS c (id, seq, prev_hash, hash)
    WHERE e.id = c.id AND e.seq IS NULL
    RETURNING e.id
)
UPDATE audit.chain_head SET seq = $5, hash = $6, update_time = now()
WHERE (SELECT count(*) FROM linked) = cardinality($1::bigint[])
RETURNING seq;

-- name: chained_events
-- Chained events after position $1 up to position $2, in chain order, at most $3.
SELECT id, seq, prev_hash, hash, event_time, actor, method, resource, model_id, before, after,
       request_id, trace_id, denied_permission
FROM audit.events
WHERE seq > $1 AND seq <= $2
ORDER BY seq
LIMIT $3;

-- name: unchained_count
-- How many events are not chained yet (committed after the last chaining pass).
SELECT count(*) FROM audit.events WHERE seq IS NULL;

-- name: first_position_since
-- The first chain position of an event at or after the time $1 (NULL if there is none).
SELECT min(seq) FROM audit.events WHERE event_time >= $1;
