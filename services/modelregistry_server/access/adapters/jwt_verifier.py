"""``JwtVerifier`` with PyJWT: signature, algorithm allow-list and standard claims.

The algorithm comes from the allow-list, never from the token alone: a JWT whose ``alg`` is
not allowed is refused before any key is looked at, and the key is built for exactly that
algorithm (a key whose JWK names another ``alg`` does not verify it). ``exp`` is required;
``nbf`` and ``iat`` are checked when present; all three with the configured leeway. RSA keys
under 2048 bits are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from modelregistry_server.access.adapters.jwks import SigningKeys
from modelregistry_server.access.app.ports import JwtRejected

# PyJWT's verdicts in words for the caller, most specific first (subclasses before their base).
_WHY: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.ImmatureSignatureError, "not valid yet (nbf or iat is in the future)"),
    (jwt.InvalidIssuedAtError, "its iat claim is not a time"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "its algorithm does not match the signing key"),
    (jwt.InvalidKeyError, "the signing key is unusable or too weak"),
    (jwt.PyJWKError, "the signing key is unusable for its algorithm"),
)


class PyJwtVerifier:
    """Verifies the JWTs of one issuer with the keys of its JWKS."""

    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        audiences: Sequence[str],
        algorithms: Sequence[str],
        leeway_s: float,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audiences = list(audiences)
        self._algorithms = list(algorithms)
        self._leeway = leeway_s

    async def verify(self, token: str) -> Mapping[str, object]:
        """See ``JwtVerifier.verify``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise JwtRejected("it is not a well-formed JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self._algorithms:
            raise JwtRejected(
                f"its algorithm is not one this registry allows ({', '.join(self._algorithms)})"
            )
        if kid is not None and not isinstance(kid, str):
            raise JwtRejected("its kid header is not a string")
        key_set, jwk = await self._keys.find(kid)
        if jwk is None:
            raise JwtRejected(
                "it is signed with a key the issuer does not publish (unknown kid)"
                if kid is not None
                else "it names no signing key (kid) and the issuer publishes several"
            )
        if jwk.get("alg", algorithm) != algorithm:
            raise JwtRejected("its algorithm does not match the signing key")
        try:
            key = key_set.prepared(jwk, algorithm)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audiences,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError:
            raise JwtRejected("it has expired", expired=True) from None
        except jwt.MissingRequiredClaimError as exc:
            raise JwtRejected(f"it has no {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            why = next((w for kind, w in _WHY if isinstance(exc, kind)), None)
            raise JwtRejected(why or "it is not a well-formed JWT") from None
        return claims
