"""Client behaviour that needs no server: offline mode, delegation, request ids (watch:
``test_sdk_watch.py``)."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import grpc
import pytest

import modelregistry
import modelregistry.aio
import modelregistry.client
from modelregistry import (
    AsyncClient,
    Client,
    ConflictError,
    InvalidArgumentError,
    NotCachedError,
    RetryPolicy,
    UnavailableError,
)
from modelregistry._options import PullOptions, PushOptions
from modelregistry.cache import Cache, ref_key
from modelregistry.metadata.v1 import alias_pb2, model_pb2, model_version_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from tests.unit.test_sdk_retry import FakeRpcError, aio_error

pytestmark = pytest.mark.timeout(10)
FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.0, max_backoff_s=0.01)


class FakeCache:
    """Just the ref records of the cache."""

    def __init__(self, refs: dict[str, model_version_pb2.ModelVersion]) -> None:
        self.refs = refs
        self.asked: list[str] = []

    def load_ref(self, ref: str) -> model_version_pb2.ModelVersion | None:
        ref_key(ref)  # like the real cache: a malformed reference is rejected, not "missing"
        self.asked.append(ref)
        return self.refs.get(ref)

    # The real offline answer, on top of these records.
    resolve_offline = Cache.resolve_offline

    def close(self) -> None:
        pass


V3 = model_version_pb2.ModelVersion(name="models/m/versions/3", version=3, uid="u3")


@pytest.fixture
def offline_client() -> Iterator[Client]:
    client = Client("127.0.0.1:1", offline=True)
    client._cache = FakeCache({"m@prod": V3})  # type: ignore[assignment]
    yield client
    client.close()


def test_offline_resolve_is_served_from_the_cache(offline_client: Client) -> None:
    assert offline_client.resolve("m@prod") == V3
    with pytest.raises(NotCachedError) as info:
        offline_client.resolve("m@staging")
    assert info.value.reason == "NOT_CACHED"
    assert info.value.exit_code == 3  # a NotFoundError for scripts
    with pytest.raises(NotCachedError):
        offline_client.resolve("m@prod", as_of=datetime(2025, 1, 1))  # only "now" is cached


def test_offline_resolve_still_rejects_malformed_refs(offline_client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        offline_client.resolve("M@@x")
    assert info.value.reason == "REFERENCE_INVALID"


def test_offline_diff_works_from_the_cache(offline_client: Client) -> None:
    diff = offline_client.diff("m@prod", "m@prod")
    assert not diff.has_changes


def test_offline_calls_that_need_the_server_fail_fast(offline_client: Client) -> None:
    with pytest.raises(UnavailableError) as info:
        offline_client.get_model("m")
    assert info.value.reason == "OFFLINE_MODE"
    assert info.value.exit_code == 5
    with pytest.raises(UnavailableError):
        offline_client.list_models()
    with pytest.raises(UnavailableError):
        offline_client.push(".", model="m")


@pytest.mark.parametrize(
    ("value", "offline"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("no", False)],
)
def test_offline_defaults_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, offline: bool
) -> None:
    monkeypatch.setenv("MODELREGISTRY_OFFLINE", value)
    with Client("127.0.0.1:1") as client:
        assert client.offline is offline
    with Client("127.0.0.1:1", offline=False) as client:
        assert client.offline is False


def test_target_and_cache_dir_come_from_arguments_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELREGISTRY_URL", "grpc://registry.internal:6000")
    monkeypatch.setenv("MODELREGISTRY_CACHE", str(tmp_path / "env-cache"))
    with Client() as client:
        assert client.target == "registry.internal:6000"
        assert client.cache.root == tmp_path / "env-cache"
    with Client("other:1", cache_dir=tmp_path / "mine") as client:
        assert client.target == "other:1"
        assert client.cache.root == tmp_path / "mine"


class FakeStub:
    """Records unary requests by method name and answers with canned responses."""

    def __init__(self, **responses: Any) -> None:
        self.responses = responses
        self.requests: dict[str, list[Any]] = {}

    def __getattr__(self, name: str) -> Any:
        def method(request: Any, *, timeout: float | None = None, metadata: Any = None) -> Any:
            self.requests.setdefault(name, []).append(request)
            return self.responses[name]

        return method


@pytest.fixture
def client() -> Iterator[Client]:
    client = Client("127.0.0.1:1", retry=FAST, offline=False)
    yield client
    client.close()


def test_each_mutation_sends_a_fresh_request_id(client: Client) -> None:
    stub = FakeStub(
        CreateModel=model_pb2.Model(),
        DeleteAlias=model_pb2.Model(),
        DeleteModel=model_pb2.Model(),
    )
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    client.create_model("m", description="d", labels={"team": "x"})
    client.create_model("models/m")
    client.delete_alias("m", "prod")
    client.delete_model("m", force=True)
    created = stub.requests["CreateModel"]
    assert created[0].model_id == created[1].model_id == "m"
    assert dict(created[0].model.labels) == {"team": "x"}
    ids = [r.request_id for rs in stub.requests.values() for r in rs]
    assert len(ids) == 4
    assert len(set(ids)) == 4
    assert all(len(i) == 36 for i in ids)
    assert stub.requests["DeleteAlias"][0].name == "models/m/aliases/prod"
    assert stub.requests["DeleteModel"][0].force is True


def test_update_version_without_changes_only_reads(client: Client) -> None:
    stub = FakeStub(GetModelVersion=V3, UpdateModelVersion=V3)
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    assert client.update_version("m", 3) == V3
    assert "UpdateModelVersion" not in stub.requests
    client.update_version("m", 3, labels={})
    assert list(stub.requests["UpdateModelVersion"][0].update_mask.paths) == ["labels"]


def test_list_aliases_follows_pages(client: Client) -> None:
    pages = iter(
        [
            ms.ListAliasesResponse(
                aliases=[alias_pb2.Alias(name="models/m/aliases/a")], next_page_token="t"
            ),
            ms.ListAliasesResponse(aliases=[alias_pb2.Alias(name="models/m/aliases/b")]),
        ]
    )
    tokens: list[str] = []

    def list_aliases(request: ms.ListAliasesRequest, **_: Any) -> ms.ListAliasesResponse:
        tokens.append(request.page_token)
        assert request.parent == "models/m"
        return next(pages)

    client._transport.metadata_stub = SimpleNamespace(ListAliases=list_aliases)  # type: ignore[assignment]
    assert [a.name for a in client.list_aliases("m")] == [
        "models/m/aliases/a",
        "models/m/aliases/b",
    ]
    assert tokens == ["", "t"]


def test_a_stale_expected_version_is_a_conflict(client: Client) -> None:
    stale = FakeRpcError(
        grpc.StatusCode.ABORTED, "production moved", "ALIAS_VERSION_MISMATCH", alias="production"
    )

    def set_alias(request: ms.SetAliasRequest, **_: Any) -> alias_pb2.Alias:
        assert request.expected_version == "models/m/versions/2"
        raise stale

    client._transport.metadata_stub = SimpleNamespace(SetAlias=set_alias)  # type: ignore[assignment]
    with pytest.raises(ConflictError) as info:
        client.set_alias("m", "production", 3, expected_version=2)
    assert info.value.reason == "ALIAS_VERSION_MISMATCH"
    assert info.value.exit_code == 4
    assert info.value.metadata == {"alias": "production"}


async def test_a_stale_expected_version_is_a_conflict_async_too() -> None:
    async def set_alias(request: ms.SetAliasRequest, **_: Any) -> alias_pb2.Alias:
        raise aio_error(grpc.StatusCode.ABORTED, "production moved", "ALIAS_VERSION_MISMATCH")

    async with AsyncClient("127.0.0.1:1", retry=FAST, offline=False) as client:
        client._transport.metadata_stub = SimpleNamespace(SetAlias=set_alias)  # type: ignore[assignment]
        with pytest.raises(ConflictError) as info:
            await client.set_alias("m", "production", 3, expected_version=2)
    assert info.value.reason == "ALIAS_VERSION_MISMATCH"


def _imported_modules(module: ModuleType) -> set[str]:
    """Every module ``module``'s source imports, lazy imports inside functions included."""
    assert module.__file__ is not None
    names: set[str] = set()
    for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_two_clients_share_modules_and_do_not_import_each_other() -> None:
    assert "modelregistry._base" in _imported_modules(modelregistry.aio)
    assert "modelregistry.client" not in _imported_modules(modelregistry.aio)
    assert "modelregistry.aio" not in _imported_modules(modelregistry.client)
    # The public names stay where users import them from.
    assert modelregistry.WatchStream is modelregistry.client.WatchStream
    assert modelregistry.AsyncWatchStream is modelregistry.aio.AsyncWatchStream
    assert modelregistry.AsyncClient is modelregistry.aio.AsyncClient


