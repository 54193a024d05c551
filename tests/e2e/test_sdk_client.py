"""The SDK (Client and AsyncClient) against a real in-process registry and PostgreSQL.

The registry runs on the test's event loop, so every blocking ``Client`` call is made from a
worker thread (``asyncio.to_thread``); calling it on the loop would deadlock the server.
"""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from modelregistry import (
    AlreadyExistsError,
    AsyncClient,
    Client,
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    RetryPolicy,
    UnavailableError,
    VersionDiff,
)
from modelregistry._pager import Pager
from modelregistry.metadata.v1 import model_event_pb2, model_version_pb2
from modelregistry_server.common.adapters.embedded_postgres import free_loopback_port
from tests.conftest import RunningRegistry
from tests.support.sdk import off_loop, push_version

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
T = TypeVar("T")
READY = model_version_pb2.MODEL_VERSION_STATE_READY
DELETED = model_version_pb2.MODEL_VERSION_STATE_DELETED
ALIAS_MOVED = model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED
# Reconnect quickly in tests; the default backoff is tuned for real outages.
FAST_RECONNECT = RetryPolicy(max_attempts=5, initial_backoff_s=0.05, max_backoff_s=0.5)


async def test_create_get_and_list_models_with_paging(client: Client) -> None:
    names = ["m-e", "m-c", "m-a", "m-d", "m-b"]

    def scenario() -> None:
        for name in names:
            created = client.create_model(name, description=f"about {name}", labels={"t": "x"})
            assert created.name == f"models/{name}"
        assert client.get_model("m-c").description == "about m-c"
        assert client.get_model("models/m-c").uid == client.get_model("m-c").uid
        listed = [m.name for m in client.list_models(page_size=2)]
        assert listed == [f"models/{n}" for n in sorted(names)]
        pager = client.list_models(page_size=2)
        assert isinstance(pager, Pager)
        assert [len(page.models) for page in pager.pages()] == [2, 2, 1]
        newest_first = client.list_models(order_by="name desc", page_size=2)
        assert next(newest_first).name == "models/m-e"
        filtered = [m.name for m in client.list_models(filter='name = "models/m-a"')]
        assert filtered == ["models/m-a"]

    await off_loop(scenario)


async def test_resolve_by_every_reference_form(registry: RunningRegistry, client: Client) -> None:
    await off_loop(lambda: client.create_model("resnet"))
    v1 = await push_version(registry, "resnet", {"w.bin": os.urandom(64), "config.json": b"{}"})
    v2 = await push_version(registry, "resnet", {"w.bin": os.urandom(64)})

    def scenario() -> None:
        client.set_alias("resnet", "production", 1)
        by_ref = {
            "resnet": v2.name,
            "models/resnet": v2.name,
            "resnet@production": v1.name,
            "models/resnet@production": v1.name,
            "resnet:1": v1.name,
            "resnet/versions/2": v2.name,
            "models/resnet/versions/1": v1.name,
            v1.uid: v1.name,
            v2.uid.upper(): v2.name,
        }
        for ref, expected in by_ref.items():
            resolved = client.resolve(ref)
            assert resolved.name == expected, ref
            assert resolved.state == READY
            assert resolved.files, "resolve returns the manifest"
        assert {f.path for f in client.resolve("resnet:1").files} == {"w.bin", "config.json"}
        assert client.get_version("resnet", 2).uid == v2.uid

    await off_loop(scenario)


async def test_resolve_as_of_a_past_time(registry: RunningRegistry, client: Client) -> None:
    await off_loop(lambda: client.create_model("m"))
    await push_version(registry, "m", {"a": b"1"})
    await push_version(registry, "m", {"a": b"2"})

    def scenario() -> None:
        client.set_alias("m", "production", 1)
        between = datetime.now(UTC)
        threading.Event().wait(0.05)  # a clear gap in the audit log's timestamps
        client.set_alias("m", "production", 2)
        assert client.resolve("m@production").version == 2
        assert client.resolve("m@production", as_of=between).version == 1

    await off_loop(scenario)


