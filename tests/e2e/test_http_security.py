"""The HTTP face's own defences, against a real server: security headers on every kind of
response, CORS off unless configured, CSRF tokens for cookie sessions, the body size limit,
and the errors of requests that match no API method."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from modelregistry_server.web.session import SESSION_COOKIE, csrf_token_for
from tests.conftest import RunningRegistry, _start_registry
from tests.support.auth import ADMIN_TOKEN
from tests.support.http_api import (
    SECURITY_HEADERS,
    base_url,
    curl,
    error_info,
    preamble,
    session,
)
from tests.support.metadata import new_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

UI_ORIGIN = "https://ui.example:8443"
OTHER_ORIGIN = "https://evil.example"
MiB = 1024 * 1024


@pytest.fixture
async def cors_registry(database_url: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """A registry whose JSON API a page of ``UI_ORIGIN`` may call."""
    extra = [f"--http-cors-origins={UI_ORIGIN}"]
    async for running in _start_registry(database_url, tmp_path / "data", extra):
        yield running


def _assert_secured(headers: Mapping[str, str], what: str) -> None:
    present = {name.lower(): value for name, value in headers.items()}
    missing = SECURITY_HEADERS - set(present)
    assert not missing, f"{what}: no {sorted(missing)}"
    policy = present["content-security-policy"]
    assert "script-src 'self'" in policy, what
    assert "unsafe-inline" not in policy, what
    assert "unsafe-eval" not in policy, what
    assert "frame-ancestors 'none'" in policy, what
    assert present["x-content-type-options"] == "nosniff", what
    assert present["x-frame-options"] == "DENY", what
    # No URL (which may hold a filter) leaks to another origin.
    assert present["referrer-policy"] in ("no-referrer", "same-origin"), what


async def test_every_kind_of_response_carries_the_security_headers(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "fraud")
    base = base_url(registry)
    admin = ("-H", f"Authorization: Bearer {ADMIN_TOKEN}")
    replies = {
        "JSON": await curl(*admin, f"{base}/v1/models"),
        "an API error": await curl(*admin, f"{base}/v1/models/nope"),
        "no token": await curl(f"{base}/v1/models"),
        "an unknown API path": await curl(*admin, f"{base}/v1/nothing/here"),
        "a page that does not exist": await curl(f"{base}/no-such-page"),
        "a wrong verb": await curl(*admin, "-X", "PUT", f"{base}/v1/models"),
        "the OpenAPI document": await curl(f"{base}/openapi.json"),
    }
    assert replies["a page that does not exist"].status == 404
    for what, reply in replies.items():
        _assert_secured(reply.headers, what)
    async with session(registry, ADMIN_TOKEN) as http:
        stream = await http.get("/v1/events:watch?model=models/fraud")
        await preamble(stream)
        _assert_secured(stream.headers, "an event stream")
        stream.close()


async def test_cors_is_off_by_default(registry: RunningRegistry) -> None:
    base = base_url(registry)
    simple = await curl(
        "-H", f"Origin: {UI_ORIGIN}", "-H", f"Authorization: Bearer {ADMIN_TOKEN}",
        f"{base}/v1/models",
    )  # fmt: skip
    assert simple.status == 200
    assert not any(name.startswith("access-control-") for name in simple.headers)
    preflight = await curl(
        "-X", "OPTIONS", "-H", f"Origin: {UI_ORIGIN}",
        "-H", "Access-Control-Request-Method: DELETE", f"{base}/v1/models/fraud",
    )  # fmt: skip
    assert preflight.status != 204
    assert not any(name.startswith("access-control-") for name in preflight.headers)


async def test_a_configured_origin_may_call_the_api_and_no_other(
    cors_registry: RunningRegistry,
) -> None:
    registry = cors_registry
    await new_model(registry, "fraud")
    base = base_url(registry)
    bearer = ("-H", f"Authorization: Bearer {ADMIN_TOKEN}")

    allowed = await curl(*bearer, "-H", f"Origin: {UI_ORIGIN}", f"{base}/v1/models")
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert allowed.headers["vary"] == "Origin"
    assert "ETag" in allowed.headers["access-control-expose-headers"]
    assert "access-control-allow-credentials" not in allowed.headers  # bearer tokens only
    _assert_secured(allowed.headers, "a CORS response")

    # The page can read an error too, to show it.
    refused = await curl("-H", f"Origin: {UI_ORIGIN}", f"{base}/v1/models")
    assert refused.status == 401
    assert refused.headers["access-control-allow-origin"] == UI_ORIGIN

    preflight = await curl(
        "-X", "OPTIONS", "-H", f"Origin: {UI_ORIGIN}",
        "-H", "Access-Control-Request-Method: PATCH",
        "-H", "Access-Control-Request-Headers: authorization, content-type",
        f"{base}/v1/models/fraud",
    )  # fmt: skip
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "PATCH" in preflight.headers["access-control-allow-methods"]
    assert "Authorization" in preflight.headers["access-control-allow-headers"]

    other = await curl(*bearer, "-H", f"Origin: {OTHER_ORIGIN}", f"{base}/v1/models")
    assert other.status == 200  # served (CORS is enforced by the browser) but not shared
    assert "access-control-allow-origin" not in other.headers
    # Every response varies by origin, so a browser cache never hands one origin's to another.
    assert other.headers["vary"] == "Origin"
    no_origin = await curl(*bearer, f"{base}/v1/models")
    assert no_origin.headers["vary"] == "Origin"
    other_preflight = await curl(
        "-X", "OPTIONS", "-H", f"Origin: {OTHER_ORIGIN}",
        "-H", "Access-Control-Request-Method: DELETE", f"{base}/v1/models/fraud",
    )  # fmt: skip
    assert other_preflight.status != 204
    assert "access-control-allow-origin" not in other_preflight.headers

    async with session(registry, ADMIN_TOKEN, Origin=UI_ORIGIN) as http:
        stream = await http.get("/v1/events:watch?model=models/fraud")
        await preamble(stream)
        assert stream.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
        stream.close()


async def test_a_cookie_session_must_send_the_csrf_token_to_change_anything(
    registry: RunningRegistry,
) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={ADMIN_TOKEN}"}
    async with session(registry, None, **cookie) as http:
        listed = await http.get("/v1/models")  # reading needs no CSRF token
        assert listed.status == 200, await listed.text()

        forged = await http.post("/v1/models?model_id=forged", json={})
        assert forged.status == 403
        document = await forged.json()
        assert document["code"] == 7
        assert "CSRF" in document["message"]
        wrong = await http.post(
            "/v1/models?model_id=forged", json={}, headers={"X-CSRF-Token": "guess"}
        )
        assert wrong.status == 403
        other_session = await http.post(
            "/v1/models?model_id=forged",
            json={},
            headers={"X-CSRF-Token": csrf_token_for("mr1_someone_else")},
        )
        assert other_session.status == 403
        assert (await http.get("/v1/models/forged")).status == 404  # nothing was created

        token = csrf_token_for(ADMIN_TOKEN)
        created = await http.post(
            "/v1/models?model_id=fraud", json={}, headers={"X-CSRF-Token": token}
        )
        assert created.status == 200, await created.text()
        not_deleted = await http.delete("/v1/models/fraud")
        assert not_deleted.status == 403
        deleted = await http.delete("/v1/models/fraud", headers={"X-CSRF-Token": token})
        assert deleted.status == 200

    # A bearer token is never sent by a browser on its own: it needs no CSRF token.
    async with session(registry, ADMIN_TOKEN, **cookie) as http:
        assert (await http.post("/v1/models?model_id=churn", json={})).status == 200


async def test_a_body_over_4_mib_is_refused(registry: RunningRegistry) -> None:
    big = b'{"description": "' + b"x" * (4 * MiB) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), MiB):
            yield big[start : start + MiB]
            await asyncio.sleep(0)

    async with session(registry, ADMIN_TOKEN, **{"Content-Type": "application/json"}) as http:
        declared = await http.post("/v1/models?model_id=big", data=big)
        assert declared.status == 400
        assert "over 4194304 bytes" in (await declared.json())["message"]
        chunked = await http.post("/v1/models?model_id=big", data=chunks())
        assert chunked.status == 400
        assert (await chunked.json())["code"] == 3
        assert (await http.get("/v1/models/big")).status == 404


async def test_an_unknown_api_path_is_a_404_status(registry: RunningRegistry) -> None:
    base = base_url(registry)
    for path in ("/v1/nothing", "/v1/models/a/b/c/d", "/v1/models/a:explode"):
        reply = await curl("-H", f"Authorization: Bearer {ADMIN_TOKEN}", f"{base}{path}")
        assert reply.status == 404, path
        document = reply.json()
        assert document["code"] == 5
        assert "/openapi.json" in document["message"]


async def test_a_wrong_verb_is_a_501_naming_the_verbs_that_work(registry: RunningRegistry) -> None:
    base = base_url(registry)
    admin = ("-H", f"Authorization: Bearer {ADMIN_TOKEN}")
    reply = await curl(*admin, "-X", "PUT", f"{base}/v1/models/fraud")
    assert reply.status == 501
    document = reply.json()
    assert document["code"] == 12  # UNIMPLEMENTED
    assert "use GET, PATCH, DELETE" in document["message"]
    commit = await curl(*admin, f"{base}/v1/models/fraud/versions/1:commit")
    assert commit.status == 501
    assert "use POST" in commit.json()["message"]


async def test_a_request_that_does_not_fit_its_method_is_a_400_status(
    registry: RunningRegistry,
) -> None:
    async with session(registry, ADMIN_TOKEN) as http:
        with_body = await http.delete("/v1/models/fraud", json={"force": True})
        unknown = await http.get("/v1/models?colour=red")
        not_json = await http.post("/v1/models?model_id=x", data=b"{not json")
        in_query = await http.post("/v1/models/x/aliases?alias=production", json={})
        for reply, says in (
            (with_body, "takes no request body"),
            (unknown, "unknown query parameter 'colour'"),
            (not_json, "not JSON"),
            (in_query, "in the JSON body"),
        ):
            assert reply.status == 400, says
            document = await reply.json()
            assert document["code"] == 3
            assert says in document["message"]
        assert "details" not in document  # found by the HTTP layer: no ErrorInfo to invent
        # The same mistake found by the service carries its ErrorInfo.
        bad_name = await http.post("/v1/models?model_id=Not%20An%20Id", json={})
        assert bad_name.status == 400
        assert error_info(await bad_name.json())["reason"] == "FIELD_INVALID"
