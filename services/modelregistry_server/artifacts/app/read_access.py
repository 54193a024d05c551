"""Which blobs a caller may read: those of a model version it may read.

The rpc edge checks ``models.read`` on the version's model (the permission table) or, for a
read that names no version, ``registry.admin`` on ``*``; this use case checks that the named
version's manifest holds the digest. A final (READY or ARCHIVED) manifest never changes, so
its answer is cached; a PENDING or DELETED one is asked again every time.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from modelregistry_server.artifacts.app.ports import ManifestLookup, VersionManifest
from modelregistry_server.artifacts.domain.errors import BlobNotInVersion
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
        if not _VERSION_NAME.fullmatch(version_name):
            raise InvalidArgument("model_version", "must be models/{model}/versions/{version}")
        digests = await self._digests(version_name)
        if digests is None or sha256 not in digests:
            raise BlobNotInVersion(version_name, sha256)

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