async def test_aliases_versions_diff_audit_and_gc(
    registry: RunningRegistry, client: Client
) -> None:
    await off_loop(lambda: client.create_model("fraud"))
    shared = os.urandom(128)
    await push_version(
        registry,
        "fraud",
        {"w.bin": os.urandom(64), "shared.bin": shared, "old.txt": b"old"},
        params={"lr": 0.1, "epochs": 10, "amp": True},
        metrics={"auc": 0.9},
    )
    await push_version(
        registry,
        "fraud",
        {"w.bin": os.urandom(64), "shared.bin": shared, "new.txt": b"new"},
        params={"lr": 0.05, "epochs": 10, "amp": False},
        metrics={"auc": 0.93},
    )

    def scenario() -> None:
        _aliases_step(client)
        _diff_step(client)
        _update_and_delete_step(client)
        _audit_step(client)
        _gc_and_delete_model_step(client)

    await off_loop(scenario)


def _aliases_step(client: Client) -> None:
    alias = client.set_alias("fraud", "production", 1)
    assert alias.name == "models/fraud/aliases/production"
    assert alias.version == "models/fraud/versions/1"
    client.set_alias("fraud", "staging", 2)
    assert [a.name.rsplit("/", 1)[1] for a in client.list_aliases("fraud")] == [
        "production",
        "staging",
    ]
    client.delete_alias("fraud", "staging")
    assert [a.version for a in client.list_aliases("models/fraud")] == ["models/fraud/versions/1"]
    with pytest.raises(NotFoundError) as info:
        client.delete_alias("fraud", "staging")
    assert info.value.reason == "ALIAS_NOT_FOUND"


def _diff_step(client: Client) -> None:
    diff = client.diff("fraud@production", "fraud:2")
    assert isinstance(diff, VersionDiff)
    assert diff.params == {"lr": (0.1, 0.05), "amp": (True, False)}
    assert diff.metrics == {"auc": (0.9, 0.93)}
    assert diff.files_added == ["new.txt"]
    assert diff.files_removed == ["old.txt"]
    assert diff.files_changed == ["w.bin"]
    assert diff.files_unchanged == 1
    assert diff.to_dict()["a"]["name"] == "models/fraud/versions/1"


def _update_and_delete_step(client: Client) -> None:
    updated = client.update_version("fraud", 2, description="card", labels={"k": "v"})
    assert updated.description == "card"
    assert dict(updated.labels) == {"k": "v"}
    relabelled = client.update_version("fraud", 2, labels={})
    assert relabelled.description == "card"  # untouched: only labels was in the mask
    assert dict(relabelled.labels) == {}
    versions = [v.version for v in client.list_versions("fraud", page_size=1)]
    assert versions == [2, 1]
    assert client.delete_version("fraud", 2).state == model_version_pb2.MODEL_VERSION_STATE_DELETED
    assert [v.version for v in client.list_versions("fraud")] == [1]
    assert [v.version for v in client.list_versions("fraud", show_deleted=True)] == [2, 1]


def _audit_step(client: Client) -> None:
    events = list(client.list_audit_events(model="fraud", order_by="event_time asc"))
    methods = [e.method for e in events]
    assert methods[0] == "CreateModel"
    assert methods.count("SetAlias") == 2
    assert "DeleteAlias" in methods
    assert "DeleteModelVersion" in methods
    mine = list(client.list_audit_events(actor="sdk-tester", page_size=2))
    assert {e.actor for e in mine} == {"sdk-tester"}
    assert len(mine) == len([e for e in events if e.actor == "sdk-tester"])
    assert all(e.request_id for e in mine), "every SDK mutation carries a request_id"
    future = list(client.list_audit_events(start=datetime.now(UTC) + timedelta(hours=1)))
    assert future == []


def _gc_and_delete_model_step(client: Client) -> None:
    gc = client.run_gc(dry_run=True)
    assert gc.dry_run
    assert client.run_gc(dry_run=True, grace_period=timedelta(days=3)).dry_run

    with pytest.raises(FailedPreconditionError) as refused:
        client.delete_model("fraud")
    assert refused.value.reason == "MODEL_HAS_VERSIONS"
    client.delete_model("fraud", force=True)
    with pytest.raises(NotFoundError):
        client.get_model("fraud")


