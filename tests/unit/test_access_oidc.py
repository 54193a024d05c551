"""OIDC: the JWT verifier (PyJWT) with keys the test generates, the claim mapping, the cache,
the key set's refresh rules, and the Authenticator handing JWTs to it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from modelregistry_server.access.adapters.jwks import (
    RETRY_EMPTY,
    UNKNOWN_KID_INTERVAL,
    JwksError,
    SigningKeys,
    parse_jwks,
)
from modelregistry_server.access.adapters.jwt_verifier import PyJwtVerifier
from modelregistry_server.access.app.oidc import CACHE_TTL, OidcAuthenticator
from modelregistry_server.access.app.tokens import Authenticator
from modelregistry_server.access.domain.oidc import ClaimMapping
from modelregistry_server.common.kernel.errors import Unauthenticated, Unavailable
from modelregistry_server.common.kernel.identity import Principal
from tests.support.oidc import AUDIENCE, ISSUER, TestIssuer, ec_key, public_jwk, rsa_key
from tests.unit.test_access_tokens import InMemoryTokenStore

pytestmark = pytest.mark.timeout(20)


class MemorySource:
    """A JWKS source the test controls: what it serves, whether it fails, how often it is read."""

    description = "test JWKS"

    def __init__(self, issuer: TestIssuer) -> None:
        self.issuer = issuer
        self.reads = 0
        self.failing = False

    async def read(self) -> bytes:
        self.reads += 1
        if self.failing:
            raise JwksError("cannot fetch test JWKS: connection refused")
        return json.dumps(self.issuer.jwks()).encode()


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.now = datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.now += timedelta(seconds=seconds)


class World:
    def __init__(
        self,
        algorithms: tuple[str, ...] = ("RS256", "ES256"),
        mapping: ClaimMapping | None = None,
        leeway: float = 60,
    ) -> None:
        self.issuer = TestIssuer()
        self.source = MemorySource(self.issuer)
        self.clock = Clock()
        self.keys = SigningKeys(self.source, clock=lambda: self.clock.mono)
        verifier = PyJwtVerifier(self.keys, ISSUER, [AUDIENCE], algorithms, leeway)
        self.oidc = OidcAuthenticator(
            verifier, mapping or ClaimMapping(), ISSUER, clock=lambda: self.clock.now
        )
        self.store = InMemoryTokenStore()
        self.auth = Authenticator(self.store, clock=lambda: self.clock.now, oidc=self.oidc)

    async def whoami(self, token: str) -> Principal:
        return await self.auth.authenticate(f"Bearer {token}")

    async def refused(self, token: str, reason: str = "TOKEN_INVALID") -> str:
        with pytest.raises(Unauthenticated) as excinfo:
            await self.whoami(token)
        assert excinfo.value.reason == reason
        assert token not in excinfo.value.message
        return excinfo.value.message


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    # RSA key generation takes a while: once for the module.
    return {"rsa-1": rsa_key(), "ec-1": ec_key(), "other": rsa_key(), "weak": rsa_key(1024)}


@pytest.fixture
def world(keys: dict[str, Any]) -> World:
    w = World()
    w.issuer.keys = {"rsa-1": keys["rsa-1"], "ec-1": keys["ec-1"]}
    return w


async def test_a_valid_rs256_jwt_is_its_subject_with_its_groups(world: World) -> None:
    principal = await world.whoami(world.issuer.token("rsa-1"))
    assert principal == Principal("alice", "oidc", groups=frozenset({"ml-team", "readers"}))


async def test_a_valid_es256_jwt_is_accepted_when_es256_is_allowed(world: World) -> None:
    principal = await world.whoami(world.issuer.token("ec-1", sub="bob", groups=None))
    assert principal == Principal("bob", "oidc")


async def test_an_algorithm_outside_the_allow_list_is_refused(keys: dict[str, Any]) -> None:
    world = World(algorithms=("RS256",))
    world.issuer.keys = {"rsa-1": keys["rsa-1"], "ec-1": keys["ec-1"]}
    message = await world.refused(world.issuer.token("ec-1"))
    assert "algorithm is not one this registry allows (RS256)" in message


async def test_a_wrong_issuer_is_refused_and_says_so(world: World) -> None:
    message = await world.refused(world.issuer.token(iss="https://evil.test"))
    assert "wrong issuer" in message
    assert "evil.test" not in message


async def test_a_wrong_audience_is_refused_and_says_so(world: World) -> None:
    message = await world.refused(world.issuer.token(aud="another-app"))
    assert "wrong audience" in message


async def test_an_expired_jwt_is_token_expired(world: World) -> None:
    now = int(time.time())
    message = await world.refused(
        world.issuer.token(iat=now - 3600, nbf=now - 3600, exp=now - 120), "TOKEN_EXPIRED"
    )
    assert "has expired" in message
    assert ISSUER in message


async def test_an_expiry_within_the_leeway_is_accepted_but_not_cached(world: World) -> None:
    now = int(time.time())
    token = world.issuer.token(iat=now - 600, nbf=now - 600, exp=now - 30)
    assert (await world.whoami(token)).name == "alice"
    assert world.oidc._accepted == {}  # past its exp: checked again on every call


async def test_a_jwt_not_valid_yet_is_refused(world: World) -> None:
    now = int(time.time())
    message = await world.refused(world.issuer.token(nbf=now + 600))
    assert "not valid yet" in message
    message = await world.refused(world.issuer.token(iat=now + 600))
    assert "not valid yet" in message


async def test_a_jwt_signed_by_another_key_under_a_known_kid_is_refused(
    world: World, keys: dict[str, Any]
) -> None:
    message = await world.refused(world.issuer.token("rsa-1", key=keys["other"]))
    assert "bad signature" in message


async def test_an_unknown_kid_is_refused(world: World, keys: dict[str, Any]) -> None:
    message = await world.refused(world.issuer.token("stranger", key=keys["other"]))
    assert "unknown kid" in message


async def test_hs256_signed_with_the_public_key_is_refused(world: World) -> None:
    # The classic algorithm confusion: the public key (known to all) as an HMAC secret.
    public_pem = (
        world.issuer.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    # PyJWT refuses to make one, so it is made by hand.
    forged = _hmac_jwt(world.issuer.claims(), public_pem, "rsa-1")
    message = await world.refused(forged)
    assert "algorithm is not one this registry allows" in message


def _hmac_jwt(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


async def test_an_unsigned_jwt_is_refused(world: World) -> None:
    unsigned = jwt.encode(world.issuer.claims(), "", algorithm="none", headers={"kid": "rsa-1"})
    message = await world.refused(unsigned)
    assert "algorithm is not one this registry allows" in message


async def test_a_jwt_without_exp_is_refused(world: World) -> None:
    message = await world.refused(world.issuer.token(exp=None))
    assert "no exp claim" in message


async def test_garbage_is_refused_as_malformed(world: World) -> None:
    assert "not a well-formed JWT" in await world.refused("not-a-jwt")
    assert "not a well-formed JWT" in await world.refused("x.y.z")
    assert "no signing key (kid)" in await world.refused("eyJhbGciOiJSUzI1NiJ9.e30.AAAA")


async def test_a_weak_rsa_key_is_refused(world: World, keys: dict[str, Any]) -> None:
    world.issuer.keys["weak"] = keys["weak"]
    with pytest.warns(jwt.InsecureKeyLengthWarning):  # PyJWT signs, warning
        weak = world.issuer.token("weak")
    message = await world.refused(weak)
    assert "too weak" in message


async def test_a_jwk_for_another_algorithm_does_not_verify(keys: dict[str, Any]) -> None:
    world = World(algorithms=("RS256", "PS256"))
    world.issuer.keys = {"rsa-1": keys["rsa-1"]}
    ps_only = public_jwk(keys["rsa-1"], "rsa-1", alg="PS256")
    world.source.issuer = _Fixed({"keys": [ps_only]})  # type: ignore[assignment]
    message = await world.refused(world.issuer.token("rsa-1", algorithm="RS256"))
    assert "does not match the signing key" in message
    assert (await world.whoami(world.issuer.token("rsa-1", algorithm="PS256"))).name == "alice"


class _Fixed:
    def __init__(self, jwks: dict[str, Any]) -> None:
        self._jwks = jwks

    def jwks(self) -> dict[str, Any]:
        return self._jwks


async def test_the_principal_claim_and_prefix_are_configurable(keys: dict[str, Any]) -> None:
    world = World(mapping=ClaimMapping("email", "roles", "oidc:"))
    world.issuer.keys = {"rsa-1": keys["rsa-1"]}
    principal = await world.whoami(world.issuer.token(roles=["admins", 7, "", "with space"]))
    assert principal == Principal("oidc:alice@example.com", "oidc", groups=frozenset({"admins"}))
    message = await world.refused(world.issuer.token(email=None))
    assert "'email' claim is missing or not a usable principal name" in message
    await world.refused(world.issuer.token(email="two words"))
    await world.refused(world.issuer.token(email=["a list"]))


async def test_groups_that_are_not_a_list_mean_no_groups(world: World) -> None:
    principal = await world.whoami(world.issuer.token(groups="ml-team"))
    assert principal.groups == frozenset()


async def test_an_accepted_jwt_is_cached_for_ten_seconds_at_most(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = world.oidc._verifier
    checks: list[str] = []

    async def counting(token: str) -> Any:
        checks.append(token)
        return await PyJwtVerifier.verify(verifier, token)  # type: ignore[arg-type]

    monkeypatch.setattr(verifier, "verify", counting)
    token = world.issuer.token()
    await world.whoami(token)
    world.clock.advance(CACHE_TTL.total_seconds() - 1)
    assert (await world.whoami(token)).name == "alice"
    assert len(checks) == 1
    world.clock.advance(1)
    assert (await world.whoami(token)).name == "alice"
    assert len(checks) == 2


async def test_a_cached_jwt_is_not_accepted_past_its_exp(world: World) -> None:
    token = world.issuer.token(exp=int(world.clock.now.timestamp()) + 3)
    await world.whoami(token)
    assert world.oidc._accepted.popitem()[1].until <= world.clock.now + timedelta(seconds=3)


async def test_an_unknown_kid_reloads_the_jwks_at_most_once_a_minute(
    world: World, keys: dict[str, Any]
) -> None:
    await world.whoami(world.issuer.token())
    assert world.source.reads == 1
    rotated = world.issuer.token("rsa-2", key=keys["other"])
    await world.refused(rotated)  # the set was loaded under a minute ago: not again
    assert world.source.reads == 1
    world.clock.advance(UNKNOWN_KID_INTERVAL)
    await world.refused(rotated)  # unknown: the set is reloaded, still without it
    assert world.source.reads == 2
    world.issuer.keys["rsa-2"] = keys["other"]  # the issuer publishes its new key
    await world.refused(rotated)  # within the minute: no reload
    assert world.source.reads == 2
    world.clock.advance(UNKNOWN_KID_INTERVAL)
    assert (await world.whoami(rotated)).name == "alice"
    assert world.source.reads == 3


async def test_the_jwks_is_reloaded_every_five_minutes(world: World) -> None:
    await world.whoami(world.issuer.token())
    world.clock.advance(299)
    await world.whoami(world.issuer.token(sub="b"))
    assert world.source.reads == 1
    world.clock.advance(1)
    await world.whoami(world.issuer.token(sub="c"))
    assert world.source.reads == 2


async def test_a_failed_reload_keeps_the_keys_it_had(world: World) -> None:
    await world.whoami(world.issuer.token())
    world.source.failing = True
    world.clock.advance(600)
    assert (await world.whoami(world.issuer.token(sub="b"))).name == "b"
    assert world.source.reads == 2


async def test_no_keys_at_all_is_unavailable_and_retried_soon(world: World) -> None:
    world.source.failing = True
    with pytest.raises(Unavailable) as excinfo:
        await world.whoami(world.issuer.token())
    assert excinfo.value.reason == "OIDC_KEYS_UNAVAILABLE"
    world.source.failing = False
    with pytest.raises(Unavailable):  # not retried at once
        await world.whoami(world.issuer.token())
    world.clock.advance(RETRY_EMPTY)
    assert (await world.whoami(world.issuer.token())).name == "alice"


async def test_registry_tokens_still_go_to_the_token_store(world: World) -> None:
    forged = "mr1_0123456789abcdef_" + "A" * 43
    await world.refused(forged)
    assert world.store.gets == 1
    assert world.source.reads == 0


async def test_without_oidc_a_jwt_is_token_invalid() -> None:
    issuer = TestIssuer(keys={"rsa-1": rsa_key()})
    auth = Authenticator(InMemoryTokenStore())
    with pytest.raises(Unauthenticated) as excinfo:
        await auth.authenticate(f"Bearer {issuer.token()}")
    assert excinfo.value.reason == "TOKEN_INVALID"
    assert "OIDC" not in excinfo.value.message


def test_the_jwks_parser_keeps_only_public_signing_keys(keys: dict[str, Any]) -> None:
    good = public_jwk(keys["rsa-1"], "good")
    document = {
        "keys": [
            good,
            {**public_jwk(keys["ec-1"], "enc"), "use": "enc"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not a key",
        ]
    }
    key_set = parse_jwks(json.dumps(document).encode(), "test")
    assert set(key_set.by_kid) == {"good"}
    assert key_set.find(None) == good  # a lone key serves a JWT without kid
    for bad in (b"[]", b"{", b'{"keys": []}', b'{"keys": [{"kty": "oct", "k": "eA"}]}'):
        with pytest.raises(JwksError):
            parse_jwks(bad, "test")
