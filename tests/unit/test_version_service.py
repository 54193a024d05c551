"""The version use cases on in-memory fakes of the ports: no PostgreSQL, no artifact service."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from modelregistry_server.common.kernel.errors import Aborted
from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Paginator
from modelregistry_server.metadata.app.gc import GarbageCollector
from modelregistry_server.metadata.app.versions import VersionService
from modelregistry_server.metadata.domain.errors import (
    EtagMismatch,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from modelregistry_server.metadata.domain.events import EventType
from modelregistry_server.metadata.domain.version import ManifestFile, VersionDraft, VersionState
from tests.unit.fakes import (
    T0,
    FakeBlobChecker,
    InMemoryModelRepository,
    InMemoryRegistry,
    InMemoryVersionRepository,
)

pytestmark = pytest.mark.timeout(10)

WEIGHTS = ManifestFile("model.bin", "a" * 64, 100)
CONFIG = ManifestFile("config.json", "b" * 64, 7)


class World:
    """A VersionService over one in-memory registry and a fake artifact service."""

    def __init__(self) -> None:
        self.registry = InMemoryRegistry()
        self.blobs = FakeBlobChecker()
        self.service = VersionService(
            self.registry.uow,
            InMemoryVersionRepository(self.registry),
            InMemoryModelRepository(self.registry),
            self.blobs,
            Paginator(PageTokenCodec(b"k" * 32)),
        )

    async def ready(self, model_id: str = "m") -> str:
        """A committed version's name (its blobs uploaded first)."""
        version = await self.service.create_version(f"models/{model_id}", VersionDraft(), "t")
        self.blobs.stored[WEIGHTS.sha256] = WEIGHTS.size
        committed = await self.service.commit_version(version.name, [WEIGHTS], "", "t")
        return committed.name


@pytest.fixture
def world() -> World:
    world = World()
    world.registry.put_model("m")
    return world


async def test_create_numbers_versions_and_records_audit(world: World) -> None:
    first = await world.service.create_version("models/m", VersionDraft(description="a"), "ann")
    second = await world.service.create_version("models/m", VersionDraft(), "ann")
    assert (first.version, second.version) == (1, 2)
    assert first.state is VersionState.PENDING
    assert first.created_by == "ann"
    audit = world.registry.state.audit
    assert [(e.method, e.resource, e.actor) for e in audit] == [
        ("CreateModelVersion", "models/m/versions/1", "ann"),
        ("CreateModelVersion", "models/m/versions/2", "ann"),
    ]


async def test_create_in_a_missing_model_is_not_found_and_writes_nothing(world: World) -> None:
    with pytest.raises(NotFound) as info:
        await world.service.create_version("models/ghost", VersionDraft(), "t")
    assert info.value.reason == "MODEL_NOT_FOUND"
    assert world.registry.state.audit == []


async def test_replayed_create_returns_the_first_version(world: World) -> None:
    request_id = str(uuid.uuid4())
    first = await world.service.create_version("models/m", VersionDraft(), "t", request_id)
    again = await world.service.create_version("models/m", VersionDraft(), "t", request_id)
    assert again.name == first.name
    assert len(world.registry.state.versions) == 1


async def test_commit_with_missing_blobs_is_rejected_and_stays_pending(world: World) -> None:
    version = await world.service.create_version("models/m", VersionDraft(), "t")
    world.blobs.stored[WEIGHTS.sha256] = WEIGHTS.size  # CONFIG is not uploaded
    with pytest.raises(FailedPrecondition) as info:
        await world.service.commit_version(version.name, [WEIGHTS, CONFIG], "", "t")
    assert info.value.reason == "BLOBS_MISSING"
    assert "config.json" in info.value.message
    assert "model.bin" not in info.value.message
    stored = world.registry.state.versions["m", 1]
    assert stored.state is VersionState.PENDING
    assert stored.files == ()
    assert world.registry.state.events == []
    assert [e.method for e in world.registry.state.audit] == ["CreateModelVersion"]


async def test_commit_with_a_blob_of_another_size_is_rejected(world: World) -> None:
    version = await world.service.create_version("models/m", VersionDraft(), "t")
    world.blobs.stored[WEIGHTS.sha256] = WEIGHTS.size + 1
    with pytest.raises(FailedPrecondition, match="not uploaded") as info:
        await world.service.commit_version(version.name, [WEIGHTS], "", "t")
    assert info.value.reason == "BLOBS_MISSING"


