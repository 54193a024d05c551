"""The models page (``/``): a searchable, sortable, paged list of the models the user may see.

The filter is the API's own (AIP-160) and is checked by the server; an invalid one is shown
above the table with the server's message, which names the position. Sorting and paging are
the server's too (``order_by``, ``page_token``), so the page costs the same with 10 models or
10,000.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from google.rpc import code_pb2

from modelregistry.metadata.v1 import alias_pb2, metadata_service_pb2, model_pb2, model_version_pb2
from modelregistry_server.web.gateway import CallError
from modelregistry_server.web.ui.page import Page

PAGE_SIZE = 25
# Sortable columns: the API's sortable fields, each with its first direction.
SORTS = {"name": "name", "updated": "update_time desc", "created": "create_time desc"}
FILTER_EXAMPLES = (
    ('labels.team = "vision"', "a label"),
    ("owner = risk-ml", "the owner"),
    ('name = "models/fraud*"', "names starting with fraud"),
    ('update_time >= "2026-01-01T00:00:00Z"', "changed since a date"),
    ('labels.stage = "prod" AND NOT owner = "bot"', "combined"),
)


@dataclass(frozen=True)
class ModelRow:
    """One row of the list: the model, its latest READY version and its aliases."""

    model: model_pb2.Model
    latest: model_version_pb2.ModelVersion | None
    aliases: list[alias_pb2.Alias]


async def models(request: web.Request) -> web.StreamResponse:
    """Render the list."""
    page = Page(request)
    await page.me()
    query = request.query
    filter_text = query.get("filter", "").strip()
    sort = query.get("sort", "name")
    descending = query.get("dir", "") == "desc"
    order_by = SORTS.get(sort, "name").split()[0] + (" desc" if descending else "")
    error = ""
    listed = metadata_service_pb2.ListModelsResponse()
    try:
        listed = await page.call(
            page.metadata.ListModels,
            metadata_service_pb2.ListModelsRequest(
                page_size=PAGE_SIZE,
                page_token=query.get("page", ""),
                filter=filter_text,
                order_by=order_by,
            ),
        )
    except CallError as exc:
        if exc.status.code != code_pb2.INVALID_ARGUMENT:
            raise
        error = exc.status.message  # a bad filter or a stale page token: shown, not fatal
    rows = await asyncio.gather(*(_row(page, model) for model in listed.models))
    return page.render(
        "models.html",
        rows=rows,
        filter=filter_text,
        error=error,
        sort=sort,
        descending=descending,
        next_page=listed.next_page_token,
        first_page=bool(query.get("page")),
        examples=FILTER_EXAMPLES,
        query_args=query,
    )


async def _row(page: Page, model: model_pb2.Model) -> ModelRow:
    latest = None
    try:
        latest = await page.call(
            page.metadata.ResolveModelVersion,
            metadata_service_pb2.ResolveModelVersionRequest(ref=model.name),
        )
    except CallError as exc:
        if exc.status.code not in (code_pb2.NOT_FOUND, code_pb2.FAILED_PRECONDITION):
            raise
    aliases = await page.call(
        page.metadata.ListAliases,
        metadata_service_pb2.ListAliasesRequest(parent=model.name, page_size=20),
    )
    return ModelRow(model, latest, list(aliases.aliases))


ROUTES = [("GET", "/", models)]
