"""Domain model of the metadata service: frozen dataclasses, rules and errors (stdlib only)."""
