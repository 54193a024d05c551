"""Unit tests of how the HTTP face finds a request's credential and checks CSRF tokens."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from modelregistry_server.web.session import (
    CSRF_HEADER,
    SESSION_COOKIE,
    caller_of,
    csrf_ok,
    csrf_token_for,
    sendable_credential,
)

TOKEN = "mr1_0123456789abcdef_secret-part_x"


def _request(method: str = "GET", **headers: str) -> web.Request:
    return make_mocked_request(method, "/v1/models", headers=headers)


def test_a_bearer_header_is_the_credential() -> None:
    caller = caller_of(_request(Authorization=f"Bearer  {TOKEN} "))
    assert (caller.credential, caller.from_cookie) == (TOKEN, False)
    assert caller_of(_request(Authorization=f"bearer {TOKEN}")).credential == TOKEN


def test_another_scheme_is_forwarded_whole_for_the_server_to_refuse() -> None:
    caller = caller_of(_request(Authorization="Basic dXNlcjpwYXNz"))
    assert caller.credential == "Basic dXNlcjpwYXNz"
    assert not caller.from_cookie


def test_the_cookie_counts_only_without_an_authorization_header() -> None:
    cookie = f"{SESSION_COOKIE}={TOKEN}"
    from_cookie = caller_of(_request(Cookie=cookie))
    assert (from_cookie.credential, from_cookie.from_cookie) == (TOKEN, True)
    assert from_cookie.csrf_token == csrf_token_for(TOKEN)
    both = caller_of(_request(Cookie=cookie, Authorization="Bearer other"))
    assert (both.credential, both.from_cookie) == ("other", False)
    assert both.csrf_token == ""


def test_no_credential_or_an_oversized_cookie_is_anonymous() -> None:
    assert caller_of(_request()).credential is None
    huge = caller_of(_request(Cookie=f"{SESSION_COOKIE}={'a' * 9000}"))
    assert huge.credential is None


@pytest.mark.parametrize("value", ["tök€n", "a\tb", "zero\x00width", "snow☃"])
def test_a_credential_grpc_metadata_cannot_hold_becomes_one_the_server_refuses(
    value: str,
) -> None:
    sent = sendable_credential(value)
    assert sent.isascii()
    assert sent.isprintable()
    assert "?" in sent  # no token holds "?": it stays invalid, never becomes another token
    assert sendable_credential(TOKEN) == TOKEN


def test_only_cookie_sessions_that_change_something_need_the_csrf_token() -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={TOKEN}"}
    for method in ("GET", "HEAD", "OPTIONS"):
        request = _request(method, **cookie)
        assert csrf_ok(request, caller_of(request))
    for method in ("POST", "PATCH", "DELETE", "PUT"):
        bare = _request(method, **cookie)
        assert not csrf_ok(bare, caller_of(bare))
        wrong = _request(method, **cookie, **{CSRF_HEADER: csrf_token_for("another")})
        assert not csrf_ok(wrong, caller_of(wrong))
        right = _request(method, **cookie, **{CSRF_HEADER: csrf_token_for(TOKEN)})
        assert csrf_ok(right, caller_of(right))
        form = _request(method, **cookie)
        assert csrf_ok(form, caller_of(form), csrf_token_for(TOKEN))
        bearer = _request(method, Authorization=f"Bearer {TOKEN}")
        assert csrf_ok(bearer, caller_of(bearer))
