"""Use cases of the metadata service and the ports they need."""
