"""MetadataService: models, versions, aliases and their history, stored in PostgreSQL."""
