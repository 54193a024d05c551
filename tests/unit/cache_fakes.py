"""A local cache filled by real pulls through a fake transport: two versions sharing a file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelregistry import _pull
from modelregistry._options import PullOptions
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.cache import Cache
from modelregistry.errors import FailedPreconditionError
from modelregistry.metadata.v1 import model_version_pb2

SHARED = b"shared weights " * 20  # in both versions
ONLY_1 = b"config of version one"
ONLY_2 = b"config of version two, longer"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version(number: int, files: dict[str, bytes]) -> model_version_pb2.ModelVersion:
    return model_version_pb2.ModelVersion(
        name=f"models/m/versions/{number}",
        version=number,
        uid=f"0b5a4cde-1111-4222-8333-44445555666{number}",
        files=[
            model_version_pb2.ManifestFile(path=path, sha256=sha(data), size_bytes=len(data))
            for path, data in files.items()
        ],
    )


V1 = version(1, {"w.bin": SHARED, "config.json": ONLY_1, "copy/w.bin": SHARED})
V2 = version(2, {"w.bin": SHARED, "config.json": ONLY_2})
BLOBS = {sha(data): data for data in (SHARED, ONLY_1, ONLY_2)}


class _Artifacts:
    def GenerateDownloadUrl(self, request: Any) -> Any:  # noqa: N802 - the stub's name
        raise FailedPreconditionError("no URLs here", reason="DOWNLOAD_URL_UNSUPPORTED")

    def Read(self, request: Any, **_: Any) -> Iterator[Any]:  # noqa: N802
        yield artifact_service_pb2.ReadResponse(data=BLOBS[request.sha256][request.read_offset :])


class _Metadata:
    """Answers ``m:1``/``m@staging`` with version 1 and ``m:2``/``m@production`` with 2."""

    def ResolveModelVersion(self, request: Any) -> Any:  # noqa: N802
        return V1 if request.ref in ("m:1", "m@staging") else V2


class FakeTransport:
    target = "fake"
    metadata = ()

    def __init__(self) -> None:
        self.artifact_stub = _Artifacts()
        self.metadata_stub = _Metadata()

    def unary(self, method: Any, request: Any, **_: Any) -> Any:
        return method(request)


def filled_cache(root: Path) -> Cache:
    """A cache holding snapshots ``m:1`` (3 files, 2 blobs) and ``m:2`` (2 files, 2 blobs).

    Ref records: ``m@staging`` and ``m:1`` name version 1, ``m@production`` and ``m:2``
    version 2 (and each version's uid).
    """
    cache = Cache(root)
    transport: Any = FakeTransport()
    for ref in ("m@staging", "m@production"):
        _pull.pull_model(transport, cache, ref, PullOptions(parallelism=1))
    return cache
