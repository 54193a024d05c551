"""What the version a byte-moving call names allows: the blobs it holds may be read, and
files may be uploaded for it while it is PENDING.

The rpc edge checks the permission on the version's model (the permission table:
``models.read`` to read, ``models.write`` to upload) or, for a call that names no version,
``registry.admin`` on ``*``; this use case checks the version itself. A final (READY or
ARCHIVED) manifest never changes, so its answer is cached; a PENDING or DELETED one is asked
again every time.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from modelregistry_server.artifacts.app.ports import ManifestLookup, VersionManifest
from modelregistry_server.artifacts.domain.errors import (
    BlobNotInVersion,
    ModelVersionNotFound,
    VersionNotPending,
)
from modelregistry_server.common.kernel.errors import InvalidArgument

CACHE_SIZE = 4096
_VERSION_NAME = re.compile(r"models/[a-z][a-z0-9-]{0,62}/versions/[1-9][0-9]{0,18}")


class ReadAccess:
    """Checks that a version holds a blob, with an LRU of final manifests."""

    def __init__(self, lookup: ManifestLookup, cache_size: int = CACHE_SIZE) -> None:
        self._lookup = lookup
        self._cache: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._cache_size = cache_size

    async def require_blob_in_version(self, version_name: str, sha256: str) -> None:
        """Raise ``BlobNotInVersion`` unless ``version_name``'s manifest holds ``sha256``.

        Raises:
            InvalidArgument: ``version_name`` is not a model version's resource name.
            BlobNotInVersion: No such version, or its manifest does not hold the blob.
            Unavailable: The metadata service did not answer.
        """
        _check_name(version_name)
        digests = await self._digests(version_name)
        if digests is None or sha256 not in digests:
            raise BlobNotInVersion(version_name, sha256)

    async def require_pending(self, version_name: str) -> None:
        """Raise unless ``version_name`` is a PENDING version (uploads are for those only).

        Raises:
            InvalidArgument: ``version_name`` is not a model version's resource name.
            ModelVersionNotFound: No such version, or it was deleted.
            VersionNotPending: Its files can no longer change.
            Unavailable: The metadata service did not answer.
        """
        _check_name(version_name)
        if version_name in self._cache:  # final: never PENDING again
            raise VersionNotPending(version_name)
        manifest = await self._lookup.manifest_of(version_name)
        if manifest is None:
            raise ModelVersionNotFound(version_name)
        if not manifest.pending:
            raise VersionNotPending(version_name)

    async def _digests(self, version_name: str) -> frozenset[str] | None:
        cached = self._cache.get(version_name)
        if cached is not None:
            self._cache.move_to_end(version_name)
            return cached
        manifest: VersionManifest | None = await self._lookup.manifest_of(version_name)
        if manifest is None:
            return None
        if manifest.final:
            self._cache[version_name] = manifest.digests
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return manifest.digests


def _check_name(version_name: str) -> None:
    if not _VERSION_NAME.fullmatch(version_name):
        raise InvalidArgument("model_version", "must be models/{model}/versions/{version}")