def test_push_and_pull_delegate_to_the_engines(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import modelregistry._pull
    import modelregistry._push

    seen: dict[str, Any] = {}

    def fake_push(transport: Any, cache: Any, path: Any, options: PushOptions) -> Any:
        seen["push"] = (transport, cache, path, options)
        return V3

    def fake_pull(
        transport: Any, cache: Any, ref: str, options: PullOptions, *, offline: bool
    ) -> Path:
        seen["pull"] = (transport, cache, ref, options, offline)
        return tmp_path

    monkeypatch.setattr(modelregistry._push, "push_model", fake_push)
    monkeypatch.setattr(modelregistry._pull, "pull_model", fake_pull)
    client._cache = FakeCache({})  # type: ignore[assignment]
    assert client.push("w", model="m", params={"lr": 0.1}, alias="prod", parallelism=2) == V3
    transport, cache, path, options = seen["push"]
    assert transport is client._transport
    assert cache is client._cache
    assert path == "w"
    assert options == PushOptions(model="m", params={"lr": 0.1}, alias="prod", parallelism=2)
    assert options.lineage is True
    assert client.pull("m@prod", tmp_path, allow_patterns=["*.json"]) == tmp_path
    transport, cache, ref, options, offline = seen["pull"]
    assert transport is client._transport
    assert ref == "m@prod"
    assert options == PullOptions(
        dest=tmp_path, allow_patterns=["*.json"], ignore_patterns=None, parallelism=4, progress=None
    )
    assert offline is False
    client.offline = True
    client.pull("m@prod")
    assert seen["pull"][0] is None
    assert seen["pull"][3] == PullOptions()
    assert seen["pull"][4] is True


async def test_async_push_runs_in_a_thread_on_its_own_sync_channel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import modelregistry._push

    seen: dict[str, Any] = {}

    def fake_push(transport: Any, cache: Any, path: Any, options: PushOptions) -> Any:
        seen["options"] = options
        seen["thread"] = threading.current_thread()
        seen["target"] = transport.target
        seen["metadata"] = transport.metadata
        return V3

    monkeypatch.setattr(modelregistry._push, "push_model", fake_push)
    async with AsyncClient("127.0.0.1:9", token="bob-token", offline=False) as client:
        client._cache = FakeCache({})  # type: ignore[assignment]
        assert await client.push("w", model="m", description="d") == V3
    assert seen["options"] == PushOptions(model="m", description="d")
    assert seen["thread"] is not threading.main_thread()
    assert seen["target"] == "127.0.0.1:9"
    # The sync transport it runs on in the thread presents the same token.
    assert seen["metadata"] == (("authorization", "Bearer bob-token"),)
