"""OIDC end to end: a registry pointed at a JWKS the test wrote (a file, or a loopback URL)
accepts JWTs the test signs, as their principal, and refuses the wrong ones.

Real gRPC, a real PostgreSQL; the issuer is the test (tests/support/oidc.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelregistry.access.v1 import access_service_pb2 as acc
from modelregistry.access.v1 import access_service_pb2_grpc
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2
from modelregistry_server.common.config import ConfigError
from tests.conftest import RunningRegistry, _start_registry
from tests.support.auth import authenticated_channel, bearer, grant
from tests.support.oidc import TestIssuer, ec_key, rsa_key, serve_jwks
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
T = 20.0


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def stranger() -> Any:
    """A key the issuer never published."""
    return rsa_key()


def _flags(issuer: TestIssuer, keys: str) -> list[str]:
    return [
        f"--oidc-issuer={issuer.issuer}", f"--oidc-audience={issuer.audience}", keys,
        "--oidc-algorithms=RS256,ES256",
    ]  # fmt: skip


@pytest.fixture
async def oidc_registry(
    database_url: str, tmp_path: Path, issuer: TestIssuer
) -> AsyncIterator[RunningRegistry]:
    jwks = issuer.write_jwks(tmp_path / "jwks.json")
    flags = _flags(issuer, f"--oidc-jwks-file={jwks}")
    async for running in _start_registry(database_url, tmp_path / "data", flags):
        yield running


async def _whoami(registry: RunningRegistry, jwt: str) -> acc.WhoAmIResponse:
    stub = access_service_pb2_grpc.AccessServiceStub(registry.channel)
    reply: acc.WhoAmIResponse = await stub.WhoAmI(
        acc.WhoAmIRequest(), metadata=bearer(jwt), timeout=T
    )
    return reply


async def test_a_valid_jwt_is_its_principal_with_its_groups(
    oidc_registry: RunningRegistry, issuer: TestIssuer
) -> None:
    me = await _whoami(oidc_registry, issuer.token("rsa-1"))
    assert (me.principal, me.authentication_method, me.token) == ("alice", "oidc", "")
    assert list(me.groups) == ["ml-team", "readers"]
    me = await _whoami(oidc_registry, issuer.token("ec-1", sub="bob", groups=["ops"]))
    assert (me.principal, list(me.groups)) == ("bob", ["ops"])


async def test_registry_tokens_keep_working_beside_oidc(oidc_registry: RunningRegistry) -> None:
    stub = access_service_pb2_grpc.AccessServiceStub(oidc_registry.channel)  # the admin token
    me = await stub.WhoAmI(acc.WhoAmIRequest(), timeout=T)
    assert (me.principal, me.authentication_method) == ("admin", "token")


async def test_the_audit_actor_of_a_jwt_call_is_its_principal(
    oidc_registry: RunningRegistry, issuer: TestIssuer
) -> None:
    # Carol may write through her group: role bindings name OIDC groups as group:<name>.
    async with authenticated_channel(oidc_registry.target) as channel:
        await grant(access_service_pb2_grpc.AccessServiceStub(channel), "group:ml", "writer", "*")
    jwt = issuer.token("rsa-1", sub="carol", groups=["ml"])
    # The spoofed actor header is ignored: the JWT says who is calling.
    metadata = (*bearer(jwt), ("x-modelregistry-actor", "mallory"))
    await oidc_registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="oidc-made", model=model_pb2.Model()),
        metadata=metadata, timeout=T,
    )  # fmt: skip
    page = await oidc_registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(model="models/oidc-made"), timeout=T
    )
    assert [(e.method, e.actor) for e in page.audit_events] == [("CreateModel", "carol")]


def _refused_cases(issuer: TestIssuer, stranger: Any) -> dict[str, tuple[str, str, str]]:
    """Each case: its JWT, the reason it must get, and what the message must say."""
    now = int(time.time())
    return {
        "wrong issuer": (
            issuer.token(iss="https://other-issuer.test"), "TOKEN_INVALID", "wrong issuer",
        ),
        "wrong audience": (issuer.token(aud="another-app"), "TOKEN_INVALID", "wrong audience"),
        "expired": (
            issuer.token(iat=now - 7200, nbf=now - 7200, exp=now - 3600), "TOKEN_EXPIRED",
            "has expired",
        ),
        "signed by another key": (
            issuer.token("rsa-1", key=stranger), "TOKEN_INVALID", "bad signature",
        ),
        "unknown key": (issuer.token("rsa-9", key=stranger), "TOKEN_INVALID", "unknown kid"),
        "not a JWT": ("eyJnot.a.jwt", "TOKEN_INVALID", "not a well-formed JWT"),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case",
    ["wrong issuer", "wrong audience", "expired", "signed by another key", "unknown key",
     "not a JWT"],
)  # fmt: skip
async def test_a_bad_jwt_is_unauthenticated_with_its_reason(
    oidc_registry: RunningRegistry, issuer: TestIssuer, stranger: Any, case: str
) -> None:
    jwt, reason, says = _refused_cases(issuer, stranger)[case]
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await _whoami(oidc_registry, jwt)
    error = excinfo.value
    assert (error.code(), error_info(error).reason) == (grpc.StatusCode.UNAUTHENTICATED, reason)
    details = error.details() or ""
    assert says in details
    assert jwt not in details
    # A metadata call is refused the same way, before its handler runs.
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await oidc_registry.metadata.ListModels(
            ms.ListModelsRequest(), metadata=bearer(jwt), timeout=T
        )
    assert error_info(excinfo.value).reason == reason


async def test_the_keys_can_come_from_a_jwks_url(database_url: str, tmp_path: Path) -> None:
    issuer = TestIssuer(keys={"ec-1": ec_key()})
    with serve_jwks(issuer) as (url, served):
        flags = _flags(issuer, f"--oidc-jwks-url={url}")
        async for registry in _start_registry(database_url, tmp_path / "data", flags):
            assert served[0] == 1  # loaded at start
            me = await _whoami(registry, issuer.token("ec-1", sub="dave"))
            assert me.principal == "dave"
            await _whoami(registry, issuer.token("ec-1", sub="erin"))
            assert served[0] == 1  # not fetched per call


async def test_a_registry_without_oidc_refuses_jwts(
    registry: RunningRegistry, issuer: TestIssuer
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await _whoami(registry, issuer.token())
    assert error_info(excinfo.value).reason == "TOKEN_INVALID"


async def test_a_jwks_file_without_usable_keys_stops_the_start(
    database_url: str, tmp_path: Path, issuer: TestIssuer
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    flags = _flags(issuer, f"--oidc-jwks-file={jwks}")
    with pytest.raises(ConfigError, match="holds no usable public signing key"):
        async for _ in _start_registry(database_url, tmp_path / "data", flags):
            pass
