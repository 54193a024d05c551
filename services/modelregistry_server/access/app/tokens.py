"""Token use cases and the authenticator every call goes through.

``Authenticator.authenticate`` is on the path of every RPC, so it keeps what it learned about
a token for ``CACHE_TTL`` (a revocation made on another replica takes effect within that
time; one made here at once) and records a token's use at most once a minute, off the path.
A bearer value that is not a token of this registry (``mr1_…``) goes to the OIDC
authenticator when an issuer is configured (``oidc.py``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelregistry_server.access.app.oidc import OidcAuthenticator
from modelregistry_server.access.app.ports import TokenStore
from modelregistry_server.access.domain.token import (
    TOKEN_SECRET_PREFIX,
    TokenRecord,
    new_secret,
    parse_token_name,
    secret_matches,
    secret_sha256,
    token_id_of,
    validate_description,
    validate_principal,
    validate_ttl,
)
from modelregistry_server.common.kernel.errors import NotFound, RegistryError, Unauthenticated
from modelregistry_server.common.kernel.identity import Principal
from modelregistry_server.common.kernel.paging import Page, Paginator

_log = logging.getLogger(__name__)
CACHE_TTL = timedelta(seconds=10)
USE_RECORD_INTERVAL = timedelta(minutes=1)
ACCESS_TOKEN = "ACCESS_TOKEN"  # noqa: S105 - a resource kind, not a secret
HOW_TO_LOG_IN = (
    "pass a token (--token, or MODELREGISTRY_TOKEN), or run `modelregistry login`; the "
    "embedded server writes an admin token to <data-dir>/admin-token on first start"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _unauthenticated(reason: str, what: str) -> Unauthenticated:
    return Unauthenticated(f"{what}: {HOW_TO_LOG_IN}", reason=reason)


@dataclass
class _Known:
    record: TokenRecord
    checked: datetime


class Authenticator:
    """Turns the ``authorization`` metadata of a call into a ``Principal``."""

    def __init__(
        self,
        store: TokenStore,
        clock: Callable[[], datetime] = _now,
        oidc: OidcAuthenticator | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._oidc = oidc
        self._known: dict[str, _Known] = {}  # by the secret's SHA-256
        self._used: dict[str, datetime] = {}
        self._writes: set[asyncio.Task[None]] = set()
        # The credential one service of this process presents to another (never stored).
        self._internal = f"internal_{secrets.token_urlsafe(32)}"

    @property
    def internal_secret(self) -> str:
        """The secret this process's own services call each other with."""
        return self._internal

    def forget(self, token_id: str) -> None:
        """Drop what is cached about a token (after revoking it here)."""
        for key, known in list(self._known.items()):
            if known.record.token_id == token_id:
                del self._known[key]

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind ``authorization`` (``Bearer <secret>``, or ``Bearer <JWT>``
        when OIDC is configured).

        Raises:
            Unauthenticated: ``TOKEN_MISSING``, ``TOKEN_INVALID``, ``TOKEN_EXPIRED`` or
                ``TOKEN_REVOKED``.
            Unavailable: ``OIDC_KEYS_UNAVAILABLE``, for a JWT while the issuer's keys
                cannot be loaded.
        """
        if not authorization:
            raise _unauthenticated("TOKEN_MISSING", "this call needs a credential")
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise _unauthenticated("TOKEN_INVALID", "the credential is not a bearer token")
        if secrets.compare_digest(secret, self._internal):
            return Principal("modelregistry-internal", "internal")
        if self._oidc is not None and not secret.startswith(TOKEN_SECRET_PREFIX):
            return await self._oidc.authenticate(secret)
        record = await self._record(secret)
        now = self._clock()
        if record.revoke_time is not None:
            raise _unauthenticated("TOKEN_REVOKED", f"token {record.name} was revoked")
        if record.expire_time is not None and now >= record.expire_time:
            raise _unauthenticated("TOKEN_EXPIRED", f"token {record.name} has expired")
        self._note_use(record.token_id, now)
        return Principal(record.principal, "token", record.name)

    async def _record(self, secret: str) -> TokenRecord:
        key = secret_sha256(secret)
        known = self._known.get(key)
        now = self._clock()
        if known is not None and now - known.checked < CACHE_TTL:
            return known.record
        token_id = token_id_of(secret)
        record = None if token_id is None else await self._store.get(token_id)
        if record is None or not secret_matches(secret, record):
            # One answer for malformed, unknown and wrong: nothing to learn from it.
            raise _unauthenticated("TOKEN_INVALID", "the token is not valid")
        if len(self._known) > 10_000:
            self._known.clear()  # bounded: a cache, not a registry of every token seen
        self._known[key] = _Known(record, now)
        return record

    def _note_use(self, token_id: str, now: datetime) -> None:
        last = self._used.get(token_id)
        if last is not None and now - last < USE_RECORD_INTERVAL:
            return
        self._used[token_id] = now
        task = asyncio.get_running_loop().create_task(self._record_use(token_id, now))
        self._writes.add(task)  # keep a reference until it ran
        task.add_done_callback(self._writes.discard)

    async def _record_use(self, token_id: str, when: datetime) -> None:
        try:
            await self._store.record_use(token_id, when)
        except RegistryError as exc:  # a lost last-use time is not worth failing a call
            _log.warning("could not record the use of token %s: %s", token_id, exc.message)


class TokenService:
    """Create, list and revoke tokens."""

    def __init__(
        self,
        store: TokenStore,
        authenticator: Authenticator,
        paginator: Paginator,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._authenticator = authenticator
        self._paginator = paginator
        self._clock = clock

    async def create(
        self, principal: str, description: str, ttl: timedelta | None, actor: Principal
    ) -> tuple[TokenRecord, str]:
        """A new token for ``principal``, and its secret (shown once)."""
        validate_principal(principal)
        validate_description(description)
        validate_ttl(ttl)
        now = self._clock()
        while True:
            token_id, secret = new_secret()
            record = TokenRecord(
                token_id, secret_sha256(secret), principal, description, actor.name, now,
                None if ttl is None else now + ttl, None, None,
            )  # fmt: skip
            if await self._store.insert(record):  # an id collision (2^-64) just draws again
                return record, secret

    async def adopt(self, secret: str, principal: str, description: str) -> TokenRecord:
        """Make sure a token with this secret exists (the bootstrap admin token's file).

        Raises:
            ValueError: ``secret`` is not a token secret, or a token with its id exists
                with another secret.
        """
        token_id = token_id_of(secret)
        if token_id is None:
            raise ValueError("not a token secret (mr1_<16 hex>_<43 characters>)")
        existing = await self._store.get(token_id)
        if existing is not None:
            if not secret_matches(secret, existing):
                raise ValueError(f"token {existing.name} exists with another secret")
            return existing
        record = TokenRecord(
            token_id, secret_sha256(secret), principal, description, "bootstrap",
            self._clock(), None, None, None,
        )  # fmt: skip
        await self._store.insert(record)
        return record

    async def list(
        self, page_size: int, page_token: str, principal: str, show_inactive: bool
    ) -> Page[TokenRecord]:
        """Tokens newest first."""
        if principal:
            validate_principal(principal)
        page = self._paginator.open(
            "ListAccessTokens", page_size, page_token, principal, str(show_inactive)
        )
        active_at = None if show_inactive else self._clock()
        rows, cursor = await self._store.list(principal or None, active_at, page.after, page.limit)
        return self._paginator.page(page, rows, cursor)

    async def revoke(self, name: str, actor: Principal) -> TokenRecord:
        """Revoke a token; revoking a revoked token returns it unchanged."""
        token_id = parse_token_name(name)
        record = await self._store.revoke(token_id, self._clock(), actor.name)
        self._authenticator.forget(token_id)
        if record is None:
            raise NotFound(ACCESS_TOKEN, name)
        return record