async def test_commit_success_makes_it_ready_with_event_audit_and_locks(world: World) -> None:
    version = await world.service.create_version("models/m", VersionDraft(), "t")
    world.blobs.stored.update({WEIGHTS.sha256: WEIGHTS.size, CONFIG.sha256: CONFIG.size})
    ready = await world.service.commit_version(version.name, [WEIGHTS, CONFIG], "", "ann")
    assert ready.state is VersionState.READY
    assert ready.files == (WEIGHTS, CONFIG)
    assert ready.ready_time is not None
    assert world.registry.state.events == [(EventType.VERSION_READY, "m", 1, None)]
    assert world.registry.state.audit[-1].method == "CommitModelVersion"
    assert world.registry.state.audit[-1].after is not None
    assert world.registry.state.audit[-1].after["state"] == "READY"
    assert world.blobs.checked == [[WEIGHTS.sha256, CONFIG.sha256]]


async def test_commit_twice_is_version_not_pending(world: World) -> None:
    name = await world.ready()
    with pytest.raises(FailedPrecondition) as info:
        await world.service.commit_version(name, [WEIGHTS], "", "t")
    assert info.value.reason == "VERSION_NOT_PENDING"


async def test_commit_with_a_stale_etag_is_aborted(world: World) -> None:
    version = await world.service.create_version("models/m", VersionDraft(), "t")
    world.blobs.stored[WEIGHTS.sha256] = WEIGHTS.size
    with pytest.raises(EtagMismatch):
        await world.service.commit_version(version.name, [WEIGHTS], "stale", "t")
    assert world.registry.state.versions["m", 1].state is VersionState.PENDING


async def test_commit_with_a_bad_manifest_never_reaches_the_store(world: World) -> None:
    version = await world.service.create_version("models/m", VersionDraft(), "t")
    with pytest.raises(InvalidArgument) as info:
        await world.service.commit_version(
            version.name, [ManifestFile("../etc/passwd", "c" * 64, 1)], "", "t"
        )
    assert info.value.reason == "MANIFEST_INVALID"
    assert world.blobs.checked == []


async def test_delete_removes_aliases_and_records_each(world: World) -> None:
    name = await world.ready()
    await world.service.set_alias("models/m", "production", name, "", "t")
    await world.service.set_alias("models/m", "staging", name, "", "t")
    deleted = await world.service.delete_version(name, "", "bob")
    assert deleted.state is VersionState.DELETED
    assert deleted.aliases == ()
    assert world.registry.state.aliases == {}
    skip = (EventType.ALIAS_MOVED, EventType.VERSION_READY)
    events = [e for e in world.registry.state.events if e[0] not in skip]
    assert events == [
        (EventType.ALIAS_DELETED, "m", 1, "production"),
        (EventType.ALIAS_DELETED, "m", 1, "staging"),
        (EventType.VERSION_DELETED, "m", 1, None),
    ]
    with pytest.raises(NotFound):
        await world.service.delete_version(name, "", "bob")


async def test_delete_with_a_stale_etag_changes_nothing(world: World) -> None:
    name = await world.ready()
    with pytest.raises(EtagMismatch):
        await world.service.delete_version(name, "stale", "t")
    assert world.registry.state.versions["m", 1].state is VersionState.READY


async def test_alias_moves_only_to_ready_versions(world: World) -> None:
    pending = await world.service.create_version("models/m", VersionDraft(), "t")
    with pytest.raises(FailedPrecondition) as info:
        await world.service.set_alias("models/m", "production", pending.name, "", "t")
    assert info.value.reason == "VERSION_NOT_READY"
    assert world.registry.state.aliases == {}
    ready = await world.ready()
    moved = await world.service.set_alias("models/m", "production", ready, "", "t")
    assert (moved.alias, moved.version) == ("production", 2)


async def test_alias_to_a_deleted_version_is_not_found(world: World) -> None:
    name = await world.ready()
    await world.service.delete_version(name, "", "t")
    with pytest.raises(NotFound):
        await world.service.set_alias("models/m", "production", name, "", "t")


