"""MetadataService: models, versions, aliases and their history, stored in PostgreSQL.

A behaviour is found in one hop: a rule about states or aliases is in
``domain/lifecycle.py``; what a method does, step by step, in ``app/<resource>.py``; the SQL
it runs in ``adapters/postgres/queries.sql`` (named, described) or, for List filters and
sorting, ``adapters/postgres/filter_sql.py`` and ``listing_sql.py``; the transaction, audit
row and change event of every write in ``adapters/postgres/unit_of_work.py``; the proto
mapping in ``rpc/convert.py``.
"""
