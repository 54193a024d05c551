"""PostgreSQL adapter of the access ports: the ``access`` schema (tokens)."""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SCHEMA = "access"
