"""The model page's actions: move an alias (``POST /models/{model}/aliases``) and edit the
model's description and labels (``POST /models/{model}/edit``).

Both are plain form posts carrying the session's CSRF token; a post without the right token is
refused with 403 before anything is called. The change itself is the API's (``SetAlias``,
``UpdateModel``) with the user's credential, so the registry decides: its permission table,
the promotion gate of a protected alias, the etag. When it refuses, the model page comes back
with the registry's message as is beside the form, and the values the user entered; on success
the browser is sent back to the model page (303) with a notice.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from aiohttp import web
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2

from modelregistry.metadata.v1 import metadata_service_pb2, model_pb2
from modelregistry_server.web.gateway import CallError
from modelregistry_server.web.session import CSRF_FIELD, csrf_ok
from modelregistry_server.web.ui.label_lines import parse_labels
from modelregistry_server.web.ui.model_page import Forms, View, parse_view, render_model
from modelregistry_server.web.ui.page import Page

_MAX_FIELD_CHARS = 64 * 1024


async def move_alias(request: web.Request) -> web.StreamResponse:
    """Point an alias at a version (SetAlias)."""
    page, model_id, form = Page(request), request.match_info["model"], await _form(request)
    if not csrf_ok(request, page.caller, form.get(CSRF_FIELD, "")):
        return _forbidden(page)
    alias = form.get("alias", "").strip()
    version = form.get("version", "").strip()
    values = {"alias": alias, "version": version}
    if not alias or not version.isdigit():
        return await _refused(page, model_id, Forms(move_error="Give an alias and a version."), 400)
    name = f"models/{model_id}"
    try:
        await page.call(
            page.metadata.SetAlias,
            metadata_service_pb2.SetAliasRequest(
                model=name,
                alias=alias,
                version=f"{name}/versions/{int(version)}",
                request_id=str(uuid.uuid4()),
            ),
        )
    except CallError as exc:
        _unless_signed_out(exc)
        forms = Forms(move_error=exc.status.message, values=values)
        return await _refused(page, model_id, forms, exc.http_status)
    done = urlencode({"moved": alias, "to": int(version)})
    raise web.HTTPSeeOther(f"/models/{model_id}?{done}")


async def edit_model(request: web.Request) -> web.StreamResponse:
    """Replace the model's description and labels (UpdateModel with the page's etag)."""
    page, model_id, form = Page(request), request.match_info["model"], await _form(request)
    if not csrf_ok(request, page.caller, form.get(CSRF_FIELD, "")):
        return _forbidden(page)
    values = {k: form.get(k, "") for k in ("description", "labels", "etag")}
    try:
        labels = parse_labels(values["labels"])
    except ValueError as exc:
        return await _refused(page, model_id, Forms(edit_error=str(exc), values=values), 400)
    request_message = metadata_service_pb2.UpdateModelRequest(
        model=model_pb2.Model(
            name=f"models/{model_id}",
            description=values["description"].replace("\r\n", "\n").strip(),
            labels=labels,
            etag=values["etag"],
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["description", "labels"]),
        request_id=str(uuid.uuid4()),
    )
    try:
        await page.call(page.metadata.UpdateModel, request_message)
    except CallError as exc:
        _unless_signed_out(exc)
        forms = Forms(edit_error=exc.status.message, values=values)
        return await _refused(page, model_id, forms, exc.http_status)
    raise web.HTTPSeeOther(f"/models/{model_id}?edited=1")


async def _form(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {k: v for k, v in posted.items() if isinstance(v, str) and len(v) <= _MAX_FIELD_CHARS}


def _forbidden(page: Page) -> web.Response:
    """403: the form does not carry this session's CSRF token (a page of another site, or a
    form from before the user signed in again); nothing was called."""
    return page.render(
        "error.html",
        status=403,
        title="Form refused",
        message="This form did not carry the security token of your session, so nothing was "
        "changed.",
        reason="CSRF_TOKEN_INVALID",
        hint="Reload the model page and submit the form again. If you did not submit a form "
        "here, another site tried to act on your behalf, and nothing happened.",
    )


async def _refused(page: Page, model_id: str, forms: Forms, status: int) -> web.Response:
    view: View = parse_view({})
    return await render_model(page, model_id, view, status=status, forms=forms)


def _unless_signed_out(exc: CallError) -> None:
    """An expired session still goes to the sign-in page (the error pages' middleware)."""
    if exc.status.code == code_pb2.UNAUTHENTICATED:
        raise exc


async def back_to_model(request: web.Request) -> web.StreamResponse:
    """A GET of an action's address (a reload after a refused post) shows the model page."""
    raise web.HTTPSeeOther(f"/models/{request.match_info['model']}")


ROUTES = [
    ("POST", "/models/{model}/aliases", move_alias),
    ("POST", "/models/{model}/edit", edit_model),
    ("GET", "/models/{model}/aliases", back_to_model),
    ("GET", "/models/{model}/edit", back_to_model),
]
