"""File URLs (``/v1/models/{model}/versions/{version_or_alias}/files/{path}``) with the real
``curl`` and ``wget`` binaries against a real server, real PostgreSQL, and both blob stores
(the local directory and MinIO).

The in-process server runs on this test's event loop, so every client runs as a subprocess
(``asyncio.create_subprocess_exec``) or in a thread, never blocking the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from modelregistry import Client
from modelregistry_server.web import files
from tests.conftest import RunningRegistry, _start_registry
from tests.support.auth import ADMIN_TOKEN, create_token
from tests.support.files import MiB, write_random

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

WEIGHTS = "model.safetensors"
ODD_NAME = "tokenizer files/vocab größe ü.txt"


@dataclass
class Served:
    """A registry with model ``demo``: version 1 (alias ``production``) and version 2."""

    registry: RunningRegistry
    files: dict[str, bytes]  # version 1's files by manifest path
    base: str  # http://127.0.0.1:port

    def url(self, version: str, path: str = WEIGHTS) -> str:
        """The file URL of ``path`` (percent-encoded) in ``version`` of ``demo``."""
        return f"{self.base}/v1/models/demo/versions/{version}/files/{quote(path)}"


def _tree(root: Path) -> dict[str, bytes]:
    write_random(root / WEIGHTS, 3 * MiB + 17)  # several 1 MiB chunks and an odd tail
    (root / "config.json").write_text('{"hidden_size": 64}\n')
    (root / ODD_NAME).parent.mkdir(parents=True)
    (root / ODD_NAME).write_text("ä ö ü\n" * 100)
    (root / "empty.txt").touch()
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def _serve(registry: RunningRegistry, tmp_path: Path) -> Served:
    assert registry.server.web is not None
    files = _tree(tmp_path / "v1")
    write_random(tmp_path / "v2" / WEIGHTS, 1000)
    client = Client(registry.target, cache_dir=tmp_path / "push-cache")
    try:
        await asyncio.to_thread(client.push, tmp_path / "v1", model="demo", alias="production")
        await asyncio.to_thread(client.push, tmp_path / "v2", model="demo")
    finally:
        client.close()
    return Served(registry, files, f"http://127.0.0.1:{registry.server.web.port}")


@pytest.fixture(params=["local", "minio"])
def any_registry(request: pytest.FixtureRequest) -> RunningRegistry:
    """A registry on the local-directory store, then one on MinIO."""
    name = "registry" if request.param == "local" else "s3_registry"
    registry: RunningRegistry = request.getfixturevalue(name)
    return registry


@pytest.fixture
async def served(any_registry: RunningRegistry, tmp_path: Path) -> Served:
    """The model on each blob store."""
    return await _serve(any_registry, tmp_path)


@pytest.fixture
async def local(registry: RunningRegistry, tmp_path: Path) -> Served:
    """The model on the local-directory store only (checks that do not touch the bytes)."""
    return await _serve(registry, tmp_path)


@dataclass
class Reply:
    """What curl saw: the last response's status and headers, and the body file's bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


