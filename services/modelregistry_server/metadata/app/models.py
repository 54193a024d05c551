"""Use cases for the Model resource: create, get, list, update, delete."""

from __future__ import annotations

from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.common.kernel.paging import Page, Paginator
from modelregistry_server.common.kernel.request_ids import validate_request_id
from modelregistry_server.metadata.app.ports import (
    ModelRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from modelregistry_server.metadata.domain import lifecycle
from modelregistry_server.metadata.domain.errors import InvalidArgument, already_exists, not_found
from modelregistry_server.metadata.domain.events import EventType
from modelregistry_server.metadata.domain.filter import (
    FieldRef,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from modelregistry_server.metadata.domain.model import (
    MODEL_NAME_PREFIX,
    UPDATABLE_MODEL_FIELDS,
    Model,
    ModelDraft,
    parse_model_name,
    validate_draft,
    validate_model_id,
)

DEFAULT_MODEL_ORDER = [OrderKey(FieldRef("name"))]


def parse_model_order_by(order_by: str) -> list[OrderKey]:
    """Parse ``order_by`` ("create_time desc") into an ordering; default is ``name asc``.

    ``name`` may follow as a second key in the same direction (it is the tie-breaker anyway).
    """
    keys = parse_order_by(order_by, "model")
    if not keys:
        return DEFAULT_MODEL_ORDER
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
    # "name" after "name" cannot happen (parse_order_by refuses a field twice); after another
    # field it is the tie-breaker the query adds anyway.
    return [first]


class ModelService:
    """The Model use cases. Takes its ports in the constructor; knows nothing of gRPC."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        repository: ModelRepository,
        paginator: Paginator,
        resolve_cache: ResolveCache | None = None,
    ) -> None:
        self._uow = uow
        self._repository = repository
        self._paginator = paginator
        # Deleting a model removes its versions: cached resolves of it must go at once.
        self._resolve_cache = resolve_cache

    async def create_model(
        self, model_id: str, draft: ModelDraft, request_id: str = "", actor: str = "anonymous"
    ) -> Model:
        """Create ``models/{model_id}``."""
        validate_model_id(model_id)
        validate_draft(draft)
        request = validate_request_id(request_id)
        resource = MODEL_NAME_PREFIX + model_id
        async with self._uow() as uow:
            if not await uow.claim_request(request, "CreateModel", resource):
                return await _locked(uow, model_id)
            created = await uow.models.insert(model_id, draft)
            if created is None:
                raise already_exists(resource)
            await uow.audit(
                AuditEntry(
                    actor, "CreateModel", resource, model_id, None,
                    lifecycle.model_summary(created), request,
                )
            )  # fmt: skip
            return created

    async def get_model(self, name: str) -> Model:
        """Return the model named ``name`` (``models/{model}``)."""
        return await self._repository.get(parse_model_name(name))

    async def list_models(
        self,
        page_size: int,
        page_token: str,
        filter_: str = "",
        order_by: str = "",
        visible: Visibility | None = None,
    ) -> Page[Model]:
        """Return one page of models in keyset order (only those ``visible`` allows)."""
        expr = parse_filter(filter_, "model")
        order = parse_model_order_by(order_by)
        # The token is bound to everything but page_size: a different query cannot reuse it.
        page = self._paginator.open("ListModels", page_size, page_token, repr(expr), repr(order))
        rows, cursor = await self._repository.list(expr, order, page.after, page.limit, visible)
        return self._paginator.page(page, rows, cursor)

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
        request = validate_request_id(request_id)
        async with self._uow() as uow:
            current = await _locked(uow, model_id)
            if not await uow.claim_request(request, "UpdateModel", current.name):
                return current
            lifecycle.check_etag(current.name, etag, current.etag)
            updated = await uow.models.update(model_id, draft, fields)
            await uow.audit(
                AuditEntry(
                    actor, "UpdateModel", current.name, model_id,
                    lifecycle.model_summary(current), lifecycle.model_summary(updated), request,
                )
            )  # fmt: skip
            return updated

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
        request = validate_request_id(request_id)
        try:
            async with self._uow() as uow:
                if not await uow.claim_request(
                    request, "DeleteModel", MODEL_NAME_PREFIX + model_id
                ):
                    return
                current = await _locked(uow, model_id)
                live = await uow.models.count_live_versions(model_id)
                lifecycle.check_model_delete(current, live, force, etag)
                await uow.models.delete(model_id)
                await uow.audit(
                    AuditEntry(
                        actor, "DeleteModel", current.name, model_id,
                        lifecycle.model_summary(current), None, request,
                    )
                )  # fmt: skip
                await uow.emit(EventType.MODEL_DELETED, model_id, None, None, actor)
        finally:
            if self._resolve_cache is not None:
                self._resolve_cache.invalidate_model(model_id)


async def _locked(uow: UnitOfWork, model_id: str) -> Model:
    """The model, locked in ``uow``; ``NotFound`` when there is none."""
    model = await uow.models.lock(model_id)
    if model is None:
        raise not_found(MODEL_NAME_PREFIX + model_id)
    return model
