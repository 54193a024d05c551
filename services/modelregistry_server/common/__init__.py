"""Code both services share, split by layer so import-linter can hold each part to its place.

- ``kernel/``: pure rules and types, standard library only: the error kernel every layer raises
  (``kernel.errors``), request ids, page sizes and page tokens, the resumable SHA-256.
  ``domain/`` and ``app/`` packages may import this and nothing else from ``common``.
- ``rpc/``: gRPC plumbing for the servicers: domain errors to rich statuses, handler
  decorators, timestamps.
- ``adapters/``: what the storage adapters share: the asyncpg pool and the one place database
  failures are classified, migrations, named SQL, the embedded PostgreSQL.
- ``config.py`` and ``telemetry.py``: process wiring for the composition root (flags, logging,
  tracing); adapters and rpc read the current trace id from ``telemetry``.
"""