async def _run(*argv: str, cwd: Path | None = None) -> tuple[int, str]:
    """Run a client binary; return its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


def _headers(dump: str) -> tuple[int, dict[str, str]]:
    """The status and headers of the last response in a ``curl -D`` dump."""
    block = dump.strip().split("\r\n\r\n")[-1]
    status_line, *lines = block.split("\r\n")
    headers = {}
    for line in lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def curl(
    url: str, tmp_path: Path, *args: str, token: str | None = ADMIN_TOKEN, out: str = "body"
) -> Reply:
    """``curl`` ``url`` into ``tmp_path/out``; ``token`` None sends no credential."""
    body, dump = tmp_path / out, tmp_path / f"{out}.headers"
    auth = ["-H", f"Authorization: Bearer {token}"] if token is not None else []
    code, stderr = await _run("curl", "-sS", "-D", str(dump), "-o", str(body), *auth, *args, url)
    assert code == 0, stderr
    status, headers = _headers(dump.read_bytes().decode())
    return Reply(status, headers, body.read_bytes() if body.exists() else b"")


def _reason(document: dict[str, Any]) -> str:
    infos = [d for d in document.get("details", []) if d["@type"].endswith("ErrorInfo")]
    return str(infos[0]["reason"]) if infos else ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_curl_and_wget_are_installed() -> None:
    assert shutil.which("curl"), "curl is needed: apt-get install curl"
    assert shutil.which("wget"), "wget is needed: apt-get install wget"


async def test_curl_downloads_a_file_by_alias_with_its_digest_and_resolved_version(
    served: Served, tmp_path: Path
) -> None:
    weights = served.files[WEIGHTS]
    code, stderr = await _run(
        "curl", "-sSf", "-O", "-H", f"Authorization: Bearer {ADMIN_TOKEN}",
        served.url("production"), cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, stderr
    assert _sha256((tmp_path / WEIGHTS).read_bytes()) == _sha256(weights)

    reply = await curl(served.url("production"), tmp_path)
    assert reply.status == 200
    assert reply.body == weights
    assert reply.headers["x-model-version"] == "models/demo/versions/1"  # not the latest, 2
    assert reply.headers["etag"] == f'"{_sha256(weights)}"'
    assert reply.headers["content-length"] == str(len(weights))
    assert reply.headers["accept-ranges"] == "bytes"
    assert reply.headers["cache-control"] == "private, no-cache"
    assert reply.headers["content-disposition"].startswith("attachment;")

    by_number = await curl(served.url("1", ODD_NAME), tmp_path, out="odd")
    assert by_number.status == 200
    assert by_number.body == served.files[ODD_NAME]
    assert by_number.headers["content-type"].startswith("text/plain")
    assert by_number.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert (
        "filename*=UTF-8''vocab%20gr%C3%B6%C3%9Fe%20%C3%BC.txt"
        in (by_number.headers["content-disposition"])
    )
    empty = await curl(served.url("1", "empty.txt"), tmp_path, out="empty")
    assert (empty.status, empty.body, empty.headers["content-length"]) == (200, b"", "0")


async def test_range_requests_answer_206_416_or_the_whole_file(
    served: Served, tmp_path: Path
) -> None:
    weights = served.files[WEIGHTS]
    size = len(weights)
    middle = await curl(served.url("1"), tmp_path, "-r", "1048570-2097160")
    assert middle.status == 206
    assert middle.body == weights[1048570:2097161]
    assert middle.headers["content-range"] == f"bytes 1048570-2097160/{size}"

    tail = await curl(served.url("production"), tmp_path, "-r", "-10")
    assert (tail.status, tail.body) == (206, weights[-10:])
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"

    past = await curl(served.url("1"), tmp_path, "-r", f"{size}-")
    assert past.status == 416
    assert past.headers["content-range"] == f"bytes */{size}"
    assert past.json()["code"] == 11  # OUT_OF_RANGE
    assert _reason(past.json()) == "READ_OFFSET_OUT_OF_RANGE"

    several = await curl(served.url("1"), tmp_path, "-r", "0-1,5-6")
    assert (several.status, several.body) == (200, weights)

    stale = await curl(served.url("1"), tmp_path, "-r", "0-9", "-H", 'If-Range: "0000"')
    assert (stale.status, stale.body) == (200, weights)
    fresh = await curl(
        served.url("1"), tmp_path, "-r", "0-9", "-H", f'If-Range: "{_sha256(weights)}"'
    )
    assert (fresh.status, fresh.body) == (206, weights[:10])


async def test_an_interrupted_download_resumes_with_curl_and_with_wget(
    served: Served, tmp_path: Path
) -> None:
    weights = served.files[WEIGHTS]
    partial = tmp_path / "curl-partial"
    partial.write_bytes(weights[: 1024 * 1024 + 5])
    code, stderr = await _run(
        "curl", "-sSf", "-C", "-", "-o", str(partial),
        "-H", f"Authorization: Bearer {ADMIN_TOKEN}", served.url("production"),
    )  # fmt: skip
    assert code == 0, stderr
    assert _sha256(partial.read_bytes()) == _sha256(weights)

    partial = tmp_path / "wget-partial"
    partial.write_bytes(weights[:777])
    code, stderr = await _run(
        "wget", "-c", "-S", "-O", str(partial),
        f"--header=Authorization: Bearer {ADMIN_TOKEN}", served.url("production"),
    )  # fmt: skip
    assert code == 0, stderr
    assert "206 Partial Content" in stderr
    assert f"Content-Range: bytes 777-{len(weights) - 1}/{len(weights)}" in stderr
    assert _sha256(partial.read_bytes()) == _sha256(weights)


async def test_if_none_match_with_the_etag_answers_304(served: Served, tmp_path: Path) -> None:
    etag = f'"{_sha256(served.files[WEIGHTS])}"'
    unchanged = await curl(served.url("production"), tmp_path, "-H", f"If-None-Match: {etag}")
    assert unchanged.status == 304
    assert unchanged.body == b""
    assert unchanged.headers["etag"] == etag
    assert unchanged.headers["x-model-version"] == "models/demo/versions/1"

    # By alias, once the alias moves, the same ETag no longer matches: the new file comes.
    other = await curl(served.url("2"), tmp_path, "-H", f'If-None-Match: W/{etag}, "x"')
    assert other.status == 200
    assert len(other.body) == 1000


async def test_head_answers_the_headers_without_the_body(local: Served, tmp_path: Path) -> None:
    reply = await curl(local.url("1"), tmp_path, "-I")
    assert reply.status == 200
    assert reply.headers["content-length"] == str(len(local.files[WEIGHTS]))
    assert reply.headers["etag"] == f'"{_sha256(local.files[WEIGHTS])}"'
    listing = await curl(f"{local.base}/v1/models/demo/versions/1/files", tmp_path, "-I")
    assert listing.status == 200
    assert listing.headers["content-type"].startswith("application/json")


async def test_the_listing_is_json_with_a_url_per_file(local: Served, tmp_path: Path) -> None:
    listing = await curl(f"{local.base}/v1/models/demo/versions/production/files", tmp_path)
    assert listing.status == 200
    document = listing.json()
    assert document["modelVersion"] == "models/demo/versions/1"
    by_path = {f["path"]: f for f in document["files"]}
    assert set(by_path) == set(local.files)
    weights = by_path[WEIGHTS]
    assert weights["sha256"] == _sha256(local.files[WEIGHTS])
    assert weights["size"] == len(local.files[WEIGHTS])
    assert weights["mediaType"]
    # URLs name the version by number: a download after the alias moved gets the same files.
    assert weights["url"] == f"/v1/models/demo/versions/1/files/{WEIGHTS}"
    odd = await curl(local.base + by_path[ODD_NAME]["url"], tmp_path, out="odd")
    assert odd.body == local.files[ODD_NAME]

    folder = await curl(
        f"{local.base}/v1/models/demo/versions/1/files/tokenizer%20files/", tmp_path
    )
    assert [f["path"] for f in folder.json()["files"]] == [ODD_NAME]
    not_folder = await curl(f"{local.base}/v1/models/demo/versions/1/files/nothing/", tmp_path)
    assert not_folder.status == 404


async def test_errors_are_status_json(local: Served, tmp_path: Path) -> None:
    missing = await curl(local.url("production", "no/such/file.bin"), tmp_path)
    assert missing.status == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["code"] == 5  # NOT_FOUND
    assert _reason(missing.json()) == "BLOB_NOT_FOUND"

    folder = await curl(local.url("1", "tokenizer files"), tmp_path)
    assert folder.status == 404
    assert "it is a folder" in folder.json()["message"]

    no_alias = await curl(local.url("staging"), tmp_path)
    assert (no_alias.status, _reason(no_alias.json())) == (404, "ALIAS_NOT_FOUND")

    malformed = await curl(local.url("Not_An_Alias"), tmp_path)
    assert (malformed.status, _reason(malformed.json())) == (400, "REFERENCE_INVALID")

    written = await curl(local.url("1"), tmp_path, "-X", "PUT", "--data-binary", "x")
    assert written.status == 405
    assert written.headers["allow"] == "GET, HEAD"


async def test_without_a_token_401_and_without_the_permission_403(
    local: Served, tmp_path: Path
) -> None:
    anonymous = await curl(local.url("production"), tmp_path, token=None)
    assert anonymous.status == 401
    assert anonymous.json()["code"] == 16  # UNAUTHENTICATED
    assert anonymous.headers["www-authenticate"] == "Bearer"

    target = local.registry.target
    outsider = await create_token(target, "outsider", role="viewer", scope="other-model")
    denied = await curl(local.url("production"), tmp_path, token=outsider)
    assert denied.status == 403
    assert denied.json()["code"] == 7  # PERMISSION_DENIED
    assert _reason(denied.json()) == "PERMISSION_DENIED"
    listing = await curl(f"{local.base}/v1/models/demo/versions/1/files", tmp_path, token=outsider)
    assert listing.status == 403

    viewer = await create_token(target, "viewer", role="viewer", scope="demo")
    allowed = await curl(local.url("production"), tmp_path, token=viewer)
    assert (allowed.status, allowed.body) == (200, local.files[WEIGHTS])


def _open_blob_files(sha256: str) -> list[str]:
    """The files this process has open whose path holds ``sha256`` (the local store's blob)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if sha256 in target:
            found.append(target)
    return found


@dataclass
class BigFile:
    """A 48 MiB file (``big`` version 1, ``big.bin``) on the in-process local-store server."""

    port: int
    digest: str

    async def start_download(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw HTTP/1.1 GET of the file; returns once the status line and headers are in."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            b"GET /v1/models/big/versions/1/files/big.bin HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        return reader, writer

    async def wait_closed_by_server(self, seconds: float) -> None:
        """Wait until the server no longer holds the blob open."""
        for _ in range(int(seconds / 0.05)):
            if not _open_blob_files(self.digest):
                return
            await asyncio.sleep(0.05)
        assert _open_blob_files(self.digest) == []


@pytest.fixture
async def big(registry: RunningRegistry, tmp_path: Path) -> BigFile:
    """A file large enough that a download outlasts the sockets' buffers."""
    assert registry.server.web is not None
    write_random(tmp_path / "big" / "big.bin", 48 * MiB)
    client = Client(registry.target, cache_dir=tmp_path / "push-cache-big")
    try:
        version = await asyncio.to_thread(client.push, tmp_path / "big", model="big")
    finally:
        client.close()
    return BigFile(registry.server.web.port, version.files[0].sha256)


async def test_a_client_that_leaves_mid_download_leaves_nothing_open(big: BigFile) -> None:
    reader, writer = await big.start_download()
    await reader.readexactly(MiB)
    assert _open_blob_files(big.digest), "the server should be reading the blob now"
    writer.close()
    await writer.wait_closed()
    await big.wait_closed_by_server(5.0)


async def test_a_client_that_takes_no_bytes_is_disconnected(
    big: BigFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "STALL_TIMEOUT_S", 1.0)
    reader, writer = await big.start_download()
    try:
        await big.wait_closed_by_server(6.0)
        received = 0
        with contextlib.suppress(ConnectionError):
            while chunk := await asyncio.wait_for(reader.read(MiB), 5):
                received += len(chunk)
        assert received < 48 * MiB  # cut short: the connection was ended
    finally:
        writer.close()


async def test_a_slow_client_that_keeps_reading_is_not_disconnected(
    big: BigFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "STALL_TIMEOUT_S", 1.0)
    reader, writer = await big.start_download()
    try:
        # 3 s at about 0.6 MiB/s, three times the stall timeout: so slow that the kernel's
        # send buffer (megabytes on loopback) takes seconds to free room for the next write.
        for _ in range(30):
            await reader.readexactly(64 * 1024)
            await asyncio.sleep(0.1)
        assert _open_blob_files(big.digest), "a slow reader must not be cut off"
        await reader.readexactly(MiB)
    finally:
        writer.close()
        await writer.wait_closed()
    await big.wait_closed_by_server(5.0)


async def test_a_process_without_the_artifact_service_says_file_urls_are_not_served(
    database_url: str, tmp_path: Path
) -> None:
    extra = ["metadata", "--artifact-service-url=127.0.0.1:1", "--artifact-service-token=x"]
    # One pass of the generator: the server stops when the loop asks for the next one.
    async for registry in _start_registry(database_url, tmp_path / "data", extra):
        assert registry.server.web is not None
        base = f"http://127.0.0.1:{registry.server.web.port}"
        reply = await curl(f"{base}/v1/models/demo/versions/1/files/x.bin", tmp_path)
        assert reply.status == 501
        assert "artifact service" in reply.json()["message"]
