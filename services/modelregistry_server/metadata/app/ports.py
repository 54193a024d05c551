"""The ports the metadata use cases depend on, as ``typing.Protocol`` classes named by role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from modelregistry_server.metadata.domain.events import AuditEvent, EventType, ModelEvent
from modelregistry_server.metadata.domain.filter import Expr, OrderKey
from modelregistry_server.metadata.domain.model import Model, ModelDraft
from modelregistry_server.metadata.domain.version import ManifestFile, ModelVersion, VersionDraft

ModelSortField = Literal["name", "create_time", "update_time"]


@dataclass(frozen=True)
class ModelOrdering:
    """How a model listing is sorted; ``model_id`` breaks ties so the order is total."""

    field: ModelSortField = "name"
    descending: bool = False


@dataclass(frozen=True)
class ModelCursor:
    """The keyset position after which the next page starts."""

    sort_value: str | datetime
    model_id: str


class ModelRepository(Protocol):
    """Stores models. Every method is one transaction."""

    async def create(
        self, model_id: str, draft: ModelDraft, request_id: str | None, actor: str = ""
    ) -> Model:
        """Insert a model; a replay of ``request_id`` returns the model it created.

        Raises:
            AlreadyExists: ``model_id`` is taken (and this is not a replay).
        """
        ...

    async def get(self, model_id: str) -> Model:
        """Return the model. Raises ``NotFound``."""
        ...

    async def list(
        self,
        ordering: ModelOrdering,
        after: ModelCursor | None,
        limit: int,
        filter_expr: Expr | None = None,
    ) -> list[Model]:
        """Return up to ``limit`` models matching the filter in ``ordering``, after ``after``."""
        ...

    async def update(
        self,
        model_id: str,
        draft: ModelDraft,
        fields: frozenset[str],
        expected_etag: str,
        request_id: str | None,
        actor: str = "",
    ) -> Model:
        """Overwrite ``fields`` from ``draft``; an empty ``expected_etag`` skips the check.

        A replay of ``request_id`` changes nothing and returns the model's current state.

        Raises:
            NotFound: No such model.
            EtagMismatch: ``expected_etag`` is not the current etag.
        """
        ...

    async def delete(
        self,
        model_id: str,
        expected_etag: str,
        request_id: str | None,
        force: bool = False,
        actor: str = "",
    ) -> None:
        """Delete the model. Raises ``NotFound`` or ``EtagMismatch``.

        A replay of ``request_id`` succeeds without doing anything.
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
    """Stores versions and aliases. Every mutating method is one transaction that also writes
    its audit event (and change event) — a change is never visible without its record."""

    async def create(
        self, model_id: str, draft: VersionDraft, actor: str, request_id: str | None
    ) -> ModelVersion:
        """Insert a PENDING version with the model's next number."""
        ...

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
        after: Sequence[object] | None,
        limit: int,
        show_deleted: bool,
    ) -> tuple[list[ModelVersion], list[object] | None]:
        """Return up to ``limit`` versions matching the filter, in ``order``, strictly after
        the keyset cursor ``after``; also the cursor of the last row returned (None if none).

        Raises:
            InvalidArgument: ``after`` does not fit ``order`` (a tampered page token).
        """
        ...

    async def update(
        self,
        model_id: str,
        version: int,
        draft: VersionDraft,
        fields: frozenset[str],
        expected_etag: str,
        actor: str,
        request_id: str | None,
    ) -> ModelVersion:
        """Overwrite ``fields``; READY versions accept only description and labels."""
        ...

    async def delete(
        self, model_id: str, version: int, expected_etag: str, actor: str, request_id: str | None
    ) -> ModelVersion:
        """Soft-delete: state DELETED, its aliases removed (and recorded as removed)."""
        ...

    async def commit(
        self,
        model_id: str,
        version: int,
        files: Sequence[ManifestFile],
        expected_etag: str,
        actor: str,
        request_id: str | None,
        verify: Callable[[Sequence[ManifestFile]], Awaitable[None]],
    ) -> ModelVersion:
        """PENDING → READY with this manifest. A replay of ``request_id`` returns the version.

        ``verify`` (which checks the blobs exist) runs inside the transaction while the
        manifest's digests are locked against garbage collection, so a blob cannot be deleted
        between the check and the commit.
        """
        ...

    async def expire_pending(self, created_before: datetime, dry_run: bool, actor: str) -> int:
        """Move PENDING versions created before the time to FAILED; return how many."""
        ...

    async def delete_blob_if_unreferenced(
        self, sha256: str, delete: Callable[[str], Awaitable[None]]
    ) -> bool:
        """Delete a blob via ``delete`` unless a live version references it.

        The reference check and the deletion happen under the digest's lock, the same lock a
        commit takes, so GC and commits of that digest never interleave.
        """
        ...

    async def referenced(self, sha256s: Sequence[str]) -> set[str]:
        """Return the digests a non-deleted version references."""
        ...

    async def record_gc(
        self, actor: str, summary: Mapping[str, object], request_id: str | None = None
    ) -> None:
        """Write the audit event of a garbage-collection run (with its ``request_id``)."""
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

    async def set_alias(
        self,
        model_id: str,
        alias: str,
        version: int,
        expected_version: int | None,
        actor: str,
        request_id: str | None,
    ) -> AliasRecord:
        """Point ``alias`` at a READY version, recording the move."""
        ...

    async def delete_alias(
        self, model_id: str, alias: str, actor: str, request_id: str | None
    ) -> None:
        """Remove an alias, recording the removal."""
        ...

    async def list_aliases(self, model_id: str, after: str, limit: int) -> list[AliasRecord]:
        """Aliases of a model in name order."""
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


@dataclass(frozen=True)
class AuditQuery:
    """Which audit events to list."""

    model_id: str | None
    start: datetime | None
    end: datetime | None
    actor: str | None
    descending: bool


class AuditLog(Protocol):
    """Reads the audit log (writes happen inside each mutation's transaction)."""

    async def list(
        self, query: AuditQuery, after: tuple[datetime, int] | None, limit: int
    ) -> list[AuditEvent]:
        """Return events in time order (then id), strictly after the keyset position."""
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
