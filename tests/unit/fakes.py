"""In-memory fakes of the metadata ports, for unit tests of the use cases without PostgreSQL.

``InMemoryRegistry`` is the whole metadata state. Its ``uow`` opens a unit of work that
snapshots the state and restores it if the block raises, as a rolled-back transaction would;
the read repositories look at the same state. A fake clock ticks one second per write.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.errors import InvalidArgument
from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.common.kernel.paging import Cursor, invalid_page_token, split_page
from modelregistry_server.metadata.app.ports import AliasRecord, UnitOfWork
from modelregistry_server.metadata.domain.errors import not_found
from modelregistry_server.metadata.domain.events import EventType
from modelregistry_server.metadata.domain.filter import Expr, OrderKey
from modelregistry_server.metadata.domain.model import Model, ModelDraft
from modelregistry_server.metadata.domain.version import (
    ManifestFile,
    ModelVersion,
    VersionDraft,
    VersionState,
    version_name,
)
from tests.unit.governance_fakes import InMemoryGovernance

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclasses.dataclass
class _State:
    models: dict[str, Model] = dataclasses.field(default_factory=dict)
    next_version: dict[str, int] = dataclasses.field(default_factory=dict)
    versions: dict[tuple[str, int], ModelVersion] = dataclasses.field(default_factory=dict)
    aliases: dict[tuple[str, str], AliasRecord] = dataclasses.field(default_factory=dict)
    alias_history: list[tuple[str, str, int | None]] = dataclasses.field(default_factory=list)
    requests: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    audit: list[AuditEntry] = dataclasses.field(default_factory=list)
    events: list[tuple[EventType, str, int | None, str | None]] = dataclasses.field(
        default_factory=list
    )
    notified: list[str] = dataclasses.field(default_factory=list)
    governance: dict[str, list[object]] = dataclasses.field(default_factory=dict)

    def copy(self) -> _State:
        return _State(**{f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)})


def _copy(value: Any) -> Any:
    # Values are frozen dataclasses or tuples: a copy of the container is a snapshot.
    if isinstance(value, dict):
        return {k: list(v) if isinstance(v, list) else v for k, v in value.items()}
    return list(value)


class InMemoryRegistry:
    """The metadata state, its unit of work (``uow``) and what each write recorded."""

    def __init__(self) -> None:
        self.state = _State()
        self.units = 0  # units of work opened
        self._now = T0
        self._etags = 0

    def tick(self) -> tuple[datetime, str]:
        """Advance the clock one second and hand out a new etag."""
        self._now += timedelta(seconds=1)
        self._etags += 1
        return self._now, f"e{self._etags}"

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: changes stay if the block ends normally, vanish if it raises."""
        self.units += 1
        snapshot = self.state.copy()
        try:
            yield InMemoryUnitOfWork(self)
        except BaseException:
            self.state = snapshot
            raise

    # ------------------------------------------------------------ helpers for tests

    def with_aliases(self, version: ModelVersion) -> ModelVersion:
        """The version with the aliases pointing at it now."""
        names = sorted(
            alias
            for (model_id, alias), record in self.state.aliases.items()
            if (model_id, record.version) == (version.model_id, version.version)
        )
        return dataclasses.replace(version, aliases=tuple(names))

    def put_model(self, model_id: str) -> Model:
        """Store a model directly (set-up)."""
        now, etag = self.tick()
        model = Model(model_id, str(uuid.uuid4()), "", {}, "", now, now, etag)
        self.state.models[model_id] = model
        self.state.next_version.setdefault(model_id, 1)
        return model

    def put_version(self, version: ModelVersion) -> None:
        """Store a version directly (set-up); its model is created if missing."""
        if version.model_id not in self.state.models:
            self.put_model(version.model_id)
        self.state.versions[version.model_id, version.version] = version
        next_number = max(self.state.next_version[version.model_id], version.version + 1)
        self.state.next_version[version.model_id] = next_number

    def point(self, model_id: str, alias: str, version: int) -> None:
        """Point an alias directly (set-up, or "another replica moved it")."""
        self.state.aliases[model_id, alias] = AliasRecord(model_id, alias, version, T0, "test")


