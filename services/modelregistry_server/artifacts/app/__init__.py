"""Use cases of the artifact service and the ports they need."""
