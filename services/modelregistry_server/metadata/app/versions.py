"""Use cases for versions and aliases: create, commit, resolve, update, delete, alias moves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from modelregistry_server.common.page_token import PageTokenCodec, query_fingerprint
from modelregistry_server.common.paging import decode_page_token
from modelregistry_server.metadata.app.models import coerce_page_size, validate_request_id
from modelregistry_server.metadata.app.ports import (
    AliasRecord,
    BlobChecker,
    ModelRepository,
    VersionRepository,
)
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from modelregistry_server.metadata.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
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
    validate_manifest,
    validate_version_draft,
    version_name,
)

ALL_MODELS = "models/-"
# Newest first; ties (across models) broken by model and version.
DEFAULT_VERSION_ORDER = [OrderKey(FieldRef("version"), descending=True)]


@dataclass(frozen=True)
class VersionPage:
    """One page of versions and the token for the next one ("" at the end)."""

    versions: list[ModelVersion]
    next_page_token: str


class VersionService:
    """Version and alias use cases; the artifact service is reached through ``BlobChecker``."""

    def __init__(
        self,
        repository: VersionRepository,
        models: ModelRepository,
        blobs: BlobChecker,
        page_tokens: PageTokenCodec,
        resolve_cache: ResolveCache | None = None,
    ) -> None:
        self._repository = repository
        # Only read when a resolve finds nothing: to say "models/x not found" when it is the
        # model that is missing, not the alias or version.
        self._models = models
        self._blobs = blobs
        self._page_tokens = page_tokens
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
        return await self._repository.create(
            model_id, draft, actor, validate_request_id(request_id)
        )

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
    ) -> VersionPage:
        """Return one page of versions, newest first."""
        model_id = None if parent == ALL_MODELS else parse_model_name(parent, "parent")
        expr = parse_filter(filter_, "version")
        order = parse_order_by(order_by, "version") or DEFAULT_VERSION_ORDER
        limit = coerce_page_size(page_size)
        # The token is bound to everything but page_size: a different query cannot reuse it.
        fingerprint = query_fingerprint(
            "ListModelVersions", parent, str(show_deleted), repr(expr), repr(order)
        )
        # The key is the repository's own cursor; it checks the key's shape itself.
        after = decode_page_token(
            self._page_tokens, fingerprint, page_token, lambda key: key, InvalidArgument
        )
        rows, cursor = await self._repository.list_versions(
            model_id, expr, order, after, limit, show_deleted
        )
        token = self._page_tokens.encode(fingerprint, cursor) if cursor is not None else ""
        return VersionPage(rows, token)

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
        model_id, version = parse_version_name(name, "model_version.name")
        fields = frozenset(update_mask) if update_mask else UPDATABLE_VERSION_FIELDS
        unknown = fields - UPDATABLE_VERSION_FIELDS
        if unknown:
            raise InvalidArgument(
                "update_mask",
                f"cannot update {', '.join(sorted(unknown))}; updatable fields are "
                f"{', '.join(sorted(UPDATABLE_VERSION_FIELDS))}",
            )
        validate_version_draft(draft)
        try:
            return await self._repository.update(
                model_id, version, draft, fields, etag, actor, validate_request_id(request_id)
            )
        finally:
            self._changed(model_id)

    async def delete_version(
        self, name: str, etag: str, actor: str, request_id: str = ""
    ) -> ModelVersion:
        """Soft-delete a version; its aliases go with it."""
        model_id, version = parse_version_name(name)
        try:
            return await self._repository.delete(
                model_id, version, etag, actor, validate_request_id(request_id)
            )
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
        """Check every file's blob exists with its size, then flip PENDING → READY."""
        model_id, version = parse_version_name(name)
        request = validate_request_id(request_id)
        validate_manifest(files)
        try:
            return await self._repository.commit(
                model_id, version, files, etag, actor, request, self._verify_uploaded
            )
        finally:
            self._changed(model_id)  # a new READY version is the new "latest"

    async def _verify_uploaded(self, files: Sequence[ManifestFile]) -> None:
        missing = await self._blobs.missing(files)
        if missing:
            shown = ", ".join(
                f"{f.path} (sha256 {f.sha256[:12]}…, {f.size} bytes)" for f in missing[:10]
            )
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise FailedPrecondition(
                f"{len(missing)} file(s) of the manifest are not uploaded (or have another "
                f"size): {shown}{more}; upload them, then commit again",
                reason="BLOBS_MISSING",
            )

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
            raise NotFound(version.name)
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
                    raise NotFound(f"{MODEL_NAME_PREFIX}{model_id}/aliases/{alias}{when}")
                return version
            if number is not None:
                return await self._repository.get(model_id, number)
            version = await self._repository.get_latest_ready(model_id, as_of)
            if version is None:
                raise NotFound(f"a READY version of {MODEL_NAME_PREFIX}{model_id}")
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
    ) -> AliasRecord:
        """Point ``alias`` at a READY version (compare-and-set with ``expected_version``)."""
        model_id = parse_model_name(model, "model")
        validate_alias(alias)
        target_model, number = parse_version_name(version, "version")
        if target_model != model_id:
            raise InvalidArgument("version", f"{version} is not a version of {model}")
        expected = None
        if expected_version:
            expected_model, expected = parse_version_name(expected_version, "expected_version")
            if expected_model != model_id:
                raise InvalidArgument("expected_version", f"is not a version of {model}")
        try:
            return await self._repository.set_alias(
                model_id, alias, number, expected, actor, validate_request_id(request_id)
            )
        finally:
            self._changed(model_id)

    async def delete_alias(self, name: str, actor: str, request_id: str = "") -> None:
        """Remove an alias."""
        model_id, alias = parse_alias_name(name)
        try:
            await self._repository.delete_alias(
                model_id, alias, actor, validate_request_id(request_id)
            )
        finally:
            self._changed(model_id)

    async def list_aliases(
        self, parent: str, page_size: int, page_token: str
    ) -> tuple[list[AliasRecord], str]:
        """Aliases of a model, in name order."""
        model_id = parse_model_name(parent, "parent")
        limit = coerce_page_size(page_size)
        fingerprint = query_fingerprint("ListAliases", parent)
        after = decode_page_token(
            self._page_tokens, fingerprint, page_token, lambda key: str(key[0]), InvalidArgument
        )
        rows = await self._repository.list_aliases(model_id, after or "", limit + 1)
        if len(rows) <= limit:
            return rows, ""
        return rows[:limit], self._page_tokens.encode(fingerprint, [rows[limit - 1].alias])


__all__ = ["ALL_MODELS", "VersionPage", "VersionService", "version_name"]
