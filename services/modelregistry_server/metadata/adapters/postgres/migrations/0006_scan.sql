-- Model file scanning (issue 13, item 6): each READY version's files are scanned in the
-- background after its commit (metadata/app/scanning.py); the verdict is stored here.
-- scan_verdict: '' while not scanned yet, else SAFE, UNSAFE, UNSCANNED or ERROR.
-- scan_results: per file [{path, verdict, scanner, findings: [{kind, detail, offset}]}], capped.
ALTER TABLE model_versions
    ADD COLUMN scan_verdict text NOT NULL DEFAULT ''
        CHECK (scan_verdict IN ('', 'SAFE', 'UNSAFE', 'UNSCANNED', 'ERROR')),
    ADD COLUMN scan_results jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN scan_time timestamptz;

-- The start-up pass finds READY versions not scanned yet without reading the whole table.
CREATE INDEX model_versions_unscanned_idx ON model_versions (ready_time)
    WHERE state = 'READY' AND scan_verdict = '';
