"""OpenID Connect: a JWT of the configured issuer authenticates a call as its principal.

The ``Authenticator`` hands every bearer value that is not a token of this registry to
``OidcAuthenticator.authenticate`` (when OIDC is configured). The JWT library sits behind the
``JwtVerifier`` port; this module turns its verdict into a ``Principal`` or the error the caller
sees, and remembers an accepted JWT until its expiry, at most ``CACHE_TTL``, so that a client
making many calls with one JWT pays for one signature check every few seconds.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelregistry_server.access.app.ports import JwtRejected, JwtVerifier, SigningKeysUnavailable
from modelregistry_server.access.domain.oidc import (
    ClaimMapping,
    ClaimRejected,
    identity_from_claims,
)
from modelregistry_server.common.kernel.errors import Unauthenticated, Unavailable
from modelregistry_server.common.kernel.identity import Principal

_log = logging.getLogger(__name__)
CACHE_TTL = timedelta(seconds=10)
_CACHE_LIMIT = 10_000
OIDC_KEYS_UNAVAILABLE = "OIDC_KEYS_UNAVAILABLE"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Accepted:
    principal: Principal
    until: datetime


class OidcAuthenticator:
    """Turns a JWT of the configured issuer into a ``Principal`` (method ``oidc``)."""

    def __init__(
        self,
        verifier: JwtVerifier,
        mapping: ClaimMapping,
        issuer: str,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._verifier = verifier
        self._mapping = mapping
        self._issuer = issuer
        self._clock = clock
        self._accepted: dict[str, _Accepted] = {}  # by the JWT's SHA-256

    async def authenticate(self, token: str) -> Principal:
        """The principal ``token`` (a JWT) names.

        Raises:
            Unauthenticated: ``TOKEN_EXPIRED`` for an expired JWT, ``TOKEN_INVALID`` for any
                other fault (the message says which check failed, never the token).
            Unavailable: ``OIDC_KEYS_UNAVAILABLE``: the issuer's keys could not be loaded.
        """
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        accepted = self._accepted.get(key)
        if accepted is not None and now < accepted.until:
            return accepted.principal
        try:
            claims = await self._verifier.verify(token)
            name, groups = identity_from_claims(claims, self._mapping)
        except JwtRejected as exc:
            _log.debug("OIDC token rejected: %s", exc.why)
            if exc.expired:
                raise Unauthenticated(
                    f"the OIDC token has expired: sign in to {self._issuer} again for a new one",
                    reason="TOKEN_EXPIRED",
                ) from None
            raise self._invalid(exc.why) from None
        except ClaimRejected as exc:
            raise self._invalid(str(exc)) from None
        except SigningKeysUnavailable:
            raise Unavailable(
                "the OIDC issuer's signing keys cannot be loaded now; retry later",
                reason=OIDC_KEYS_UNAVAILABLE,
            ) from None
        principal = Principal(name, "oidc", groups=groups)
        self._remember(key, principal, claims.get("exp"), now)
        return principal

    def _invalid(self, why: str) -> Unauthenticated:
        return Unauthenticated(
            f"the OIDC token was not accepted: {why} (this registry accepts JWTs of "
            f"{self._issuer} for its configured audience)",
            reason="TOKEN_INVALID",
        )

    def _remember(self, key: str, principal: Principal, exp: object, now: datetime) -> None:
        if not isinstance(exp, int | float):
            return  # the verifier requires exp; without one nothing bounds the entry
        seconds = min(float(exp) - now.timestamp(), CACHE_TTL.total_seconds())
        if seconds <= 0:
            return  # accepted within the clock-skew leeway only: check it every time
        until = now + timedelta(seconds=seconds)
        if len(self._accepted) >= _CACHE_LIMIT:
            self._accepted.clear()  # bounded: a cache, not a registry of every JWT seen
        self._accepted[key] = _Accepted(principal, until)
