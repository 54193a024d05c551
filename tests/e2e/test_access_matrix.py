"""Every RPC of every service, called with every kind of credential, gets what the permission
table says: ``UNAUTHENTICATED`` without a valid credential, ``PERMISSION_DENIED`` without the
role, and otherwise gets past authorization (whatever the call itself then answers).

The RPCs come from the service descriptors and the expectations from ``RULES``: a new RPC
without a request here or without a rule there fails the suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from modelregistry.access.v1 import access_service_pb2 as acc
from modelregistry.artifact.v1 import artifact_service_pb2 as art
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry_server.access.domain.policy import ROLE_PERMISSIONS, Role
from modelregistry_server.access.rpc.permissions import RULES, Rule
from tests.conftest import RunningRegistry
from tests.support.auth import bearer, create_token
from tests.support.metadata import new_model, new_version, push
from tests.support.rpc_requests import FILE, MODEL, requests_by_rpc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SERVICES: list[ServiceDescriptor] = [
    ms.DESCRIPTOR.services_by_name["MetadataService"],
    art.DESCRIPTOR.services_by_name["ArtifactService"],
    acc.DESCRIPTOR.services_by_name["AccessService"],
]
T = 10.0


async def _one(request: Message) -> AsyncIterator[Message]:
    yield request


def _methods() -> list[tuple[ServiceDescriptor, MethodDescriptor]]:
    return [(service, method) for service in SERVICES for method in service.methods]


def test_every_rpc_has_a_request_and_a_rule() -> None:
    names = {method.name for _, method in _methods()}
    assert set(requests_by_rpc()) == names
    assert {f"/{s.full_name}/{m.name}" for s, m in _methods()} == set(RULES)


async def _call(
    channel: grpc.aio.Channel,
    service: ServiceDescriptor,
    method: MethodDescriptor,
    request: Message,
    metadata: tuple[tuple[str, str], ...],
) -> grpc.StatusCode:
    """The status the call ends with; a stream that is still open after ``T`` counts as OK."""
    path = f"/{service.full_name}/{method.name}"
    serialize = type(request).SerializeToString
    parse = message_factory.GetMessageClass(method.output_type)
    kwargs: dict[str, Any] = {
        "request_serializer": serialize,
        "response_deserializer": parse.FromString,
    }
    try:
        if method.client_streaming:
            rpc = channel.stream_unary(path, **kwargs)
            await rpc(_one(request), metadata=metadata, timeout=T)
        elif method.server_streaming:
            stream = channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=2)
            try:
                async for _ in stream:
                    break
            finally:
                stream.cancel()
        else:
            await channel.unary_unary(path, **kwargs)(request, metadata=metadata, timeout=T)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
            return grpc.StatusCode.OK  # a watch waiting for events: it got past authorization
        return exc.code()
    return grpc.StatusCode.OK


@dataclass(frozen=True)
class Credential:
    """One column of the matrix: how the calls authenticate and what they may do."""

    name: str
    role: Role | None  # None: the credential itself is refused
    scope: str = "*"


CREDENTIALS = [
    Credential("none", None),
    Credential("malformed", None),
    Credential("expired", None),
    Credential("revoked", None),
    *(Credential(role.value, role) for role in Role),
    # A maintainer of another model: nothing of model m, and nothing registry-wide.
    Credential("maintainer-of-other", Role.MAINTAINER, "other"),
]


def _expected(rule: Rule, credential: Credential) -> str:
    if credential.role is None:
        return "UNAUTHENTICATED"
    if rule.permission is None:
        return "allowed"
    granted = rule.permission in ROLE_PERMISSIONS[credential.role]
    if credential.scope == "*":
        return "allowed" if granted else "PERMISSION_DENIED"
    # Scoped to another model: only "anywhere" rules (listings, uploads) can pass.
    return "allowed" if granted and rule.scope == "anywhere" else "PERMISSION_DENIED"


async def _metadata_for(registry: RunningRegistry, credential: Credential) -> Any:
    if credential.name == "none":
        return ()
    if credential.name == "malformed":
        return bearer("not a token")
    secret = await create_token(
        registry.target, f"matrix-{credential.name}",
        None if credential.role is None else credential.role.value, credential.scope,
    )  # fmt: skip
    if credential.name in ("expired", "revoked"):
        url = registry.server.config.database_url
        assert url is not None
        conn = await asyncpg.connect(url)
        try:
            column = "expire_time" if credential.name == "expired" else "revoke_time"
            await conn.execute(
                f"UPDATE access.tokens SET {column} = now() - interval '1 hour' "  # noqa: S608
                "WHERE principal = $1",
                f"matrix-{credential.name}",
            )
        finally:
            await conn.close()
    return bearer(secret)


@pytest.fixture
async def world(registry: RunningRegistry) -> RunningRegistry:
    """Model m with READY version 1 (holding the blob the requests name) as production, and
    PENDING version 2 (uploads name it)."""
    await new_model(registry, "m")
    version = await push(registry, "m", {"w.bin": FILE})
    await new_version(registry, "m")
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model=MODEL, alias="production", version=version.name)
    )
    return registry


@pytest.mark.parametrize("credential", CREDENTIALS, ids=lambda c: c.name)
async def test_every_rpc_answers_as_the_permission_table_says(
    world: RunningRegistry, credential: Credential
) -> None:
    metadata = await _metadata_for(world, credential)
    requests = requests_by_rpc()
    outcomes: dict[str, tuple[str, str]] = {}
    # Everything but the deletes first, so a delete a role may make cannot change the others.
    ordered = sorted(_methods(), key=lambda sm: sm[1].name.startswith(("Delete", "Revoke")))
    async with grpc.aio.insecure_channel(world.target) as channel:
        for service, method in ordered:
            code = await _call(channel, service, method, requests[method.name], metadata)
            got = code.name if code.name in ("UNAUTHENTICATED", "PERMISSION_DENIED") else "allowed"
            rule = RULES[f"/{service.full_name}/{method.name}"]
            outcomes[method.name] = (got, _expected(rule, credential))
    wrong = {name: pair for name, pair in outcomes.items() if pair[0] != pair[1]}
    assert wrong == {}, f"(got, expected) per RPC for {credential.name}"
    assert len(outcomes) == len(RULES)
