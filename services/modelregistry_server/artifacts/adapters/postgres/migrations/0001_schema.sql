-- The artifacts schema starts empty: upload sessions arrive with the ArtifactService
-- implementation. The migration runner creates the schema itself; this file records version 1.
SELECT 1;
