"""Use cases of the metadata service and the ports they need.

Every mutation opens a ``UnitOfWork`` (``ports.py``), loads what it changes, asks the domain
rule, writes, and records its audit row and change event in the same unit. Reads go through
the repository ports. Lists page through ``common.kernel.paging.Paginator``.
"""
