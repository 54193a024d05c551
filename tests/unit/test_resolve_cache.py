"""The resolve cache: LRU, TTL, epochs against racing invalidations, and VersionService's use."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Paginator
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from modelregistry_server.metadata.app.versions import VersionService
from modelregistry_server.metadata.domain.errors import NotFound
from modelregistry_server.metadata.domain.model import Model
from modelregistry_server.metadata.domain.version import (
    ModelVersion,
    VersionDraft,
    VersionState,
)
from tests.unit.fakes import (
    FakeBlobChecker,
    InMemoryModelRepository,
    InMemoryRegistry,
    InMemoryVersionRepository,
)

pytestmark = pytest.mark.timeout(10)
_T0 = datetime(2026, 11, 28, tzinfo=UTC)


def _version(
    model_id: str, number: int, *, etag: str = "e", aliases: tuple[str, ...] = ()
) -> ModelVersion:
    return ModelVersion(
        model_id=model_id, version=number, uid=f"00000000-0000-0000-0000-{number:012d}",
        state=VersionState.READY, draft=VersionDraft(), files=(), aliases=aliases,
        created_by="t", create_time=_T0, update_time=_T0, ready_time=_T0, etag=etag,
    )  # fmt: skip


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _enabled_cache(**kwargs: float) -> ResolveCache:
    cache = ResolveCache(**kwargs)  # type: ignore[arg-type]
    cache.feed_connected()
    return cache


def test_nothing_is_cached_until_the_feed_listens_and_after_it_is_lost() -> None:
    cache = ResolveCache()
    cache.put("m", _version("m", 1), cache.epoch())
    assert cache.get("m") is None
    cache.feed_connected()
    cache.put("m", _version("m", 1), cache.epoch())
    assert cache.get("m") is not None
    cache.feed_lost()
    assert cache.get("m") is None
    cache.put("m", _version("m", 1), cache.epoch())
    assert cache.get("m") is None, "a lost feed must keep the cache off"


def test_an_answer_read_before_an_invalidation_is_refused() -> None:
    cache = _enabled_cache()
    epoch = cache.epoch()  # a resolve starts its query...
    cache.model_changed("m")  # ...a change is notified meanwhile...
    cache.put("m", _version("m", 1), epoch)  # ...its (possibly old) answer is not kept
    assert cache.get("m") is None
    # The same race across a reconnect of the feed: events may have gone unreported.
    epoch = cache.epoch()
    cache.feed_lost()
    cache.feed_connected()
    cache.put("m", _version("m", 1), epoch)
    assert cache.get("m") is None


def test_invalidation_drops_only_that_models_answers() -> None:
    cache = _enabled_cache()
    for ref, version in [("a", _version("a", 1)), ("a@prod", _version("a", 1)),
                         ("b:2", _version("b", 2)), ("uid-of-a", _version("a", 3))]:  # fmt: skip
        cache.put(ref, version, cache.epoch())
    cache.invalidate_model("a")
    assert [r for r in ("a", "a@prod", "b:2", "uid-of-a") if cache.get(r)] == ["b:2"]
    cache.model_changed(None)  # unknown model: everything goes
    assert cache.get("b:2") is None


def test_entries_expire_after_the_ttl() -> None:
    clock = _Clock()
    cache = ResolveCache(ttl_s=5.0, clock=clock)
    cache.feed_connected()
    cache.put("m", _version("m", 1), cache.epoch())
    clock.now = 4.9
    assert cache.get("m") is not None
    clock.now = 5.0
    assert cache.get("m") is None
    assert len(cache) == 0


def test_the_least_recently_used_entry_is_evicted() -> None:
    cache = _enabled_cache(max_entries=2)
    cache.put("a", _version("a", 1), cache.epoch())
    cache.put("b", _version("b", 1), cache.epoch())
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", _version("c", 1), cache.epoch())
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    cache.invalidate_model("b")  # its index entry went with the eviction; nothing breaks
    assert len(cache) == 2


def test_only_resolvable_states_are_cached() -> None:
    cache = _enabled_cache()
    cache.put("m:1", replace(_version("m", 1), state=VersionState.PENDING), cache.epoch())
    assert cache.get("m:1") is None


# ---------------------------------------------------------------- VersionService with the cache


class _Repository(InMemoryVersionRepository):
    """The in-memory read side, counting reads and able to hold one "in its query"."""

    def __init__(self, registry: InMemoryRegistry) -> None:
        super().__init__(registry)
        self.registry = registry
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def _read(self, answer: ModelVersion | None) -> ModelVersion | None:
        # The answer is taken first, then the "round trip" ends: like a query, a resolve
        # holds what the database said when it read, however long the reply takes.
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        return answer

    async def get(self, model_id: str, version: int) -> ModelVersion:
        try:
            found = await super().get(model_id, version)
        except NotFound:
            await self._read(None)
            raise
        answer = await self._read(found)
        assert answer is not None
        return answer

    async def get_by_uid(self, uid: str) -> ModelVersion | None:
        return await self._read(await super().get_by_uid(uid))

    async def get_latest_ready(self, model_id: str, as_of: datetime | None) -> ModelVersion | None:
        return await self._read(await super().get_latest_ready(model_id, as_of))

    async def get_by_alias(
        self, model_id: str, alias: str, as_of: datetime | None
    ) -> ModelVersion | None:
        return await self._read(await super().get_by_alias(model_id, alias, as_of))


def _model(model_id: str) -> Model:
    return Model(model_id, f"uid-{model_id}", "", {}, "", _T0, _T0, "e1")


def version_key(version: ModelVersion) -> tuple[str, int]:
    return version.model_id, version.version


def _service(repository: _Repository, cache: ResolveCache) -> VersionService:
    registry = repository.registry
    for model_id in ("m", "n"):  # every model the tests name exists
        if model_id not in registry.state.models:
            registry.put_model(model_id)
    return VersionService(
        registry.uow,
        repository,
        InMemoryModelRepository(registry),
        FakeBlobChecker(),
        Paginator(PageTokenCodec(b"k" * 32)),
        cache,
    )


async def test_a_repeated_resolve_is_answered_from_memory_until_a_local_write() -> None:
    repository = _Repository(InMemoryRegistry())
    repository.registry.put_version(_version("m", 1))
    repository.registry.put_version(_version("m", 2))
    cache = _enabled_cache()
    service = _service(repository, cache)
    await service.set_alias("models/m", "prod", "models/m/versions/1", "", "t")
    assert (await service.resolve("m@prod")).version == 1
    assert (await service.resolve("m@prod")).version == 1
    assert repository.reads == 1
    # The write invalidates before it returns: the very next resolve sees it.
    await service.set_alias("models/m", "prod", "models/m/versions/2", "", "t")
    resolved = await service.resolve("m@prod")
    assert (resolved.version, resolved.aliases) == (2, ("prod",))
    await service.delete_alias("models/m/aliases/prod", "t")
    with pytest.raises(NotFound):
        await service.resolve("m@prod")


async def test_as_of_resolves_always_read_the_database() -> None:
    repository = _Repository(InMemoryRegistry())
    repository.registry.put_version(_version("m", 1))
    service = _service(repository, _enabled_cache())
    for _ in range(3):
        await service.resolve("m", as_of=_T0)
    assert repository.reads == 3


async def test_a_resolve_racing_a_write_does_not_cache_the_old_answer() -> None:
    repository = _Repository(InMemoryRegistry())
    repository.registry.put_version(_version("m", 1))
    repository.registry.put_version(_version("m", 2))
    repository.registry.point("m", "prod", 1)
    cache = _enabled_cache()
    service = _service(repository, cache)
    repository.gate = asyncio.Event()
    reading = asyncio.create_task(service.resolve("m@prod"))
    await asyncio.sleep(0)  # the resolve is now inside its query, holding the old answer...
    repository.registry.point("m", "prod", 2)  # ...when another replica moves the alias
    cache.model_changed("m")  # and its NOTIFY arrives
    repository.gate.set()
    assert (await reading).version == 1  # that call may answer as of its read...
    repository.gate = None
    assert (await service.resolve("m@prod")).version == 2  # ...but did not poison the cache


async def test_a_resolve_that_finds_nothing_says_whether_the_model_is_what_is_missing() -> None:
    repository = _Repository(InMemoryRegistry())
    repository.registry.put_version(_version("m", 1))
    service = _service(repository, _enabled_cache())
    with pytest.raises(NotFound) as alias:
        await service.resolve("m@nope")
    assert (alias.value.reason, str(alias.value)) == (
        "ALIAS_NOT_FOUND",
        "models/m/aliases/nope not found",
    )
    with pytest.raises(NotFound) as number:
        await service.resolve("m:7")
    assert number.value.reason == "MODEL_VERSION_NOT_FOUND"
    for ref in ("ghost@production", "ghost", "ghost:3"):
        with pytest.raises(NotFound) as missing:
            await service.resolve(ref)
        assert (missing.value.reason, str(missing.value)) == (
            "MODEL_NOT_FOUND",
            "models/ghost not found",
        ), ref
