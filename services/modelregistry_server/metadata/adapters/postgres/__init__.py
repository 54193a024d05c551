"""PostgreSQL adapter: named queries and migrations of the metadata schema."""
