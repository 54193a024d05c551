"""PostgreSQL adapter of the artifact service: migrations of the ``artifacts`` schema."""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