async def test_alias_compare_and_set_conflict_is_aborted_and_moves_nothing(world: World) -> None:
    one, two, three = [await world.ready() for _ in range(3)]
    await world.service.set_alias("models/m", "production", one, "", "t")
    await world.service.set_alias("models/m", "production", two, one, "t")
    with pytest.raises(Aborted) as info:
        await world.service.set_alias("models/m", "production", three, one, "t")
    assert info.value.reason == "ALIAS_VERSION_MISMATCH"
    assert info.value.code == "ABORTED"
    assert world.registry.state.aliases["m", "production"].version == 2
    moves = [e for e in world.registry.state.events if e[0] is EventType.ALIAS_MOVED]
    assert len(moves) == 2


async def test_alias_compare_and_set_expecting_none_when_one_exists_is_aborted(
    world: World,
) -> None:
    one = await world.ready()
    two = await world.ready()
    await world.service.set_alias("models/m", "production", one, "", "t")
    # expected_version names the version the caller believes is there; for a new alias
    # that is "nothing", which the empty string means (no check) — so check another way:
    with pytest.raises(Aborted):
        await world.service.set_alias("models/m", "canary", two, one, "t")
    assert ("m", "canary") not in world.registry.state.aliases


async def test_alias_of_another_model_is_invalid(world: World) -> None:
    world.registry.put_model("n")
    other = await world.ready("n")
    with pytest.raises(InvalidArgument) as info:
        await world.service.set_alias("models/m", "production", other, "", "t")
    assert info.value.field == "version"


async def test_update_of_a_ready_version_only_changes_labels_and_description(
    world: World,
) -> None:
    name = await world.ready()
    with pytest.raises(FailedPrecondition) as info:
        await world.service.update_version(name, VersionDraft(metrics={"auc": 1.0}), [], "", "t")
    assert info.value.reason == "VERSION_IMMUTABLE"
    updated = await world.service.update_version(
        name, VersionDraft(description="better"), ["description"], "", "t"
    )
    assert updated.draft.description == "better"
    assert world.registry.state.notified == ["m"]


async def test_gc_expires_stale_pending_versions_and_deletes_unreferenced_blobs(
    world: World,
) -> None:
    await world.ready()  # references WEIGHTS
    await world.service.create_version("models/m", VersionDraft(), "t")  # stays PENDING
    world.blobs.stored["d" * 64] = 5  # referenced by nothing
    gc = GarbageCollector(
        world.registry.uow,
        InMemoryVersionRepository(world.registry),
        world.blobs,
        clock=lambda: T0 + timedelta(days=30),
    )
    result = await gc.run(False, None, None, "gc")
    assert result.expired_version_count == 1
    assert world.registry.state.versions["m", 2].state is VersionState.FAILED
    assert result.deleted_blobs == ["d" * 64]
    assert world.blobs.deleted == ["d" * 64]
    assert WEIGHTS.sha256 in world.blobs.stored


async def test_gc_of_named_blobs_deletes_only_the_unreferenced_ones_whatever_their_age(
    world: World,
) -> None:
    await world.ready()  # references WEIGHTS
    fresh = "e" * 64
    world.blobs.stored[fresh] = 9
    gc = GarbageCollector(
        world.registry.uow, InMemoryVersionRepository(world.registry), world.blobs, clock=lambda: T0
    )
    names = [f"blobs/{WEIGHTS.sha256}", f"blobs/{fresh}", f"blobs/{'f' * 64}"]
    result = await gc.run(False, None, None, "op", only=names)
    assert result.deleted_blobs == [fresh]  # young, but named; the referenced one stays
    assert (result.deleted_size_bytes, result.expired_version_count) == (9, 0)
    assert WEIGHTS.sha256 in world.blobs.stored
    with pytest.raises(InvalidArgument) as info:
        await gc.run(False, None, None, "op", only=["blobs/../../etc"])
    assert info.value.field == "blobs[0]"


async def test_gc_periods_past_ten_years_are_refused_not_an_overflow(world: World) -> None:
    # A Duration may say 2,000 years; "now minus that" would be before year 1.
    gc = GarbageCollector(
        world.registry.uow, InMemoryVersionRepository(world.registry), world.blobs, clock=lambda: T0
    )
    with pytest.raises(InvalidArgument) as info:
        await gc.run(False, timedelta(seconds=68719476736), None, "op")
    assert info.value.field == "grace_period"
    with pytest.raises(InvalidArgument) as info:
        await gc.run(False, None, timedelta(days=4000), "op")
    assert info.value.field == "pending_version_ttl"
