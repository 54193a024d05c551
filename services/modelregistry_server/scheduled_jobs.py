"""Wiring of the metadata service's scheduled jobs: retention housekeeping, garbage
collection (the jobs themselves are in ``metadata/app/housekeeping.py``) and the audit
chainer (``common/adapters/audit_log/chain.py``), which every replica serving metadata runs."""

from __future__ import annotations

from datetime import timedelta

from modelregistry_server.common.adapters.audit_log.chain import AuditChainer
from modelregistry_server.common.adapters.db import Database
from modelregistry_server.common.limits_config import Limits
from modelregistry_server.metadata.adapters.postgres.housekeeping import (
    PostgresJobGate,
    PostgresRetentionStore,
)
from modelregistry_server.metadata.app.gc import GarbageCollector
from modelregistry_server.metadata.app.housekeeping import Housekeeping, RetentionPolicy

__all__ = ["Housekeeping", "build_housekeeping"]


def build_housekeeping(database: Database, gc: GarbageCollector, limits: Limits) -> Housekeeping:
    """The scheduled jobs on ``database`` with the configured retention and intervals."""
    policy = RetentionPolicy(
        event_retention=timedelta(seconds=limits.event_retention_s),
        request_id_retention=timedelta(seconds=limits.request_id_retention_s),
        housekeeping_interval=timedelta(seconds=limits.housekeeping_interval_s),
        gc_interval=timedelta(seconds=limits.gc_interval_s),
    )
    chainer = AuditChainer(database, limits.audit_chain_interval_s)
    return Housekeeping(
        PostgresRetentionStore(database), PostgresJobGate(database), gc, policy,
        background=[chainer.run_forever],
    )  # fmt: skip
