"""The access service's cases of the error-reason catalogue (see test_reason_catalogue.py).

The authentication reasons come from the edge, before any handler: each case calls
``WhoAmI``, but any method of any service (except health and reflection) answers the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc

from modelregistry.access.v1 import access_service_pb2 as acc
from modelregistry.access.v1 import access_service_pb2_grpc
from tests.support.auth import bearer, create_token
from tests.support.oidc import TestIssuer, rsa_key
from tests.support.reason_cases import (
    INVALID,
    NOT_FOUND,
    UNAVAILABLE,
    CaseSpec,
    Env,
    T,
    registrar,
    send_raw,
    stop_database,
)

if TYPE_CHECKING:
    from modelregistry.access.v1.access_service_pb2_grpc import AccessServiceAsyncStub

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
CASES: dict[tuple[str, str], CaseSpec] = {}
_case = registrar(CASES, "access")


def _access(env: Env) -> AccessServiceAsyncStub:
    stub: AccessServiceAsyncStub = access_service_pb2_grpc.AccessServiceStub(env.registry.channel)
    return stub


@_case("TOKEN_MISSING", UNAUTHENTICATED)
async def _token_missing(env: Env) -> None:
    # A bare channel: no credential at all.
    async with grpc.aio.insecure_channel(env.registry.target) as channel:
        stub: AccessServiceAsyncStub = access_service_pb2_grpc.AccessServiceStub(channel)
        await stub.WhoAmI(acc.WhoAmIRequest(), timeout=T)


@_case("TOKEN_INVALID", UNAUTHENTICATED)
async def _token_invalid(env: Env) -> None:
    forged = "mr1_0123456789abcdef_" + "A" * 43
    await _access(env).WhoAmI(acc.WhoAmIRequest(), metadata=bearer(forged), timeout=T)


@_case("TOKEN_EXPIRED", UNAUTHENTICATED)
async def _token_expired(env: Env) -> None:
    secret = await create_token(env.registry.target, "short-lived")
    conn = await asyncpg.connect(env.database_url)
    try:  # as if a day had passed since it expired
        await conn.execute("UPDATE access.tokens SET expire_time = now() - interval '1 day'")
    finally:
        await conn.close()
    await _access(env).WhoAmI(acc.WhoAmIRequest(), metadata=bearer(secret), timeout=T)


@_case("TOKEN_REVOKED", UNAUTHENTICATED)
async def _token_revoked(env: Env) -> None:
    created = await _access(env).CreateAccessToken(
        acc.CreateAccessTokenRequest(principal="leaver"), timeout=T
    )
    await _access(env).RevokeAccessToken(
        acc.RevokeAccessTokenRequest(name=created.access_token.name), timeout=T
    )
    await _access(env).WhoAmI(acc.WhoAmIRequest(), metadata=bearer(created.secret), timeout=T)


@_case("FIELD_INVALID", INVALID)
async def _access_field_invalid(env: Env) -> None:
    await _access(env).CreateAccessToken(
        acc.CreateAccessTokenRequest(principal="has spaces"), timeout=T
    )


@_case("ACCESS_TOKEN_NOT_FOUND", NOT_FOUND)
async def _access_token_not_found(env: Env) -> None:
    await _access(env).RevokeAccessToken(
        acc.RevokeAccessTokenRequest(name="tokens/0123456789abcdef"), timeout=T
    )


@_case("PAGE_TOKEN_INVALID", INVALID)
async def _access_page_token_invalid(env: Env) -> None:
    await _access(env).ListAccessTokens(
        acc.ListAccessTokensRequest(page_token="not-a-token"), timeout=T
    )


@_case("DATABASE_UNAVAILABLE", UNAVAILABLE)
async def _access_database_unavailable(env: Env) -> None:
    await stop_database(env)
    await _access(env).ListAccessTokens(acc.ListAccessTokensRequest(), timeout=T)


@_case("PERMISSION_DENIED", grpc.StatusCode.PERMISSION_DENIED)
async def _permission_denied(env: Env) -> None:
    # A viewer of one model may not administer the registry.
    viewer = await create_token(env.registry.target, "viewer-of-m", "viewer", "m")
    await _access(env).ListAccessTokens(
        acc.ListAccessTokensRequest(), metadata=bearer(viewer), timeout=T
    )


@_case("ROLE_BINDING_NOT_FOUND", NOT_FOUND)
async def _role_binding_not_found(env: Env) -> None:
    await _access(env).DeleteRoleBinding(
        acc.DeleteRoleBindingRequest(name="roleBindings/0123456789abcdef"), timeout=T
    )


@_case("OIDC_KEYS_UNAVAILABLE", UNAVAILABLE, setup="oidc_keys_down")
async def _oidc_keys_unavailable(env: Env) -> None:
    jwt = TestIssuer(keys={"rsa-1": rsa_key()}).token()
    await _access(env).WhoAmI(acc.WhoAmIRequest(), metadata=bearer(jwt), timeout=T)


@_case("REQUEST_MALFORMED", INVALID)
async def _access_request_malformed(env: Env) -> None:
    await send_raw(env, "/modelregistry.access.v1.AccessService/WhoAmI")
