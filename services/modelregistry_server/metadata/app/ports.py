"""The ports the metadata use cases depend on, as ``typing.Protocol`` classes named by role."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.common.kernel.paging import Cursor
from modelregistry_server.metadata.app.audit_chain import AuditChainStore
from modelregistry_server.metadata.domain.events import AuditEvent, EventType, ModelEvent
from modelregistry_server.metadata.domain.filter import Expr, OrderKey
from modelregistry_server.metadata.domain.governance import Approval, CheckReport, ProtectionRule
from modelregistry_server.metadata.domain.model import Model, ModelDraft
from modelregistry_server.metadata.domain.version import ManifestFile, ModelVersion, VersionDraft


class ModelRepository(Protocol):
    """Reads models outside a unit of work (writes go through ``UnitOfWork.models``)."""

    async def get(self, model_id: str) -> Model:
        """Return the model. Raises ``NotFound``."""
        ...

    async def list(
        self,
        filter_expr: Expr | None,
        order: Sequence[OrderKey],
        after: Cursor | None,
        limit: int,
        visible: Visibility | None = None,
    ) -> tuple[list[Model], Cursor | None]:
        """Return up to ``limit`` models matching the filter in ``order``, strictly after the
        keyset position ``after``, and the position of the last one if more follow; only
        the models ``visible`` allows (None: every model).

        Raises:
            InvalidArgument: ``after`` does not fit ``order`` (a tampered page token).
        """
        ...


class SecretStore(Protocol):
    """Holds the server-wide secrets every replica must share."""

    async def page_token_secret(self) -> bytes:
        """Return the page-token signing secret, creating it on first use."""
        ...


@dataclass(frozen=True)
class AliasRecord:
    """Where an alias points."""

    model_id: str
    alias: str
    version: int
    update_time: datetime
    updated_by: str


class VersionRepository(Protocol):
    """Reads versions and aliases outside a unit of work (resolve, get, list)."""

    async def get(self, model_id: str, version: int) -> ModelVersion:
        """Return a version in any state. Raises ``NotFound``."""
        ...

    async def get_by_uid(self, uid: str) -> ModelVersion | None:
        """Return the version with that uid (any state), if any."""
        ...

    async def list_versions(
        self,
        model_id: str | None,
        filter_expr: Expr | None,
        order: Sequence[OrderKey],
        after: Cursor | None,
        limit: int,
        show_deleted: bool,
        visible: Visibility | None = None,
    ) -> tuple[list[ModelVersion], Cursor | None]:
        """Return up to ``limit`` versions matching the filter, in ``order``, strictly after
        the keyset cursor ``after``; also the cursor of the last row if more follow. Only
        versions of models ``visible`` allows (None: every model).

        Raises:
            InvalidArgument: ``after`` does not fit ``order`` (a tampered page token).
        """
        ...

    async def get_latest_ready(self, model_id: str, as_of: datetime | None) -> ModelVersion | None:
        """The newest READY version (as of a time), if any, read in one statement."""
        ...

    async def get_by_alias(
        self, model_id: str, alias: str, as_of: datetime | None
    ) -> ModelVersion | None:
        """The version an alias points at (or pointed at, at ``as_of``), in one statement.

        The version is returned in its current state (it may be DELETED by now).
        """
        ...

    async def list_aliases(
        self, model_id: str, after: Cursor | None, limit: int
    ) -> tuple[list[AliasRecord], Cursor | None]:
        """Aliases of a model in name order. Raises ``NotFound`` for a missing model."""
        ...

    async def referenced(self, sha256s: Sequence[str]) -> set[str]:
        """Return the digests a non-deleted version references."""
        ...


# ---------------------------------------------------------------- the unit of work


class ModelStore(Protocol):
    """Model rows inside a unit of work."""

    async def lock(self, model_id: str) -> Model | None:
        """Return the model, locked against concurrent writers until the unit ends."""
        ...

    async def insert(self, model_id: str, draft: ModelDraft) -> Model | None:
        """Insert a model; None when the name is taken."""
        ...

    async def update(self, model_id: str, draft: ModelDraft, fields: frozenset[str]) -> Model:
        """Overwrite ``fields`` from ``draft`` with a new etag; return the new state."""
        ...

    async def delete(self, model_id: str) -> None:
        """Delete the model with all its versions and aliases."""
        ...

    async def count_live_versions(self, model_id: str) -> int:
        """How many of its versions are not DELETED."""
        ...


class VersionStore(Protocol):
    """Version rows inside a unit of work."""

    async def lock(self, model_id: str, version: int) -> ModelVersion | None:
        """Return the version in any state, locked until the unit ends."""
        ...

    async def latest_number(self, model_id: str) -> int | None:
        """The highest version number the model has allocated, if any."""
        ...

    async def insert(self, model_id: str, draft: VersionDraft, actor: str) -> ModelVersion | None:
        """Insert a PENDING version with the model's next number; None if no such model.

        Numbers are allocated race-free: concurrent inserts on one model queue.
        """
        ...

    async def update(
        self, model_id: str, version: int, draft: VersionDraft, fields: frozenset[str]
    ) -> ModelVersion:
        """Overwrite ``fields`` from ``draft`` with a new etag; return the new state."""
        ...

    async def mark_ready(
        self, model_id: str, version: int, files: Sequence[ManifestFile]
    ) -> ModelVersion:
        """Store the manifest (and which blobs it references) and set state READY."""
        ...

    async def mark_deleted(self, model_id: str, version: int) -> ModelVersion:
        """Set state DELETED (the version's blobs stop counting as referenced)."""
        ...

    async def mark_failed(self, model_id: str, version: int) -> ModelVersion:
        """Set state FAILED."""
        ...

    async def stale_pending(self, created_before: datetime) -> list[ModelVersion]:
        """PENDING versions created before the time, locked."""
        ...


class GovernanceStore(Protocol):
    """Check reports, protection rules and approvals, in the unit of work's transaction."""

    async def add_check(self, report: CheckReport) -> CheckReport:
        """Store a report; return it with its time."""
        ...

    async def checks(self, model_id: str, version: int, every: bool) -> list[CheckReport]:
        """The latest report per check name (by name), or every report (newest first)."""
        ...

    async def latest_checks_of(self, model_id: str, versions: Sequence[int]) -> list[CheckReport]:
        """The latest report per check name of each of ``versions`` that exists and is not
        DELETED, by version, then name."""
        ...

    async def put_rule(self, rule: ProtectionRule, actor: str) -> ProtectionRule:
        """Create or replace a rule."""
        ...

    async def get_rule(self, scope: str, alias: str) -> ProtectionRule | None:
        """One rule, or None."""
        ...

    async def rules(self, alias: str | None = None) -> list[ProtectionRule]:
        """Every rule, or those of one alias name (share-locked until the transaction ends)."""
        ...

    async def delete_rule(self, scope: str, alias: str) -> ProtectionRule | None:
        """Delete a rule; return what it was, or None."""
        ...

    async def approve(self, approval: Approval) -> Approval:
        """Record (or replace) an approval."""
        ...

    async def withdraw(self, model_id: str, version: int, alias: str, approver: str) -> bool:
        """Delete an approval; False if there was none."""
        ...

    async def approvals(self, model_id: str, version: int) -> list[Approval]:
        """The approvals in force of a version, oldest first."""
        ...

    async def aliases_held(self, model_id: str, version: int) -> set[str]:
        """Every alias the version ever held."""
        ...

    async def held_since(self, model_id: str, alias: str, version: int, since: datetime) -> bool:
        """Whether the version held the alias at some moment since ``since``."""
        ...


class AliasStore(Protocol):
    """Aliases and their history inside a unit of work."""

    async def lock(self, model_id: str, alias: str) -> AliasRecord | None:
        """Where the alias points now, locked until the unit ends; None if it does not exist."""
        ...

    async def put(self, model_id: str, alias: str, version: int, actor: str) -> AliasRecord:
        """Point the alias at ``version`` and record the move in its history."""
        ...

    async def count_locked(self, model_id: str) -> int:
        """How many aliases the model has, counted under a per-model lock held until the unit
        ends: units that add aliases to one model count one after the other."""
        ...

    async def remove(self, model_id: str, alias: str, actor: str) -> int | None:
        """Remove the alias, recording it; return the version it pointed at (None: no alias)."""
        ...

    async def remove_all_of(self, model_id: str, version: int, actor: str) -> list[str]:
        """Remove every alias pointing at ``version``, recording each; return their names."""
        ...


class BlobLocks(Protocol):
    """Per-digest locks that keep commits and garbage collection of a blob apart."""

    async def lock_shared(self, sha256s: Sequence[str]) -> None:
        """Lock digests shared (a commit referencing them), in an order that cannot deadlock."""
        ...

    async def lock_exclusive(self, sha256: str) -> None:
        """Lock a digest exclusively (GC about to delete it)."""
        ...

    async def is_referenced(self, sha256: str) -> bool:
        """Whether a non-deleted version references the digest (read under the lock)."""
        ...


class UnitOfWork(Protocol):
    """One transaction: the stores read and write in it; nothing is visible before it ends.

    The audit row, the change event and the request-id record of a mutation are written in
    the same transaction as the change, so a change is never visible without its record and a
    crash leaves neither. Leaving the ``async with`` block normally commits; an exception
    rolls everything back.
    """

    @property
    def models(self) -> ModelStore:
        """Model rows."""
        ...

    @property
    def versions(self) -> VersionStore:
        """Version rows."""
        ...

    @property
    def aliases(self) -> AliasStore:
        """Aliases and their history."""
        ...

    @property
    def blobs(self) -> BlobLocks:
        """Per-digest locks against garbage collection."""
        ...

    @property
    def governance(self) -> GovernanceStore:
        """Check reports, protection rules and approvals."""
        ...

    async def claim_request(self, request_id: str | None, method: str, resource: str) -> bool:
        """Record ``request_id``; False means this is a replay of an earlier call.

        Raises:
            InvalidArgument: ``request_id`` was used for another method or resource.
        """
        ...

    async def audit(self, entry: AuditEntry) -> None:
        """Append to the audit log."""
        ...

    async def emit(
        self, kind: EventType, model_id: str, version: int | None, alias: str | None, actor: str
    ) -> None:
        """Append a change event; watchers see it once the unit commits."""
        ...

    async def notify_model_changed(self, model_id: str) -> None:
        """Tell other replicas (on commit) that cached answers about the model are stale."""
        ...


class UnitOfWorkFactory(Protocol):
    """Opens a unit of work: ``async with uow() as unit: ...``."""

    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """Return a new unit of work, begun on entry."""
        ...


class BlobChecker(Protocol):
    """Talks to the ArtifactService (metadata never touches blob storage itself)."""

    async def missing(self, files: Sequence[ManifestFile]) -> list[ManifestFile]:
        """Return the files whose digest is not stored with exactly that size."""
        ...

    async def list_blobs(self, created_before: datetime) -> list[tuple[str, int]]:
        """Return ``(sha256, size)`` of every blob created before the given time."""
        ...

    async def delete_blob(self, sha256: str) -> None:
        """Delete a blob (a missing blob is not an error)."""
        ...

    async def size_of(self, sha256: str) -> int | None:
        """The size of a stored blob, None if it is not stored."""
        ...


@dataclass(frozen=True)
class AuditQuery:
    """Which audit events to list."""

    model_id: str | None
    start: datetime | None
    end: datetime | None
    actor: str | None
    descending: bool
    method: str | None = None


class AuditLog(AuditChainStore, Protocol):
    """Reads the audit log (writes happen inside each mutation's transaction) and its chain."""

    async def list(
        self, query: AuditQuery, after: Cursor | None, limit: int, visible: Visibility | None = None
    ) -> tuple[list[AuditEvent], Cursor | None]:
        """Return events in time order (then id), strictly after the keyset position, and the
        position of the last one if more follow.

        Raises:
            InvalidArgument: ``after`` is not a position this listing made (a tampered token).
        """
        ...


class EventFeed(Protocol):
    """The change-event log plus a wake-up when new events are committed (on any replica)."""

    async def latest_id(self) -> int:
        """The id of the newest event (0 when there is none)."""
        ...

    async def after(
        self, after_id: int, model_id: str | None, types: frozenset[EventType], limit: int
    ) -> list[ModelEvent]:
        """Events with id > ``after_id`` in id order."""
        ...

    async def wait(self, seen_generation: int, max_wait_s: float) -> int:
        """Wait until an event newer than ``seen_generation`` may exist; return the new one."""
        ...

    def generation(self) -> int:
        """A counter bumped on every notification; read it before querying."""
        ...

    async def pruned_through(self) -> int:
        """The highest event id housekeeping deleted (0: none). Events are deleted oldest id
        first, so every event above it is still there."""
        ...


class RetentionStore(Protocol):
    """Deletes what is past its retention, a bounded batch per call (oldest first)."""

    async def prune_events(self, older_than: timedelta, limit: int) -> int:
        """Delete up to ``limit`` of the oldest change events older than ``older_than``, a
        prefix of the ids (up to the first younger one), and advance ``pruned_through``;
        return how many were deleted."""
        ...

    async def prune_request_ids(self, older_than: timedelta, limit: int) -> int:
        """Delete up to ``limit`` request-id records older than ``older_than``; return how
        many were deleted."""
        ...


class JobGate(Protocol):
    """Lets one replica at a time run a scheduled job, once per interval across replicas."""

    def turn(
        self, job: str, interval: timedelta, *, force: bool = False
    ) -> AbstractAsyncContextManager[bool]:
        """Enter with True when this replica runs ``job`` now: no other replica is running it
        (it stays locked until the block ends) and its last run, on any replica, is at least
        ``interval`` ago (or ``force``). The run is recorded only if the block ends without an
        error."""
        ...


class ChangeListener(Protocol):
    """Told by the event feed about committed changes on any replica, and about the feed itself.

    Callbacks run synchronously on the event loop and must not block.
    """

    def feed_connected(self) -> None:
        """Notifications flow from now on: every change committed after this call is reported."""
        ...

    def feed_lost(self) -> None:
        """The notification connection is gone: changes may go unreported until reconnected."""
        ...

    def model_changed(self, model_id: str | None) -> None:
        """Something about ``model_id`` changed (``None``: unknown which model)."""
        ...
