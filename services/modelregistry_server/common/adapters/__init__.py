"""What both services' storage adapters share: the database pool and its failure classes,
migrations, named SQL queries and the embedded PostgreSQL."""
