"""Domain model of the artifact service (stdlib only)."""
