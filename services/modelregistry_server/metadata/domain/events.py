"""The audit log and the change-event feed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventType(StrEnum):
    """What happened to a model (the watchable changes)."""

    VERSION_READY = "VERSION_READY"
    ALIAS_MOVED = "ALIAS_MOVED"
    ALIAS_DELETED = "ALIAS_DELETED"
    VERSION_DELETED = "VERSION_DELETED"
    MODEL_DELETED = "MODEL_DELETED"
    VERSION_SCANNED = "VERSION_SCANNED"


@dataclass(frozen=True)
class ModelEvent:
    """One change, with a monotonically increasing id that is the resume cursor."""

    event_id: int
    type: EventType
    model_id: str
    version: int | None
    alias: str | None
    event_time: datetime
    actor: str


@dataclass(frozen=True)
class AuditEvent:
    """Who changed what, when, and the state before and after."""

    event_id: int
    actor: str
    method: str
    resource: str
    event_time: datetime
    before: Mapping[str, object] | None
    after: Mapping[str, object] | None
    request_id: str
    trace_id: str
    denied_permission: str = ""  # set only on the record of a refused call
    model_id: str | None = None  # None for registry-wide events
    # Its place in the audit log's hash chain (common/kernel/audit_chain.py); 0 and empty
    # hashes while it is not chained yet.
    chain_position: int = 0
    previous_hash: bytes = b""
    hash: bytes = b""
