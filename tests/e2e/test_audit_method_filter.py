"""ListAuditEvents' ``method`` filter over real gRPC: exact match, combined with the other
filters, kept by the page token, and validated."""

from __future__ import annotations

import os

import grpc
import pytest

from modelregistry import AsyncClient
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from tests.conftest import RunningRegistry
from tests.support.auth import ADMIN_TOKEN, bearer, create_token
from tests.support.metadata import new_model, push
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def _alias_moves(registry: RunningRegistry) -> list[str]:
    """Make a model with two versions and four alias moves; the versions' names."""
    await new_model(registry, "m")
    first = await push(registry, "m", {"w": os.urandom(16)})
    second = await push(registry, "m", {"w": os.urandom(16)})
    for alias, version in (("staging", first), ("staging", second), ("production", first)):
        await registry.metadata.SetAlias(
            ms.SetAliasRequest(model="models/m", alias=alias, version=version.name)
        )
    bob = bearer(await create_token(registry.target, "bob"))
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=second.name),
        metadata=bob,
    )
    return [first.name, second.name]


async def test_method_filter_lists_only_that_method(registry: RunningRegistry) -> None:
    await _alias_moves(registry)
    moves = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(model="models/m", method="SetAlias")
    )
    assert [e.method for e in moves.audit_events] == ["SetAlias"] * 4
    commits = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(method="CommitModelVersion")
    )
    assert len(commits.audit_events) == 2
    by_bob = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(method="SetAlias", actor="bob")
    )
    assert [(e.actor, e.resource) for e in by_bob.audit_events] == [
        ("bob", "models/m/aliases/production")
    ]
    # Exact match: neither a prefix nor another case.
    for method in ("Set", "SetAliases", "Setalias"):
        none = await registry.metadata.ListAuditEvents(ms.ListAuditEventsRequest(method=method))
        assert list(none.audit_events) == []


async def test_method_filter_pages_and_binds_its_token(registry: RunningRegistry) -> None:
    await _alias_moves(registry)
    seen: list[str] = []
    tokens: list[str] = []
    token = ""
    while True:
        page = await registry.metadata.ListAuditEvents(
            ms.ListAuditEventsRequest(method="SetAlias", page_size=3, page_token=token)
        )
        assert {e.method for e in page.audit_events} <= {"SetAlias"}
        seen += [e.name for e in page.audit_events]
        token = page.next_page_token
        if not token:
            break
        tokens.append(token)
    assert len(seen) == len(set(seen)) == 4
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.ListAuditEvents(
            ms.ListAuditEventsRequest(method="CreateModel", page_size=3, page_token=tokens[0])
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(info.value).reason == "PAGE_TOKEN_INVALID"


@pytest.mark.parametrize("method", ["setAlias", "Set Alias", "SetAlias'--", "A" * 65, "Ä"])
async def test_malformed_method_is_invalid_argument(registry: RunningRegistry, method: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.ListAuditEvents(ms.ListAuditEventsRequest(method=method))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = error_info(info.value)
    assert (detail.reason, detail.metadata["field"]) == ("FIELD_INVALID", "method")


async def test_sdk_lists_one_method(registry: RunningRegistry) -> None:
    await _alias_moves(registry)
    async with AsyncClient(registry.target, token=ADMIN_TOKEN, offline=False) as client:
        events = [e async for e in client.list_audit_events(method="SetAlias", page_size=2)]
    assert [e.method for e in events] == ["SetAlias"] * 4