class InMemoryUnitOfWork:
    """``UnitOfWork`` over the registry's state; the stores are this object itself."""

    def __init__(self, registry: InMemoryRegistry) -> None:
        self._registry = registry
        self.models = _ModelStore(registry)
        self.versions = _VersionStore(registry)
        self.aliases = _AliasStore(registry)
        self.blobs = _BlobLocks(registry)
        self.governance = InMemoryGovernance(registry)

    async def claim_request(self, request_id: str | None, method: str, resource: str) -> bool:
        if request_id is None:
            return True
        requests = self._registry.state.requests
        if request_id not in requests:
            requests[request_id] = (method, resource)
            return True
        if requests[request_id] != (method, resource):
            raise InvalidArgument("request_id", "was already used for another call")
        return False

    async def audit(self, entry: AuditEntry) -> None:
        self._registry.state.audit.append(entry)

    async def emit(
        self, kind: EventType, model_id: str, version: int | None, alias: str | None, actor: str
    ) -> None:
        self._registry.state.events.append((kind, model_id, version, alias))

    async def notify_model_changed(self, model_id: str) -> None:
        self._registry.state.notified.append(model_id)


class _ModelStore:
    def __init__(self, registry: InMemoryRegistry) -> None:
        self._r = registry

    async def lock(self, model_id: str) -> Model | None:
        return self._r.state.models.get(model_id)

    async def insert(self, model_id: str, draft: ModelDraft) -> Model | None:
        if model_id in self._r.state.models:
            return None
        now, etag = self._r.tick()
        model = Model(
            model_id, str(uuid.uuid4()), draft.description, dict(draft.labels), draft.owner,
            now, now, etag,
        )  # fmt: skip
        self._r.state.models[model_id] = model
        self._r.state.next_version[model_id] = 1
        return model

    async def update(self, model_id: str, draft: ModelDraft, fields: frozenset[str]) -> Model:
        now, etag = self._r.tick()
        changes = {f: getattr(draft, f) for f in fields}
        model = self._r.state.models[model_id]
        updated = dataclasses.replace(model, update_time=now, etag=etag, **changes)
        self._r.state.models[model_id] = updated
        return updated

    async def delete(self, model_id: str) -> None:
        state = self._r.state
        del state.models[model_id]
        state.versions = {k: v for k, v in state.versions.items() if k[0] != model_id}
        state.aliases = {k: v for k, v in state.aliases.items() if k[0] != model_id}

    async def count_live_versions(self, model_id: str) -> int:
        return sum(
            1
            for (m, _), v in self._r.state.versions.items()
            if m == model_id and v.state is not VersionState.DELETED
        )


