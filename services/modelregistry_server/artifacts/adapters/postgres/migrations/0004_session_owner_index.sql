-- Counting one principal's unfinished upload sessions (the quota of CreateUploadSession).
CREATE INDEX upload_sessions_owner_idx ON artifacts.upload_sessions (owner) WHERE NOT complete;
