-- An upload session belongs to the principal that created it ('' for sessions made before).
ALTER TABLE artifacts.upload_sessions ADD COLUMN owner text NOT NULL DEFAULT '';
