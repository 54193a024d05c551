"""Adapters that implement the metadata ports: PostgreSQL (reads, the unit of work, the event
feed) and the gRPC client of the ArtifactService (``artifact_client.py``)."""
