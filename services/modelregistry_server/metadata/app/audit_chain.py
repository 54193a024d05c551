"""Use cases on the audit log's hash chain: VerifyAuditLog and ExportAuditLog.

The chain itself (what is hashed, how positions are given out) is described in
``common/kernel/audit_chain.py`` and ``common/adapters/audit_log/chain.py``. Verification
reads the stored chain in batches of ``VERIFY_BATCH`` (bounded memory however long the log),
recomputes every hash, and reports the first event that does not fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from modelregistry_server.common.kernel.audit_chain import (
    ChainHead,
    ChainLink,
    ChainProblem,
    ChainVerifier,
    EventFields,
)
from modelregistry_server.common.kernel.paging import (
    Page,
    Paginator,
    invalid_page_token,
    split_page,
)
from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.events import AuditEvent

VERIFY_BATCH = 2000
_HASH = re.compile(r"[0-9a-f]{64}")
_MAX_POSITION = 2**63 - 1


class AuditChainStore(Protocol):
    """The stored chain (the audit log port, ``ports.AuditLog``, includes it)."""

    async def chain_pending(self) -> int:
        """Chain every event committed so far (waiting for a chainer that is running); return
        how many this call chained."""
        ...

    async def chain_head(self) -> ChainHead:
        """The last chain position given out and its hash."""
        ...

    async def in_chain_order(self, after: int, through: int, limit: int) -> list[AuditEvent]:
        """Chained events after position ``after`` up to ``through``, in chain order, with
        their chain fields; at most ``limit``."""
        ...

    async def unchained_count(self) -> int:
        """How many events are not chained yet."""
        ...

    async def first_position_since(self, start: datetime) -> int | None:
        """The lowest chain position of an event at or after ``start``; None if none."""
        ...


@dataclass(frozen=True)
class ChainReport:
    """The outcome of a verification.

    ``count`` events were checked and found to fit (all of them when intact); ``head`` is the
    recorded head, ``last`` the last event that fitted; ``unchained`` events were committed
    too late to be covered; ``problem`` is the first inconsistency (None when intact).
    """

    count: int
    head: ChainHead
    last: AuditEvent | None
    unchained: int
    problem: ChainProblem | None

    @property
    def intact(self) -> bool:
        """True when the whole chain up to the head fits."""
        return self.problem is None


def anchor_of(position: int, hash_hex: str) -> ChainHead | None:
    """The anchor of a request (None without one).

    Raises:
        InvalidArgument: The position is not 1 or more, or the hash not 64 lowercase hex
            characters, or only one of the two is given.
    """
    if position == 0 and not hash_hex:
        return None
    if not 1 <= position <= _MAX_POSITION:
        raise InvalidArgument(
            "anchor_chain_position",
            "must be a chain position (1 or more) recorded with anchor_hash",
        )
    if not _HASH.fullmatch(hash_hex):
        raise InvalidArgument(
            "anchor_hash",
            "must be 64 lowercase hexadecimal characters (a head_hash of an earlier verification)",
        )
    return ChainHead(position, bytes.fromhex(hash_hex))


def link_of(event: AuditEvent) -> ChainLink:
    """The chain link of a stored event: its encoding as it reads now, and its hashes."""
    fields = EventFields(
        event.event_id, event.event_time, event.actor, event.method, event.resource,
        event.model_id, event.before, event.after, event.request_id, event.trace_id,
        event.denied_permission,
    )  # fmt: skip
    return ChainLink(
        event.chain_position, event.event_id, event.event_time, fields.canonical(),
        event.previous_hash, event.hash,
    )  # fmt: skip


async def verify_chain(store: AuditChainStore, anchor: ChainHead | None) -> ChainReport:
    """Chain what is pending, then walk the chain from position 1 to the head."""
    await store.chain_pending()
    head = await store.chain_head()
    verifier = ChainVerifier(anchor)
    last: AuditEvent | None = None
    after = 0
    while after < head.position and verifier.problem is None:
        batch = await store.in_chain_order(after, head.position, VERIFY_BATCH)
        if not batch:
            break
        for event in batch:
            if verifier.feed(link_of(event)) is not None:
                break
            last = event
        after = batch[-1].chain_position
    problem = verifier.finish(head)
    return ChainReport(verifier.count, head, last, await store.unchained_count(), problem)


async def export_page(
    store: AuditChainStore,
    paginator: Paginator,
    page_size: int,
    page_token: str,
    start: datetime | None,
) -> Page[AuditEvent]:
    """One page of the chain in chain order, from the first event at or after ``start``."""
    page = paginator.open("ExportAuditLog", page_size, page_token, str(start))
    if page.after is None:
        await store.chain_pending()  # the export covers everything committed before it
        first = 1 if start is None else await store.first_position_since(start)
        if first is None:
            return paginator.page(page, [], None)
        after = first - 1
    else:
        if len(page.after) != 1 or type(page.after[0]) is not int:
            raise invalid_page_token("page_token does not fit this listing")
        after = page.after[0]
    head = await store.chain_head()
    rows = await store.in_chain_order(after, head.position, page.limit + 1)
    items, cursor = split_page(rows, page.limit, lambda e: [e.chain_position])
    return paginator.page(page, items, cursor)
