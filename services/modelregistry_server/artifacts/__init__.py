"""ArtifactService: content-addressed model files in MinIO or a local directory."""
