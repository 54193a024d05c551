-- ListAuditEvents filters by method ("every SetAlias of last month"): without this index such
-- a listing reads every event in the time range, newest first, to find the few of one method.
CREATE INDEX events_method_idx ON audit.events (method, event_time, id);