async def test_set_alias_compare_and_set_conflict_raises_conflict_error(
    registry: RunningRegistry, client: Client
) -> None:
    await off_loop(lambda: client.create_model("m"))
    [await push_version(registry, "m", {"w.bin": os.urandom(32)}) for _ in range(2)]

    def scenario() -> None:
        client.set_alias("m", "production", 1)
        client.set_alias("m", "production", 2, expected_version=1)
        with pytest.raises(ConflictError) as info:
            client.set_alias("m", "production", 1, expected_version=1)
        assert info.value.reason == "ALIAS_VERSION_MISMATCH"
        assert client.resolve("m@production").name == "models/m/versions/2"

    await off_loop(scenario)


async def test_typed_errors(client: Client) -> None:
    def scenario() -> None:
        with pytest.raises(NotFoundError) as missing:
            client.get_model("no-such-model")
        assert missing.value.reason == "MODEL_NOT_FOUND"
        assert missing.value.exit_code == 3
        with pytest.raises(NotFoundError):
            client.resolve("no-such-model@production")
        with pytest.raises(InvalidArgumentError) as bad_ref:
            client.resolve("Not A Ref!")
        assert bad_ref.value.reason == "REFERENCE_INVALID"
        assert bad_ref.value.exit_code == 2
        client.create_model("dup")
        with pytest.raises(AlreadyExistsError) as exists:
            client.create_model("dup")
        assert exists.value.reason == "MODEL_ALREADY_EXISTS"
        assert exists.value.exit_code == 4

    await off_loop(scenario)


async def test_closed_port_is_unavailable_after_quick_retries() -> None:
    target = f"127.0.0.1:{free_loopback_port()}"
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)

    def scenario() -> None:
        with Client(target, retry=policy, timeout=5, offline=False) as client:
            with pytest.raises(UnavailableError) as info:
                client.get_model("m")
            assert info.value.exit_code == 5
            assert target in info.value.message

    await off_loop(scenario)
    async with AsyncClient(target, retry=policy, timeout=5, offline=False) as aclient:
        with pytest.raises(UnavailableError) as ainfo:
            await aclient.get_model("m")
        assert ainfo.value.exit_code == 5


async def test_async_client(registry: RunningRegistry, aclient: AsyncClient) -> None:
    for name in ("a-1", "a-2", "a-3"):
        await aclient.create_model(name)
    assert [m.name async for m in aclient.list_models(page_size=2)] == [
        "models/a-1",
        "models/a-2",
        "models/a-3",
    ]
    with pytest.raises(NotFoundError) as missing:
        await aclient.get_model("nope")
    assert missing.value.reason == "MODEL_NOT_FOUND"
    with pytest.raises(InvalidArgumentError) as bad_ref:
        await aclient.resolve("a-1@@x")
    assert bad_ref.value.reason == "REFERENCE_INVALID"

    await push_version(registry, "a-1", {"w": b"one"}, params={"lr": 0.1})
    await push_version(registry, "a-1", {"w": b"two"}, params={"lr": 0.2})
    assert (await aclient.resolve("a-1")).version == 2
    # Alias moves only: the versions' scan verdicts arrive as events on their own schedule.
    stream = aclient.watch("a-1", event_types=[ALIAS_MOVED])
    received: list[model_event_pb2.ModelEvent] = []

    async def consume() -> None:
        async for event in stream:
            received.append(event)

    consumer = asyncio.create_task(consume())
    version = 1
    async with asyncio.timeout(30):
        while not received:
            await aclient.set_alias("a-1", "production", version)
            version = 3 - version
            await asyncio.sleep(0.2)
    assert received[0].type == ALIAS_MOVED
    await stream.aclose()  # ends the consumer's async for without an error
    await asyncio.wait_for(consumer, 10)

    aliases = await aclient.list_aliases("a-1")
    assert [a.name for a in aliases] == ["models/a-1/aliases/production"]
    diff = await aclient.diff("a-1:1", "a-1:2")
    assert diff.params == {"lr": (0.1, 0.2)}
    assert diff.files_changed == ["w"]
    audit = [e.method async for e in aclient.list_audit_events(model="a-1")]
    assert "SetAlias" in audit
    assert (await aclient.run_gc(dry_run=True)).dry_run
    await aclient.delete_alias("a-1", "production")
    assert await aclient.list_aliases("a-1") == []
