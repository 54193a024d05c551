"""The error-reason catalogue is the truth: one real call per ErrorReason value gets exactly it.

The catalogues are the ``ErrorReason`` enums of ``error_reason.proto`` (one per API), read here
from the generated descriptors. Every value has one case
(tests/e2e/reason_cases_*.py): a call against a real
in-process registry (PostgreSQL, MinIO or the local blob directory, real gRPC) that must fail
with that reason and the status code the proto documents for it. A value without a case, or a
case for a value the catalogue does not have, fails ``test_every_reason_has_exactly_one_case``;
a documented code that differs from the case's fails ``test_codes_match_the_proto_comments``.

Cases that need server work still in flight are listed in ``NEEDS_ERROR_KERNEL`` and
``NEEDS_SERVER_FIX`` and run as strict xfails: they run every time, and the day the server
does what the contract says they pass, which fails the run until the entry is removed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from minio import Minio

from modelregistry.access.v1 import error_reason_pb2 as access_reasons
from modelregistry.artifact.v1 import error_reason_pb2 as artifact_reasons
from modelregistry.metadata.v1 import error_reason_pb2 as metadata_reasons
from tests.conftest import _start_registry
from tests.e2e import reason_cases_access as access_cases
from tests.e2e import reason_cases_artifact as artifact_cases
from tests.e2e import reason_cases_metadata as metadata_cases
from tests.support.minio import MinioServer
from tests.support.oidc import AUDIENCE, ISSUER
from tests.support.reason_cases import TIGHT_LIMITS, Env
from tests.support.registry_process import s3_flags
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
ALL_CASES = {**metadata_cases.CASES, **artifact_cases.CASES, **access_cases.CASES}

REPO_ROOT = Path(__file__).resolve().parents[2]

# Reasons whose cases need the error kernel of issue #10 (database and object-store failures
# classified in one place); the lead wires them. Each value says what the case does.
NEEDS_ERROR_KERNEL: dict[tuple[str, str], str] = {}
# Reasons whose server side the lead fixes in the same issue.
NEEDS_SERVER_FIX: dict[tuple[str, str], str] = {}

CATALOGUES = {
    "metadata": metadata_reasons.ErrorReason,
    "artifact": artifact_reasons.ErrorReason,
    "access": access_reasons.ErrorReason,
}
PROTO_FILES = {
    "metadata": REPO_ROOT / "protos/modelregistry/metadata/v1/error_reason.proto",
    "artifact": REPO_ROOT / "protos/modelregistry/artifact/v1/error_reason.proto",
    "access": REPO_ROOT / "protos/modelregistry/access/v1/error_reason.proto",
}


def _catalogue() -> set[tuple[str, str]]:
    return {
        (api, name)
        for api, enum in CATALOGUES.items()
        for name in enum.DESCRIPTOR.values_by_name
        if name != "ERROR_REASON_UNSPECIFIED"
    }


def test_every_reason_has_exactly_one_case() -> None:
    assert set(ALL_CASES) == _catalogue()
    pending = set(NEEDS_ERROR_KERNEL) | set(NEEDS_SERVER_FIX)
    assert pending <= set(ALL_CASES), "a pending entry names no case"


def test_codes_match_the_proto_comments() -> None:
    documented: dict[tuple[str, str], str] = {}
    for api, path in PROTO_FILES.items():
        comment: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            value = re.fullmatch(r"([A-Z_]+) = \d+;", line)
            if line.startswith("//"):
                comment.append(line.removeprefix("//").strip())
            elif value and value.group(1) != "ERROR_REASON_UNSPECIFIED":
                # Each value's comment starts with its status code in backticks.
                code = re.match(r"`([A-Z_]+)`\.", comment[0] if comment else "")
                documented[(api, value.group(1))] = code.group(1) if code else "undocumented"
                comment = []
            else:
                comment = []
    assert documented == {key: spec.code.name for key, spec in ALL_CASES.items()}


def _param(key: tuple[str, str]) -> Any:
    marks = []
    why = NEEDS_ERROR_KERNEL.get(key) or NEEDS_SERVER_FIX.get(key)
    if why is not None:
        marks.append(pytest.mark.xfail(strict=True, reason=why))
    return pytest.param(key, marks=marks, id=f"{key[0]}-{key[1]}")


@pytest.fixture
async def env(
    request: pytest.FixtureRequest, database_url: str, postgres_admin_url: str, tmp_path: Path
) -> AsyncIterator[Env]:
    """The registry the case asks for, on this test's database."""
    spec = ALL_CASES[request.param]
    own_minio: MinioServer | None = None
    client: Minio | None = None
    bucket = ""
    extra: list[str] = []
    if spec.setup == "own_minio":
        # Started here, on the event loop's (long-lived) thread: see MinioServer.
        own_minio = MinioServer().start()
        client, bucket = own_minio.client(), "reasons"
        client.make_bucket(bucket)
        extra = s3_flags(own_minio, bucket)
    elif spec.setup == "s3":
        minio_server: MinioServer = request.getfixturevalue("minio_server")
        bucket = request.getfixturevalue("minio_bucket")
        # 5 MiB parts (S3's minimum), so a 6 MiB blob has a stored first part and a last one.
        extra = [*s3_flags(minio_server, bucket), "--upload-part-size=5"]
        client = minio_server.client()
    elif spec.setup == "oidc_keys_down":
        # OIDC whose JWKS URL nothing answers (port 1): the keys never load.
        extra = [
            f"--oidc-issuer={ISSUER}", f"--oidc-audience={AUDIENCE}",
            "--oidc-jwks-url=http://127.0.0.1:1/jwks.json",
        ]  # fmt: skip
    elif spec.setup == "tight":
        extra = TIGHT_LIMITS
    elif spec.setup == "disk_full":
        # A reserve larger than any disk: every new upload would eat into it.
        extra = ["--disk-reserve-mib=1000000000"]
    elif spec.setup == "metadata_only":
        # Nothing listens on port 1: the artifact service is down.
        extra = [
            "metadata", "--artifact-service-url=127.0.0.1:1", "--artifact-service-token=unused",
        ]  # fmt: skip
    elif spec.setup == "artifacts_only":
        # Nothing listens on port 1: the metadata service is down.
        extra = [
            "artifacts", "--metadata-service-url=127.0.0.1:1", "--metadata-service-token=unused",
        ]  # fmt: skip
    try:
        async for running in _start_registry(database_url, tmp_path / "data", extra):
            yield Env(running, postgres_admin_url, database_url, client, bucket, own_minio)
    finally:
        if own_minio is not None:
            own_minio.stop()
    # A case may have closed the database to connections; the database fixture drops it.
    name = database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(postgres_admin_url)
    try:
        await conn.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    finally:
        await conn.close()


@pytest.mark.parametrize("env", [_param(key) for key in sorted(ALL_CASES)], indirect=True)
async def test_reason(env: Env, request: pytest.FixtureRequest) -> None:
    key: tuple[str, str] = request.node.callspec.params["env"]
    spec = ALL_CASES[key]
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await spec.call(env)
    error = excinfo.value
    got = (error.code(), error_info(error).reason)
    assert got == (spec.code, spec.reason), error.details()
    assert error_info(error).domain == "modelregistry"
