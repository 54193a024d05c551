"""modelregistry server: the MetadataService and the ArtifactService.

Where each kind of code lives (the same four layers in both services; import-linter holds
the direction rpc/adapters → app → domain, and metadata and artifacts never import each other):

- ``<service>/domain/``: frozen dataclasses, validation and lifecycle rules, standard library
  only (e.g. ``metadata/domain/lifecycle.py``: which state may become which, alias rules).
- ``<service>/app/``: one use case per method (``versions.py``, ``models.py``, ``uploads.py``)
  and ``ports.py``, the ``typing.Protocol``s they need (repositories, the unit of work).
- ``<service>/adapters/``: the ports on real engines (``postgres/`` with ``queries.sql``,
  ``s3.py``, ``localfs.py``, the gRPC client of the other service).
- ``<service>/rpc/``: the servicer (proto in, use case, proto out) and ``convert.py``.
- ``common/``: what both share, split the same way (``kernel/`` pure, ``rpc/``, ``adapters/``).
- ``server.py``: the composition root that wires adapters into use cases into servicers;
  ``__main__.py``: the command line.
"""
