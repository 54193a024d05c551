-- Model file scanning (metadata/app/scanning.py): which versions still need a scan, and
-- storing a verdict once.

-- name: unscanned_versions
-- READY versions whose files were never scanned (a crash mid-scan, or scanning was off),
-- oldest commit first; $1 caps how many.
SELECT v.*, ARRAY[]::text[] AS aliases FROM metadata.model_versions v
WHERE v.state = 'READY' AND v.scan_verdict = ''
ORDER BY v.ready_time, v.model_id, v.version
LIMIT $1;

-- name: record_scan
-- Store a version's scan verdict and per-file results, only while it is READY and not scanned
-- yet (a version archived or deleted meanwhile keeps no verdict; two replicas scanning the
-- same version store one). The etag is kept: a scan is no edit a caller could conflict with.
UPDATE metadata.model_versions
SET scan_verdict = $3, scan_results = $4::jsonb, scan_time = clock_timestamp()
WHERE model_id = $1 AND version = $2 AND state = 'READY' AND scan_verdict = ''
RETURNING version;
