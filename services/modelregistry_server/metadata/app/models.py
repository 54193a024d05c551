"""Use cases for the Model resource: create, get, list, update, delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from modelregistry_server.common import paging
from modelregistry_server.common.page_token import (
    InvalidPageToken,
    PageTokenCodec,
    query_fingerprint,
)
from modelregistry_server.common.request_ids import canonical_request_id
from modelregistry_server.metadata.app.ports import (
    ModelCursor,
    ModelOrdering,
    ModelRepository,
    ModelSortField,
)
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.filter import parse_filter, parse_order_by
from modelregistry_server.metadata.domain.model import (
    UPDATABLE_MODEL_FIELDS,
    Model,
    ModelDraft,
    parse_model_name,
    validate_draft,
    validate_model_id,
)


@dataclass(frozen=True)
class Page:
    """One page of models and the token for the next one ("" at the end)."""

    models: list[Model]
    next_page_token: str


def coerce_page_size(page_size: int) -> int:
    """Apply AIP-158 (``common.paging``); a negative size is this service's ``InvalidArgument``."""
    return paging.coerce_page_size(page_size, InvalidArgument)


def parse_model_order_by(order_by: str) -> ModelOrdering:
    """Parse ``order_by`` ("create_time desc") into an ordering; default is ``name asc``.

    ``name`` may follow as a second key in the same direction (it is the tie-breaker anyway).
    """
    keys = parse_order_by(order_by, "model")
    if not keys:
        return ModelOrdering()
    first = keys[0]
    if len(keys) == 2:
        second = keys[1]
        if second.field.kind != "name" or second.descending != first.descending:
            raise InvalidArgument(
                "order_by",
                "models sort by one field; only 'name' in the same direction may follow it "
                "(it breaks ties anyway)",
                reason="ORDER_BY_INVALID",
            )
    return ModelOrdering(field=cast(ModelSortField, first.field.kind), descending=first.descending)


def validate_request_id(request_id: str) -> str | None:
    """Return the request id in canonical form, None when absent; reject anything but a UUID."""
    try:
        return canonical_request_id(request_id)
    except ValueError as exc:
        raise InvalidArgument("request_id", str(exc)) from None


def _model_cursor(key: list[Any], ordering: ModelOrdering) -> ModelCursor:
    """The position a ListModels page token holds: ``[sort value, model id]``."""
    if len(key) != 2 or not all(isinstance(part, str) for part in key):
        raise InvalidPageToken("page_token has an unexpected shape")
    sort_value: str | datetime = key[0]
    if ordering.field != "name":
        sort_value = datetime.fromisoformat(key[0])
    return ModelCursor(sort_value=sort_value, model_id=key[1])


class ModelService:
    """The Model use cases. Takes its ports in the constructor; knows nothing of gRPC."""

    def __init__(
        self,
        repository: ModelRepository,
        page_tokens: PageTokenCodec,
        resolve_cache: ResolveCache | None = None,
    ) -> None:
        self._repository = repository
        self._page_tokens = page_tokens
        # Deleting a model removes its versions: cached resolves of it must go at once.
        self._resolve_cache = resolve_cache

    async def create_model(
        self, model_id: str, draft: ModelDraft, request_id: str = "", actor: str = "anonymous"
    ) -> Model:
        """Create ``models/{model_id}``."""
        validate_model_id(model_id)
        validate_draft(draft)
        return await self._repository.create(
            model_id, draft, validate_request_id(request_id), actor
        )

    async def get_model(self, name: str) -> Model:
        """Return the model named ``name`` (``models/{model}``)."""
        return await self._repository.get(parse_model_name(name))

    async def list_models(
        self, page_size: int, page_token: str, filter_: str = "", order_by: str = ""
    ) -> Page:
        """Return one page of models in keyset order."""
        expr = parse_filter(filter_, "model")
        limit = coerce_page_size(page_size)
        ordering = parse_model_order_by(order_by)
        fingerprint = query_fingerprint(
            "ListModels", ordering.field, str(ordering.descending), repr(expr)
        )
        after = paging.decode_page_token(
            self._page_tokens,
            fingerprint,
            page_token,
            lambda key: _model_cursor(key, ordering),
            InvalidArgument,
        )
        rows = await self._repository.list(ordering, after, limit + 1, expr)
        if len(rows) <= limit:
            return Page(rows, "")
        last = rows[limit - 1]
        sort_value = getattr(last, "model_id" if ordering.field == "name" else ordering.field)
        key = [sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value]
        token = self._page_tokens.encode(fingerprint, [*key, last.model_id])
        return Page(rows[:limit], token)

    async def update_model(
        self,
        name: str,
        draft: ModelDraft,
        update_mask: list[str],
        etag: str = "",
        request_id: str = "",
        actor: str = "anonymous",
    ) -> Model:
        """Apply the fields in ``update_mask`` (all updatable fields when empty)."""
        model_id = parse_model_name(name, "model.name")
        fields = frozenset(update_mask) if update_mask else UPDATABLE_MODEL_FIELDS
        unknown = fields - UPDATABLE_MODEL_FIELDS
        if unknown:
            raise InvalidArgument(
                "update_mask",
                f"cannot update {', '.join(sorted(unknown))}; updatable fields are "
                f"{', '.join(sorted(UPDATABLE_MODEL_FIELDS))}",
            )
        validate_draft(draft)
        return await self._repository.update(
            model_id, draft, fields, etag, validate_request_id(request_id), actor
        )

    async def delete_model(
        self,
        name: str,
        etag: str = "",
        request_id: str = "",
        force: bool = False,
        actor: str = "anonymous",
    ) -> None:
        """Delete the model named ``name`` (with all its versions when ``force``)."""
        model_id = parse_model_name(name)
        try:
            await self._repository.delete(
                model_id, etag, validate_request_id(request_id), force, actor
            )
        finally:
            if self._resolve_cache is not None:
                self._resolve_cache.invalidate_model(model_id)
