"""Infrastructure shared by both services: configuration, database, telemetry, gRPC plumbing."""