class _VersionStore:
    def __init__(self, registry: InMemoryRegistry) -> None:
        self._r = registry

    def _write(self, model_id: str, number: int, **changes: Any) -> ModelVersion:
        now, etag = self._r.tick()
        current = self._r.state.versions[model_id, number]
        updated = dataclasses.replace(current, update_time=now, etag=etag, **changes)
        self._r.state.versions[model_id, number] = updated
        return self._r.with_aliases(updated)

    async def lock(self, model_id: str, version: int) -> ModelVersion | None:
        found = self._r.state.versions.get((model_id, version))
        return None if found is None else self._r.with_aliases(found)

    async def latest_number(self, model_id: str) -> int | None:
        numbers = [n for (m, n) in self._r.state.versions if m == model_id]
        return max(numbers) if numbers else None

    async def insert(self, model_id: str, draft: VersionDraft, actor: str) -> ModelVersion | None:
        if model_id not in self._r.state.models:
            return None
        number = self._r.state.next_version[model_id]
        self._r.state.next_version[model_id] = number + 1
        now, etag = self._r.tick()
        version = ModelVersion(
            model_id, number, str(uuid.uuid4()), VersionState.PENDING, draft, (), (), actor,
            now, now, None, etag,
        )  # fmt: skip
        self._r.state.versions[model_id, number] = version
        return version

    async def update(
        self, model_id: str, version: int, draft: VersionDraft, fields: frozenset[str]
    ) -> ModelVersion:
        current = self._r.state.versions[model_id, version].draft
        merged = dataclasses.replace(current, **{f: getattr(draft, f) for f in fields})
        return self._write(model_id, version, draft=merged)

    async def mark_ready(
        self, model_id: str, version: int, files: Sequence[ManifestFile]
    ) -> ModelVersion:
        now, _ = self._r.tick()
        return self._write(
            model_id, version, state=VersionState.READY, files=tuple(files), ready_time=now
        )

    async def mark_deleted(self, model_id: str, version: int) -> ModelVersion:
        return self._write(model_id, version, state=VersionState.DELETED)

    async def mark_failed(self, model_id: str, version: int) -> ModelVersion:
        return self._write(model_id, version, state=VersionState.FAILED)

    async def stale_pending(self, created_before: datetime) -> list[ModelVersion]:
        return [
            v
            for v in self._r.state.versions.values()
            if v.state is VersionState.PENDING and v.create_time < created_before
        ]


class _AliasStore:
    def __init__(self, registry: InMemoryRegistry) -> None:
        self._r = registry

    async def lock(self, model_id: str, alias: str) -> AliasRecord | None:
        return self._r.state.aliases.get((model_id, alias))

    async def put(self, model_id: str, alias: str, version: int, actor: str) -> AliasRecord:
        now, _ = self._r.tick()
        record = AliasRecord(model_id, alias, version, now, actor)
        self._r.state.aliases[model_id, alias] = record
        self._r.state.alias_history.append((model_id, alias, version))
        return record

    async def count_locked(self, model_id: str) -> int:
        return sum(1 for m, _ in self._r.state.aliases if m == model_id)

    async def remove(self, model_id: str, alias: str, actor: str) -> int | None:
        record = self._r.state.aliases.pop((model_id, alias), None)
        if record is None:
            return None
        self._r.state.alias_history.append((model_id, alias, None))
        return record.version

    async def remove_all_of(self, model_id: str, version: int, actor: str) -> list[str]:
        names = sorted(
            a
            for (m, a), r in self._r.state.aliases.items()
            if (m, r.version) == (model_id, version)
        )
        for name in names:
            await self.remove(model_id, name, actor)
        return names


class _BlobLocks:
    def __init__(self, registry: InMemoryRegistry) -> None:
        self._r = registry
        self.shared: list[str] = []

    async def lock_shared(self, sha256s: Sequence[str]) -> None:
        self.shared.extend(sorted(set(sha256s)))

    async def lock_exclusive(self, sha256: str) -> None:
        return None

    async def is_referenced(self, sha256: str) -> bool:
        return any(
            f.sha256 == sha256
            for v in self._r.state.versions.values()
            if v.state is not VersionState.DELETED
            for f in v.files
        )


# ---------------------------------------------------------------- the read side


class InMemoryModelRepository:
    """``ModelRepository`` reading the registry's state (no filters: set-ups have none)."""

    def __init__(self, registry: InMemoryRegistry) -> None:
        self._r = registry

    async def get(self, model_id: str) -> Model:
        if model_id not in self._r.state.models:
            raise not_found("models/" + model_id)
        return self._r.state.models[model_id]

    async def list(
        self,
        filter_expr: Expr | None,
        order: Sequence[OrderKey],
        after: Cursor | None,
        limit: int,
        visible: Visibility | None = None,
    ) -> tuple[list[Model], Cursor | None]:
        assert filter_expr is None, "the in-memory fake does not evaluate filters"
        (first,) = order
        field = "model_id" if first.field.kind == "name" else first.field.kind

        def key(m: Model) -> list[Any]:
            value = getattr(m, field)
            return [value.isoformat() if isinstance(value, datetime) else value, m.model_id]

        rows = sorted(self._r.state.models.values(), key=key, reverse=first.descending)
        rows = [m for m in rows if visible is None or visible.allows(m.model_id)]
        if after is not None:
            if len(after) != 2:
                raise invalid_page_token("page_token does not fit this listing")
            rows = [r for r in rows if (key(r) < after if first.descending else key(r) > after)]
        return split_page(rows[: limit + 1], limit, key)


