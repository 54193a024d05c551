"""What the version a byte-moving call names allows: reads of its blobs, uploads while PENDING."""

from __future__ import annotations

import pytest

from modelregistry_server.artifacts.app.ports import VersionManifest
from modelregistry_server.artifacts.app.read_access import ReadAccess
from modelregistry_server.artifacts.domain.errors import (
    BlobNotInVersion,
    ModelVersionNotFound,
    VersionNotPending,
)
from modelregistry_server.common.kernel.errors import InvalidArgument

pytestmark = pytest.mark.timeout(10)
A, B = "a" * 64, "b" * 64


class Lookup:
    """The metadata service's answers, and how often it was asked."""

    def __init__(self, manifests: dict[str, VersionManifest]) -> None:
        self.manifests = manifests
        self.asked: list[str] = []

    async def manifest_of(self, version_name: str) -> VersionManifest | None:
        self.asked.append(version_name)
        return self.manifests.get(version_name)

    async def collect_blob(self, sha256: str, actor: str) -> bool:
        raise AssertionError("not used here")

    async def close(self) -> None:
        pass


READY = VersionManifest(frozenset({A}), final=True)
PENDING = VersionManifest(frozenset(), final=False, pending=True)


async def test_a_pending_version_takes_uploads_and_asks_every_time() -> None:
    lookup = Lookup({"models/m/versions/2": PENDING})
    access = ReadAccess(lookup)
    await access.require_pending("models/m/versions/2")
    await access.require_pending("models/m/versions/2")
    assert lookup.asked == ["models/m/versions/2"] * 2  # its state may change: never cached


async def test_a_final_version_refuses_uploads_once_known_without_asking_again() -> None:
    lookup = Lookup({"models/m/versions/1": READY})
    access = ReadAccess(lookup)
    with pytest.raises(VersionNotPending):
        await access.require_pending("models/m/versions/1")
    await access.require_blob_in_version("models/m/versions/1", A)  # caches the final manifest
    asked = len(lookup.asked)
    with pytest.raises(VersionNotPending):
        await access.require_pending("models/m/versions/1")
    assert len(lookup.asked) == asked
    with pytest.raises(BlobNotInVersion):
        await access.require_blob_in_version("models/m/versions/1", B)


async def test_a_missing_version_or_a_bad_name_is_said_so() -> None:
    access = ReadAccess(Lookup({}))
    with pytest.raises(ModelVersionNotFound):
        await access.require_pending("models/m/versions/3")
    for name in ("models/m/versions/0", "models/M/versions/1", "models/m/versions/1\n", ""):
        with pytest.raises(InvalidArgument):
            await access.require_pending(name)
