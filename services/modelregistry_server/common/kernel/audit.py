"""The registry's one audit log: what every service records in it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log: who did what to which resource, before and after.

    Attributes:
        actor: The principal that made the call (never a header's claim).
        method: The RPC's short name (``SetAlias``, ``CreateAccessToken``).
        resource: The resource the call named (``models/m/aliases/production``).
        model_id: The model the resource belongs to; None for registry-wide resources (tokens,
            role bindings, blobs), which only callers who may read every model see.
        before: The resource before the change; None when the call created it.
        after: The resource after the change; None when the call removed it.
        request_id: The request's ``request_id``, if it had one.
        denied_permission: Set only on the record of a refused call: the permission the caller
            lacked. Such a record changes nothing, so ``before`` and ``after`` are None.
    """

    actor: str
    method: str
    resource: str
    model_id: str | None
    before: Mapping[str, object] | None
    after: Mapping[str, object] | None
    request_id: str | None
    denied_permission: str | None = None


def rfc3339(when: datetime | None) -> str | None:
    """A snapshot's time, as the proto JSON mapping writes a Timestamp (None stays None)."""
    return None if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")
