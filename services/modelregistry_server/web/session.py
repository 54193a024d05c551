"""Who is calling over HTTP, and whether a state-changing request really comes from our page.

A caller presents its token the way a gRPC caller does (``Authorization: Bearer …``), or, in a
browser, through the session cookie set at sign-in. The token is checked by the gRPC server's
own interceptor on the call it is forwarded with (``gateway.py``); this module only finds it.

Cross-site request forgery: a request authenticated by the cookie that changes something must
carry the page's CSRF token (a form field or the ``X-CSRF-Token`` header). The token is a
one-way hash of the session cookie, so a page of another origin, which can neither read the
HttpOnly cookie nor our pages, cannot compute it; it needs no server-side state, so it holds
across replicas. ``SameSite=Strict`` keeps the cookie off cross-site requests in the first
place; the token is the second lock. A request with an ``Authorization`` header needs no token:
a browser never adds that header by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web

SESSION_COOKIE = "modelregistry_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# A session lasts as long as its token is valid; the cookie itself expires after this.
SESSION_MAX_AGE_S = 12 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Tokens are short printable strings; anything longer is not one (and not worth hashing).
_MAX_CREDENTIAL_CHARS = 8192


@dataclass(frozen=True)
class Caller:
    """The credential of an HTTP request and where it came from.

    Attributes:
        credential: The bearer token or JWT, or None for an anonymous request.
        from_cookie: True when it came from the session cookie (a browser session).
    """

    credential: str | None
    from_cookie: bool

    @property
    def csrf_token(self) -> str:
        """The token a page of this session puts in its forms (``""`` without a session)."""
        if not self.from_cookie or self.credential is None:
            return ""
        return csrf_token_for(self.credential)


def csrf_token_for(credential: str) -> str:
    """The CSRF token of the session whose cookie holds ``credential``."""
    digest = hashlib.sha256(b"modelregistry-csrf\x00" + credential.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sendable_credential(credential: str) -> str:
    """``credential`` as a gRPC metadata value can hold it: printable ASCII.

    gRPC refuses any other value before the call is sent (which would be a server error).
    No token holds anything else, so ``?`` in place of each other character keeps it a token
    the server refuses as invalid, the answer its sender should get.
    """
    if credential.isascii() and credential.isprintable():
        return credential
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in credential)


def caller_of(request: web.Request) -> Caller:
    """The request's credential: the ``Authorization`` header first, then the cookie."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if header and scheme.lower() == "bearer" and 0 < len(value.strip()) <= _MAX_CREDENTIAL_CHARS:
        return Caller(sendable_credential(value.strip()), from_cookie=False)
    if header:
        # Sent but unusable: forwarded as is, so the server's refusal names the problem.
        return Caller(sendable_credential(header[:_MAX_CREDENTIAL_CHARS]), from_cookie=False)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if 0 < len(cookie) <= _MAX_CREDENTIAL_CHARS:
        return Caller(sendable_credential(cookie), from_cookie=True)
    return Caller(None, from_cookie=False)


def csrf_ok(request: web.Request, caller: Caller, form_token: str | None = None) -> bool:
    """Whether ``request`` may change something on behalf of ``caller``."""
    if request.method in _SAFE_METHODS or not caller.from_cookie:
        return True
    sent = form_token if form_token is not None else request.headers.get(CSRF_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent, caller.csrf_token)


def set_session(response: web.StreamResponse, credential: str, *, secure: bool) -> None:
    """Sign in: the credential goes into an HttpOnly, SameSite=Strict cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        credential,
        max_age=SESSION_MAX_AGE_S,
        path="/",
        httponly=True,
        secure=secure,
        samesite="Strict",
    )


def clear_session(response: web.StreamResponse, *, secure: bool) -> None:
    """Sign out: the cookie is replaced by an expired, empty one."""
    response.del_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="Strict")
