"""The version page's actions: approve the version for an alias, edit its labels and
description.

Each is a form post from the version page. A post without this session's CSRF token is
refused with 403 before anything is read or called, so a page of another site cannot make a
signed-in user's browser change anything. What the server refuses (no permission, a second
person's approval required, an etag that moved on) is shown as the server said it, above the
form, which keeps what the user typed; a success redirects (303) back to the page.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

from aiohttp import web
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2

from modelregistry.metadata.v1 import governance_pb2, metadata_service_pb2, model_version_pb2
from modelregistry_server.web.gateway import CallError
from modelregistry_server.web.session import CSRF_FIELD, csrf_ok
from modelregistry_server.web.ui.label_lines import FormError, parse_labels
from modelregistry_server.web.ui.page import Page
from modelregistry_server.web.ui.version_page import Forms, render_version, version_name


async def _form(page: Page) -> dict[str, str] | web.Response:
    """The posted fields, or the 403 page when the CSRF token is missing or wrong."""
    form = await page.request.post()
    if not csrf_ok(page.request, page.caller, str(form.get(CSRF_FIELD, ""))):
        return page.render(
            "error.html",
            status=403,
            title="Form refused",
            message="This form did not carry this session's security token, so nothing "
            "was changed.",
            reason="CSRF_TOKEN_INVALID",
            hint="Reload the page and send the form again. If you did not send it yourself, "
            "another site tried to act in your name.",
        )
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _back(model: str, number: str, done: str, anchor: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/models/{quote(model)}/versions/{number}?done={done}#{anchor}")


async def approve(request: web.Request) -> web.StreamResponse:
    """Approve the version for the alias in the form (``ApproveModelVersion``)."""
    page = Page(request)
    model, number = request.match_info["model"], request.match_info["version"]
    form = await _form(page)
    if isinstance(form, web.Response):
        return form
    forms = Forms(alias=form.get("alias", "").strip(), comment=form.get("comment", "").strip())
    try:
        await page.call(
            page.metadata.ApproveModelVersion,
            governance_pb2.ApproveModelVersionRequest(
                name=version_name(model, number),
                alias=forms.alias,
                comment=forms.comment,
                request_id=str(uuid.uuid4()),
            ),
        )
    except CallError as exc:
        if exc.status.code == code_pb2.UNAUTHENTICATED:
            raise
        forms.approve_error = exc.status.message
        return await render_version(page, model, number, forms, status=exc.http_status)
    raise _back(model, number, "approved", "approvals")


async def edit(request: web.Request) -> web.StreamResponse:
    """Replace the version's labels and description (``UpdateModelVersion``, with the etag
    the form was rendered with, so a concurrent edit is not overwritten)."""
    page = Page(request)
    model, number = request.match_info["model"], request.match_info["version"]
    form = await _form(page)
    if isinstance(form, web.Response):
        return form
    # Browsers send a textarea's line breaks as CRLF; the stored card uses LF.
    description = form.get("description", "").replace("\r\n", "\n")
    forms = Forms(labels=form.get("labels", ""), description=description, etag=form.get("etag", ""))
    try:
        labels = parse_labels(forms.labels or "")
        await page.call(
            page.metadata.UpdateModelVersion,
            metadata_service_pb2.UpdateModelVersionRequest(
                model_version=model_version_pb2.ModelVersion(
                    name=version_name(model, number),
                    labels=labels,
                    description=description,
                    etag=forms.etag or "",
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["labels", "description"]),
                request_id=str(uuid.uuid4()),
            ),
        )
    except FormError as exc:
        forms.edit_error = str(exc)
        return await render_version(page, model, number, forms, status=400)
    except CallError as exc:
        if exc.status.code == code_pb2.UNAUTHENTICATED:
            raise
        forms.edit_error = exc.status.message
        if exc.status.code == code_pb2.ABORTED:
            forms.etag = None  # resending now replaces the newer edit, knowingly
        return await render_version(page, model, number, forms, status=exc.http_status)
    raise _back(model, number, "edited", "details")


ROUTES = [
    ("POST", "/models/{model}/versions/{version}/approve", approve),
    ("POST", "/models/{model}/versions/{version}/edit", edit),
]
