"""Adapters of the access ports (PostgreSQL)."""