class InMemoryVersionRepository:
    """``VersionRepository`` reading the registry's state (newest first, no filters)."""

    def __init__(self, registry: InMemoryRegistry) -> None:
        self._r = registry

    async def get(self, model_id: str, version: int) -> ModelVersion:
        found = self._r.state.versions.get((model_id, version))
        if found is None:
            raise not_found(version_name(model_id, version))
        return self._r.with_aliases(found)

    async def get_by_uid(self, uid: str) -> ModelVersion | None:
        found = [v for v in self._r.state.versions.values() if v.uid == uid]
        return self._r.with_aliases(found[0]) if found else None

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
        assert filter_expr is None, "the in-memory fake does not evaluate filters"
        rows = sorted(
            (
                self._r.with_aliases(v)
                for (m, _), v in self._r.state.versions.items()
                if model_id in (None, m)
                and (show_deleted or v.state is not VersionState.DELETED)
                and (visible is None or visible.allows(m))
            ),
            key=lambda v: (v.version, v.model_id),
            reverse=True,
        )
        if after is not None:
            rows = [v for v in rows if [v.version, v.model_id] < after]
        return split_page(rows[: limit + 1], limit, lambda v: [v.version, v.model_id])

    async def get_latest_ready(self, model_id: str, as_of: datetime | None) -> ModelVersion | None:
        ready = [
            v
            for (m, _), v in self._r.state.versions.items()
            if m == model_id and v.state is VersionState.READY
        ]
        return self._r.with_aliases(max(ready, key=lambda v: v.version)) if ready else None

    async def get_by_alias(
        self, model_id: str, alias: str, as_of: datetime | None
    ) -> ModelVersion | None:
        record = self._r.state.aliases.get((model_id, alias))
        if record is None:
            return None
        return self._r.with_aliases(self._r.state.versions[model_id, record.version])

    async def list_aliases(
        self, model_id: str, after: Cursor | None, limit: int
    ) -> tuple[list[AliasRecord], Cursor | None]:
        if model_id not in self._r.state.models:
            raise not_found("models/" + model_id)
        start = "" if after is None else str(after[0])
        rows = sorted(
            (r for (m, a), r in self._r.state.aliases.items() if m == model_id and a > start),
            key=lambda r: r.alias,
        )
        return split_page(rows[: limit + 1], limit, lambda r: [r.alias])

    async def referenced(self, sha256s: Sequence[str]) -> set[str]:
        wanted = set(sha256s)
        return {
            f.sha256
            for v in self._r.state.versions.values()
            if v.state is not VersionState.DELETED
            for f in v.files
            if f.sha256 in wanted
        }


class FakeBlobChecker:
    """``BlobChecker``: the artifact service as a set of stored ``(sha256, size)``."""

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}
        self.deleted: list[str] = []
        self.checked: list[list[str]] = []

    async def missing(self, files: Sequence[ManifestFile]) -> list[ManifestFile]:
        self.checked.append([f.sha256 for f in files])
        return [f for f in files if self.stored.get(f.sha256) != f.size]

    async def list_blobs(self, created_before: datetime) -> list[tuple[str, int]]:
        return sorted(self.stored.items())

    async def delete_blob(self, sha256: str) -> None:
        self.stored.pop(sha256, None)
        self.deleted.append(sha256)

    async def size_of(self, sha256: str) -> int | None:
        return self.stored.get(sha256)
