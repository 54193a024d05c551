"""Every field of a version is capped, and the caps together fit the 4 MiB gRPC message limit.

The worst case is built from the domain's own constants (not copies): a version with every
caller-settable field at its cap, a manifest of ``MAX_FILES`` entries whose paths and media
types fill their shared budget, ``MAX_ALIASES`` aliases, and the longest output-only fields.
It goes through the use cases (so each cap is shown to be accepted) and out through the
conversion ``ResolveModelVersion`` and ``GetModelVersion`` send.
"""

from __future__ import annotations

import dataclasses

import pytest

from modelregistry.metadata.v1 import model_version_pb2
from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Paginator
from modelregistry_server.metadata.app.versions import VersionService
from modelregistry_server.metadata.domain import version as rules
from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.version import ManifestFile, ModelVersion, VersionDraft
from modelregistry_server.metadata.rpc.convert import VersionMessageCache, version_to_proto
from modelregistry_server.server import _MAX_MESSAGE_BYTES
from tests.support.worst_version import MODEL, WIDE, key, worst_draft, worst_manifest
from tests.unit.fakes import (
    FakeBlobChecker,
    InMemoryModelRepository,
    InMemoryRegistry,
    InMemoryVersionRepository,
)

pytestmark = pytest.mark.timeout(60)

GRPC_LIMIT = _MAX_MESSAGE_BYTES  # what the server sends and receives at most
MARGIN = 0.9  # the worst case must stay under 90 % of it


@pytest.fixture
def world() -> tuple[InMemoryRegistry, FakeBlobChecker, VersionService]:
    registry = InMemoryRegistry()
    registry.put_model(MODEL)
    blobs = FakeBlobChecker()
    service = VersionService(
        registry.uow,
        InMemoryVersionRepository(registry),
        InMemoryModelRepository(registry),
        blobs,
        Paginator(PageTokenCodec(b"k" * 32)),
    )
    return registry, blobs, service


async def _worst_version(
    world: tuple[InMemoryRegistry, FakeBlobChecker, VersionService],
) -> ModelVersion:
    """The worst case, made through the use cases (every cap accepted), then resolved."""
    _, blobs, service = world
    # The longest actor: an impersonating service (128 characters of user, a 256-character
    # OIDC principal), all 4-byte characters.
    actor = f"{WIDE * 128} via {WIDE * 256}"
    pending = await service.create_version(f"models/{MODEL}", worst_draft(), actor)
    files = worst_manifest()
    blobs.stored.update((f.sha256, f.size) for f in files)
    await service.commit_version(pending.name, files, "", actor)
    for i in range(rules.MAX_ALIASES):
        await service.set_alias(f"models/{MODEL}", key("a", i, 63), pending.name, "", actor)
    resolved = await service.resolve(f"{MODEL}:{pending.version}")
    assert len(resolved.aliases) == rules.MAX_ALIASES
    assert len(resolved.files) == rules.MAX_FILES
    return resolved


async def test_the_largest_possible_version_fits_a_grpc_message_with_margin(
    world: tuple[InMemoryRegistry, FakeBlobChecker, VersionService],
) -> None:
    version = await _worst_version(world)
    # ResolveModelVersion and GetModelVersion answer with this message (through the cache).
    message = VersionMessageCache().get(version)
    assert message == version_to_proto(version)
    # The longest version number, as output-only fields can hold.
    message = model_version_pb2.ModelVersion()
    message.CopyFrom(version_to_proto(version))
    message.name = rules.version_name(MODEL, rules.MAX_VERSION)
    message.version = rules.MAX_VERSION
    size = message.ByteSize()
    print(f"worst-case ModelVersion: {size} bytes ({size / 2**20:.3f} MiB)")
    assert size < GRPC_LIMIT * MARGIN, f"{size} bytes; the gRPC limit is {GRPC_LIMIT}"
    # The caps, not the filler, set this size: the signature's proto is near twice its JSON.
    assert message.signature.ByteSize() > 1.9 * rules.MAX_SIGNATURE_BYTES


