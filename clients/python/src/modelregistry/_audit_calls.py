"""The clients' calls on the audit log's hash chain: verify it on the server, export it.

Mixins of :class:`~modelregistry.client.Client` and :class:`~modelregistry.aio.AsyncClient`
(registry admins only). :mod:`modelregistry.audit` checks an export without the server.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from modelregistry import _convert
from modelregistry._pager import AsyncPager, Pager
from modelregistry.metadata.v1 import audit_chain_pb2, audit_event_pb2

if TYPE_CHECKING:
    from modelregistry._transport import AsyncTransport, Transport

# A verification walks the whole log on the server (tens of µs per event): more than the
# default deadline of a unary call allows for a long log.
VERIFY_TIMEOUT_S = 600.0
Anchor = tuple[int, str]  # (head_chain_position, head_hash) of an earlier verification


def verify_request(anchor: Anchor | None) -> audit_chain_pb2.VerifyAuditLogRequest:
    """``VerifyAuditLog``, checking ``anchor`` if given."""
    if anchor is None:
        return audit_chain_pb2.VerifyAuditLogRequest()
    position, head_hash = anchor
    return audit_chain_pb2.VerifyAuditLogRequest(
        anchor_chain_position=position, anchor_hash=head_hash
    )


def export_request(
    start: datetime | None, page_size: int, page_token: str
) -> audit_chain_pb2.ExportAuditLogRequest:
    """One page of ``ExportAuditLog`` from the first event at or after ``start``."""
    request = audit_chain_pb2.ExportAuditLogRequest(page_size=page_size, page_token=page_token)
    if start is not None:
        request.start_time.CopyFrom(_convert.timestamp(start))
    return request


class AuditCalls:
    """Verify and export the audit log (see the module docstring)."""

    def _online(self, what: str) -> Transport:
        raise NotImplementedError  # the client provides it

    def verify_audit_log(
        self, *, anchor: Anchor | None = None, timeout: float = VERIFY_TIMEOUT_S
    ) -> audit_chain_pb2.VerifyAuditLogResponse:
        """Have the server walk the audit log's hash chain.

        The answer has ``intact``, the head (``head_chain_position``, ``head_hash``: keep them
        where the database's administrators cannot write) and, when broken, ``problem``: the
        first event that does not fit (edited, missing, reordered). ``anchor`` is a head kept
        from an earlier verification: the chain must still hold it. A broken chain is an
        answer, not an error.
        """
        t = self._online("verify_audit_log")
        return t.unary(t.metadata_stub.VerifyAuditLog, verify_request(anchor), timeout=timeout)

    def export_audit_log(
        self, *, start: datetime | None = None, page_size: int = 1000
    ) -> Pager[audit_chain_pb2.ExportAuditLogResponse, audit_event_pb2.AuditEvent]:
        """The audit log in chain order with each event's position and hashes, from the first
        event at or after ``start`` (naive: UTC); ``modelregistry.audit.export_record`` makes
        an export line of each."""
        t = self._online("export_audit_log")
        return Pager(
            lambda token: t.unary(
                t.metadata_stub.ExportAuditLog, export_request(start, page_size, token)
            ),
            lambda page: page.audit_events,
        )


class AsyncAuditCalls:
    """The ``async`` twin of :class:`AuditCalls`."""

    def _online(self, what: str) -> AsyncTransport:
        raise NotImplementedError  # the client provides it

    async def verify_audit_log(
        self,
        *,
        anchor: Anchor | None = None,
        timeout: float = VERIFY_TIMEOUT_S,  # noqa: ASYNC109 - a gRPC deadline, sent to the server
    ) -> audit_chain_pb2.VerifyAuditLogResponse:
        """See ``Client.verify_audit_log``."""
        t = self._online("verify_audit_log")
        return await t.unary(
            t.metadata_stub.VerifyAuditLog, verify_request(anchor), timeout=timeout
        )

    def export_audit_log(
        self, *, start: datetime | None = None, page_size: int = 1000
    ) -> AsyncPager[audit_chain_pb2.ExportAuditLogResponse, audit_event_pb2.AuditEvent]:
        """See ``Client.export_audit_log``."""
        t = self._online("export_audit_log")
        return AsyncPager(
            lambda token: t.unary(
                t.metadata_stub.ExportAuditLog, export_request(start, page_size, token)
            ),
            lambda page: page.audit_events,
        )
