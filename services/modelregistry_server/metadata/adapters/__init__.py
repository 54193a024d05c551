"""Adapters that implement the metadata ports (PostgreSQL)."""