async def test_each_draft_cap_is_enforced_at_create_and_at_update(
    world: tuple[InMemoryRegistry, FakeBlobChecker, VersionService],
) -> None:
    _, _, service = world
    draft = worst_draft()
    pending = await service.create_version(f"models/{MODEL}", draft, "t")
    over = {
        "params": VersionDraft(params={"p": "x" * (rules.MAX_PARAM_STRING_BYTES + 1)}),
        "framework": VersionDraft(framework="f" * (rules.MAX_FRAMEWORK_CHARS + 1)),
        "format": VersionDraft(format="f" * (rules.MAX_FRAMEWORK_CHARS + 1)),
        "lineage": VersionDraft(lineage={"training_run_id": "r" * rules.MAX_LINEAGE_BYTES}),
        "signature": VersionDraft(
            signature={"inputs": [{"name": "n" * rules.MAX_SIGNATURE_BYTES}]}
        ),
    }
    expected_field = {"params": "model_version.params.p"}
    for name, bad in over.items():
        field = expected_field.get(name, f"model_version.{name}")
        with pytest.raises(InvalidArgument) as on_create:
            await service.create_version(f"models/{MODEL}", bad, "t")
        assert on_create.value.field == field
        assert on_create.value.reason == "FIELD_INVALID"
        with pytest.raises(InvalidArgument) as on_update:
            await service.update_version(pending.name, bad, [name], "", "t")
        assert on_update.value.field == field


def test_a_param_string_is_measured_in_utf8_bytes() -> None:
    at_cap = "é" * (rules.MAX_PARAM_STRING_BYTES // 2)
    rules.validate_version_draft(VersionDraft(params={"p": at_cap}))
    with pytest.raises(InvalidArgument, match=f"longer than {rules.MAX_PARAM_STRING_BYTES} bytes"):
        rules.validate_version_draft(VersionDraft(params={"p": at_cap + "x"}))


def _manifest(count: int, path_bytes: int = 8, media_type: str = "") -> list[ManifestFile]:
    return [
        ManifestFile(f"{i:08d}".ljust(path_bytes, "x"), "a" * 64, 1, media_type)
        for i in range(count)
    ]


def test_a_media_type_is_capped_per_file() -> None:
    rules.validate_manifest(_manifest(1, media_type="m" * rules.MAX_MEDIA_TYPE_BYTES))
    with pytest.raises(InvalidArgument) as info:
        rules.validate_manifest(_manifest(2, media_type="m" * (rules.MAX_MEDIA_TYPE_BYTES + 1)))
    assert info.value.field == "files[0].media_type"
    assert info.value.reason == "MANIFEST_INVALID"


def test_paths_and_media_types_share_one_budget() -> None:
    at_cap = worst_manifest()
    rules.validate_manifest(at_cap)
    last = at_cap[-1]
    over = [*at_cap[:-1], dataclasses.replace(last, media_type=last.media_type + "x")]
    with pytest.raises(InvalidArgument) as info:
        rules.validate_manifest(over)
    assert info.value.field == "files"
    assert info.value.reason == "MANIFEST_INVALID"
    assert f"at most {rules.MAX_MANIFEST_TEXT_BYTES} bytes" in info.value.rule


def test_sizes_may_not_add_up_past_an_int64() -> None:
    half = rules.MAX_TOTAL_SIZE // 2 + 1
    files = [ManifestFile("a", "a" * 64, half), ManifestFile("b", "b" * 64, half)]
    with pytest.raises(InvalidArgument, match="sizes add up") as info:
        rules.validate_manifest(files)
    assert info.value.reason == "MANIFEST_INVALID"


async def test_an_empty_manifest_is_not_committed(
    world: tuple[InMemoryRegistry, FakeBlobChecker, VersionService],
) -> None:
    _, _, service = world
    pending = await service.create_version(f"models/{MODEL}", VersionDraft(), "t")
    with pytest.raises(InvalidArgument) as info:
        await service.commit_version(pending.name, [], "", "t")
    assert (info.value.field, info.value.reason) == ("files", "MANIFEST_INVALID")


async def test_a_model_holds_at_most_max_aliases_but_they_still_move(
    world: tuple[InMemoryRegistry, FakeBlobChecker, VersionService],
) -> None:
    registry, blobs, service = world
    blobs.stored["a" * 64] = 1
    names = []
    for _ in range(2):
        pending = await service.create_version(f"models/{MODEL}", VersionDraft(), "t")
        await service.commit_version(pending.name, [ManifestFile("w", "a" * 64, 1)], "", "t")
        names.append(pending.name)
    for i in range(rules.MAX_ALIASES):
        await service.set_alias(f"models/{MODEL}", f"a{i}", names[0], "", "t")
    with pytest.raises(InvalidArgument) as info:
        await service.set_alias(f"models/{MODEL}", "one-more", names[0], "", "t")
    assert info.value.field == "alias"
    assert f"has {rules.MAX_ALIASES} aliases" in info.value.rule
    moved = await service.set_alias(f"models/{MODEL}", "a0", names[1], "", "t")  # a move is fine
    assert moved.version == 2
    await service.delete_alias(f"models/{MODEL}/aliases/a1", "t")
    await service.set_alias(f"models/{MODEL}", "one-more", names[0], "", "t")  # room again
    assert sum(1 for m, _ in registry.state.aliases if m == MODEL) == rules.MAX_ALIASES
