-- The hash chain (audit_log/__init__.py explains it). Events are inserted without these
-- columns, in the writer's transaction; the chainer, one at a time, later gives each
-- committed event its chain position (`seq`, 1, 2, 3, ... in the order it sees commits),
-- the hash of the event before it (`prev_hash`) and its own
-- `hash = sha256(prev_hash || canonical encoding of the event)`. Existing events are
-- unchained until the first chainer runs, which chains them in id order.
ALTER TABLE audit.events
    ADD COLUMN seq bigint,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash bytea;
-- One event per position; the verify walk and the export read in this order.
CREATE UNIQUE INDEX events_seq_idx ON audit.events (seq);
-- What the chainer has still to do (small: events committed in the last second or so).
CREATE INDEX events_unchained_idx ON audit.events (id) WHERE seq IS NULL;

-- The last position given out and its hash: where the next event links on, and what a
-- verification expects the walk to end at (an event deleted from the end shows up here).
CREATE TABLE audit.chain_head (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    update_time timestamptz NOT NULL DEFAULT now()
);
-- Position 0: nothing chained yet; the first event links on to 32 zero bytes.
INSERT INTO audit.chain_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));
