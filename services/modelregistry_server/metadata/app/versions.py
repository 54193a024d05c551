"""Use cases for versions and aliases: create, commit, resolve, update, delete, alias moves.

Each mutation opens one unit of work, loads what it changes (locked), asks the lifecycle rule
in ``domain.lifecycle``, writes, and records its audit row and change event in the same unit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.common.kernel.paging import Page, Paginator
from modelregistry_server.common.kernel.request_ids import validate_request_id
from modelregistry_server.metadata.app.governance import gate
from modelregistry_server.metadata.app.ports import (
    AliasRecord,
    BlobChecker,
    ModelRepository,
    UnitOfWork,
    UnitOfWorkFactory,
    VersionRepository,
)
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from modelregistry_server.metadata.domain import lifecycle
from modelregistry_server.metadata.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    not_found,
)
from modelregistry_server.metadata.domain.events import EventType
from modelregistry_server.metadata.domain.filter import (
    FieldRef,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from modelregistry_server.metadata.domain.model import MODEL_NAME_PREFIX, parse_model_name
from modelregistry_server.metadata.domain.version import (
    UPDATABLE_VERSION_FIELDS,
    ManifestFile,
    ModelVersion,
    VersionDraft,
    VersionState,
    parse_alias_name,
    parse_ref,
    parse_version_name,
    validate_alias,
    validate_alias_count,
    validate_manifest,
    validate_version_draft,
    version_name,
)

ALL_MODELS = "models/-"
# Newest first; ties (across models) broken by model and version.
DEFAULT_VERSION_ORDER = [OrderKey(FieldRef("version"), descending=True)]


class VersionService:
    """Version and alias use cases; the artifact service is reached through ``BlobChecker``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        repository: VersionRepository,
        models: ModelRepository,
        blobs: BlobChecker,
        paginator: Paginator,
        resolve_cache: ResolveCache | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_ready: Callable[[ModelVersion], None] | None = None,
    ) -> None:
        self._uow = uow
        # Called with each version just committed READY (after its transaction): the
        # background file scan (ModelScanner.schedule). It must not wait.
        self._on_ready = on_ready
        self._clock = clock
        self._repository = repository
        # Only read when a resolve finds nothing: to say "models/x not found" when it is the
        # model that is missing, not the alias or version.
        self._models = models
        self._blobs = blobs
        self._paginator = paginator
        # Shared with ModelService; fed by the event feed. None: every resolve reads the database.
        self._cache = resolve_cache

    def _changed(self, model_id: str) -> None:
        """Drop this process's cached resolves of ``model_id`` after a write to it.

        Called whether the write succeeded or not (a failure may come after the commit, and a
        needless invalidation costs one query), and synchronously, before the write's reply:
        a caller that resolves right after its own write never sees the old answer, without
        waiting for the NOTIFY to come back.
        """
        if self._cache is not None:
            self._cache.invalidate_model(model_id)

    async def create_version(
        self, parent: str, draft: VersionDraft, actor: str, request_id: str = ""
    ) -> ModelVersion:
        """Create a PENDING version with the next number of ``parent``'s model."""
        model_id = parse_model_name(parent, "parent")
        validate_version_draft(draft)
        request = validate_request_id(request_id)
        resource = MODEL_NAME_PREFIX + model_id
        async with self._uow() as uow:
            if not await uow.claim_request(request, "CreateModelVersion", resource):
                # The replay returns the version the first call created (the newest by then).
                return await _locked(uow, model_id, await uow.versions.latest_number(model_id))
            created = await uow.versions.insert(model_id, draft, actor)
            if created is None:
                raise not_found(resource)
            await uow.audit(
                AuditEntry(
                    actor, "CreateModelVersion", created.name, model_id, None,
                    lifecycle.version_summary(created), request,
                )
            )  # fmt: skip
            return created

    async def get_version(self, name: str) -> ModelVersion:
        """Return a version by resource name, in any state."""
        return await self._repository.get(*parse_version_name(name))

    async def list_versions(
        self,
        parent: str,
        page_size: int,
        page_token: str,
        filter_: str = "",
        order_by: str = "",
        show_deleted: bool = False,
        visible: Visibility | None = None,
    ) -> Page[ModelVersion]:
        """Return one page of versions, newest first (only of models ``visible`` allows)."""
        model_id = None if parent == ALL_MODELS else parse_model_name(parent, "parent")
        expr = parse_filter(filter_, "version")
        order = parse_order_by(order_by, "version") or DEFAULT_VERSION_ORDER
        # The token is bound to everything but page_size: a different query cannot reuse it.
        page = self._paginator.open(
            "ListModelVersions", page_size, page_token, parent, str(show_deleted),
            repr(expr), repr(order),
        )  # fmt: skip
        rows, cursor = await self._repository.list_versions(
            model_id, expr, order, page.after, page.limit, show_deleted, visible
        )
        return self._paginator.page(page, rows, cursor)

    async def update_version(
        self,
        name: str,
        draft: VersionDraft,
        update_mask: list[str],
        etag: str,
        actor: str,
        request_id: str = "",
    ) -> ModelVersion:
        """Apply ``update_mask`` (all updatable fields when empty)."""
        model_id, number = parse_version_name(name, "model_version.name")
        fields = frozenset(update_mask) if update_mask else UPDATABLE_VERSION_FIELDS
        unknown = fields - UPDATABLE_VERSION_FIELDS
        if unknown:
            raise InvalidArgument(
                "update_mask",
                f"cannot update {', '.join(sorted(unknown))}; updatable fields are "
                f"{', '.join(sorted(UPDATABLE_VERSION_FIELDS))}",
            )
        validate_version_draft(draft)
        request = validate_request_id(request_id)
        try:
            async with self._uow() as uow:
                current = await _locked(uow, model_id, number)
                if not await uow.claim_request(request, "UpdateModelVersion", current.name):
                    return current
                lifecycle.check_update(current, fields, etag)
                updated = await uow.versions.update(model_id, number, draft, fields)
                await uow.audit(
                    AuditEntry(
                        actor, "UpdateModelVersion", current.name, model_id,
                        lifecycle.version_summary(current), lifecycle.version_summary(updated),
                        request,
                    )
                )  # fmt: skip
                # Not a watchable event, but it changes what ResolveModelVersion returns:
                # other replicas drop their cached answers for this model when this commits.
                await uow.notify_model_changed(model_id)
                return updated
        finally:
            self._changed(model_id)

    async def delete_version(
        self, name: str, etag: str, actor: str, request_id: str = ""
    ) -> ModelVersion:
        """Soft-delete a version; its aliases go with it."""
        model_id, number = parse_version_name(name)
        request = validate_request_id(request_id)
        try:
            async with self._uow() as uow:
                current = await _locked(uow, model_id, number)
                if not await uow.claim_request(request, "DeleteModelVersion", current.name):
                    return current
                lifecycle.check_delete(current, etag)
                for alias in await uow.aliases.remove_all_of(model_id, number, actor):
                    await uow.emit(EventType.ALIAS_DELETED, model_id, number, alias, actor)
                deleted = await uow.versions.mark_deleted(model_id, number)
                await uow.audit(
                    AuditEntry(
                        actor, "DeleteModelVersion", current.name, model_id,
                        lifecycle.version_summary(current), lifecycle.version_summary(deleted),
                        request,
                    )
                )  # fmt: skip
                await uow.emit(EventType.VERSION_DELETED, model_id, number, None, actor)
                return deleted
        finally:
            self._changed(model_id)

    async def commit_version(
        self,
        name: str,
        files: list[ManifestFile],
        etag: str,
        actor: str,
        request_id: str = "",
    ) -> ModelVersion:
        """Check every file's blob exists with its size, then flip PENDING → READY.

        The check runs inside the unit of work while the manifest's digests are locked
        against garbage collection, so a blob cannot be deleted between check and commit.
        """
        model_id, number = parse_version_name(name)
        request = validate_request_id(request_id)
        validate_manifest(files)
        try:
            async with self._uow() as uow:
                current = await _locked(uow, model_id, number)
                if not await uow.claim_request(request, "CommitModelVersion", current.name):
                    return current
                lifecycle.check_commit(current, etag)
                await uow.blobs.lock_shared([f.sha256 for f in files])
                missing = await self._blobs.missing(files)
                if missing:
                    raise lifecycle.missing_blobs_error((f.path, f.sha256, f.size) for f in missing)
                ready = await uow.versions.mark_ready(model_id, number, files)
                await uow.audit(
                    AuditEntry(
                        actor, "CommitModelVersion", current.name, model_id,
                        {"state": VersionState.PENDING.value}, lifecycle.version_summary(ready),
                        request,
                    )
                )  # fmt: skip
                await uow.emit(EventType.VERSION_READY, model_id, number, None, actor)
            if self._on_ready is not None:
                self._on_ready(ready)
            return ready
        finally:
            self._changed(model_id)  # a new READY version is the new "latest"

    async def resolve(self, ref: str, as_of: datetime | None = None) -> ModelVersion:
        """Resolve any accepted reference to a READY (or ARCHIVED) version with its manifest.

        Answers for "now" come from the resolve cache when it has them; ``as_of`` resolves
        (history, not what the cache holds) always read the database.
        """
        cache = self._cache if as_of is None else None
        if cache is None:
            return await self._resolve(ref, as_of)
        cached = cache.get(ref)
        if cached is not None:
            return cached
        epoch = cache.epoch()  # before the query: a change during it makes put() refuse
        version = await self._resolve(ref, None)
        cache.put(ref, version, epoch)
        return version

    async def _resolve(self, ref: str, as_of: datetime | None) -> ModelVersion:
        # One statement per reference form (the alias or "latest" lookup is a subquery).
        parsed = parse_ref(ref)
        model_id = parsed.model_id
        version: ModelVersion | None = None
        if parsed.uid_or_model is not None:
            version = await self._repository.get_by_uid(parsed.uid_or_model)
            # A UUID-shaped ref that is no version's uid may still be a model id.
            model_id = parsed.uid_or_model
        if version is None:
            version = await self._resolve_in_model(model_id, parsed.alias, parsed.number, as_of)
        if version.state is VersionState.DELETED:
            raise not_found(version.name)
        if version.state not in (VersionState.READY, VersionState.ARCHIVED):
            raise FailedPrecondition(
                f"{version.name} is {version.state.value}; only READY versions resolve",
                reason="VERSION_NOT_READY",
            )
        return version

    async def _resolve_in_model(
        self, model_id: str, alias: str | None, number: int | None, as_of: datetime | None
    ) -> ModelVersion:
        try:
            if alias is not None:
                version = await self._repository.get_by_alias(model_id, alias, as_of)
                if version is None:
                    when = f" at {as_of.isoformat()}" if as_of else ""
                    raise not_found(f"{MODEL_NAME_PREFIX}{model_id}/aliases/{alias}{when}")
                return version
            if number is not None:
                return await self._repository.get(model_id, number)
            version = await self._repository.get_latest_ready(model_id, as_of)
            if version is None:
                raise not_found(f"a READY version of {MODEL_NAME_PREFIX}{model_id}")
            return version
        except NotFound:
            await self._models.get(model_id)  # raises "models/<id> not found" if that is why
            raise

    async def set_alias(
        self,
        model: str,
        alias: str,
        version: str,
        expected_version: str,
        actor: str,
        request_id: str = "",
        subjects: frozenset[str] = frozenset(),
    ) -> AliasRecord:
        """Point ``alias`` at a READY version (compare-and-set with ``expected_version``).

        A protected alias moves only if the version satisfies its rule (``governance.gate``);
        ``subjects`` are the caller's groups as ``group:<name>``, for the rule's movers.
        """
        model_id = parse_model_name(model, "model")
        validate_alias(alias)
        target_model, number = parse_version_name(version, "version")
        if target_model != model_id:
            raise InvalidArgument(
                "version", f"{version_name(target_model, number)} is not a version of {model}"
            )
        expected = None
        if expected_version:
            expected_model, expected = parse_version_name(expected_version, "expected_version")
            if expected_model != model_id:
                raise InvalidArgument("expected_version", f"is not a version of {model}")
        request = validate_request_id(request_id)
        resource = lifecycle.alias_name(model_id, alias)
        try:
            async with self._uow() as uow:
                replay = not await uow.claim_request(request, "SetAlias", resource)
                target = await _locked(uow, model_id, number)
                current = await uow.aliases.lock(model_id, alias)
                if replay and current is not None:
                    return current
                lifecycle.check_alias_target(target)
                before = None if current is None else current.version
                lifecycle.check_alias_expected(model_id, alias, before, expected)
                promotion = None
                if before != number:  # not a no-op: a protected alias checks its rule
                    promotion = await gate(uow, target, alias, actor, subjects, self._clock())
                if current is None:  # a new alias: the model's count is capped
                    validate_alias_count(model_id, await uow.aliases.count_locked(model_id))
                moved = await uow.aliases.put(model_id, alias, number, actor)
                after: dict[str, object] = {"version": version_name(model_id, number)}
                if promotion is not None:  # a protected alias: GATED, or a ROLLBACK
                    after["promotion"] = promotion.value
                await uow.audit(
                    AuditEntry(
                        actor, "SetAlias", resource, model_id,
                        None if before is None else {"version": version_name(model_id, before)},
                        after, request,
                    )
                )  # fmt: skip
                await uow.emit(EventType.ALIAS_MOVED, model_id, number, alias, actor)
                return moved
        finally:
            self._changed(model_id)

    async def delete_alias(self, name: str, actor: str, request_id: str = "") -> None:
        """Remove an alias."""
        model_id, alias = parse_alias_name(name)
        request = validate_request_id(request_id)
        resource = lifecycle.alias_name(model_id, alias)
        try:
            async with self._uow() as uow:
                if not await uow.claim_request(request, "DeleteAlias", resource):
                    return
                number = await uow.aliases.remove(model_id, alias, actor)
                if number is None:
                    raise not_found(resource)
                await uow.audit(
                    AuditEntry(
                        actor, "DeleteAlias", resource, model_id,
                        {"version": version_name(model_id, number)}, None, request,
                    )
                )  # fmt: skip
                await uow.emit(EventType.ALIAS_DELETED, model_id, number, alias, actor)
        finally:
            self._changed(model_id)

    async def list_aliases(self, parent: str, page_size: int, page_token: str) -> Page[AliasRecord]:
        """Aliases of a model, in name order."""
        model_id = parse_model_name(parent, "parent")
        page = self._paginator.open("ListAliases", page_size, page_token, parent)
        rows, cursor = await self._repository.list_aliases(model_id, page.after, page.limit)
        return self._paginator.page(page, rows, cursor)


async def _locked(uow: UnitOfWork, model_id: str, number: int | None) -> ModelVersion:
    """The version, locked in ``uow``; ``NotFound`` when there is none."""
    version = None if number is None else await uow.versions.lock(model_id, number)
    if version is None:
        raise not_found(version_name(model_id, number or 0))
    return version


__all__ = ["ALL_MODELS", "VersionService", "version_name"]
