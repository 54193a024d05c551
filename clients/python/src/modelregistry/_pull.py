"""``pull``: one resolve, parallel verified downloads into the cache, then a snapshot of links.

Each blob is fetched by a presigned URL straight from the object store when the server can
issue one and this client can reach it, and through the ArtifactService's ``Read`` stream
otherwise. Bytes are hashed as they arrive and land in ``<digest>.incomplete``; a file becomes a
cache entry only after its SHA-256 and size match the manifest. An interrupted download keeps
its ``.incomplete`` bytes, and the next attempt (in this call after a dropped connection, or in
a later pull) continues from there instead of starting over. Finished files are never fetched
again: a repeat pull of a cached version moves no file bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import fnmatch
import functools
import hashlib
import io
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, cast

import grpc

from modelregistry import _destination, _http
from modelregistry._convert import resolve_request
from modelregistry._manifest import check_answer
from modelregistry._options import Patterns, PullOptions
from modelregistry._transport import (
    Transport,
    is_retryable,
    retry_pause,
    stream_deadline,
    stream_retry_pause,
)
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.cache import Cache, replace_atomically
from modelregistry.errors import (
    FailedPreconditionError,
    IntegrityError,
    NotCachedError,
    RegistryError,
    UnavailableError,
    from_rpc_error,
)
from modelregistry.metadata.v1 import model_version_pb2
from modelregistry.progress import NullProgress, Progress

if TYPE_CHECKING:
    from hashlib import _Hash

_BUFFER_BYTES = 1024 * 1024
# Start writing a blob to disk every this many bytes while it downloads (see _Writeback).
_WRITEBACK_BYTES = 64 * 1024 * 1024
_ATTEMPTS = 5  # per blob, for connections that drop mid-file


def pull_model(
    transport: Transport | None,
    cache: Cache,
    ref: str,
    options: PullOptions | None = None,
    *,
    offline: bool = False,
) -> Path:
    """Download the version ``ref`` names and return its local folder; see ``Client.pull``.

    ``transport`` None (or ``offline``) serves the pull from the cache alone.
    """
    options = options or PullOptions()
    report = options.progress or NullProgress()
    # From the ref record to the last link, what this pull needs is referenced by nothing
    # yet: the shared cache lock keeps Cache.prune from deleting it meanwhile.
    with cache.in_use():
        # Everything the answer names is checked before anything is written: the ref record,
        # a blob, a snapshot link or a file under dest (see _manifest and _destination).
        version, model, number = _resolve(transport, cache, ref, offline)
        files = select_files(version.files, options.allow_patterns, options.ignore_patterns)
        paths = [file.path for file in files]
        snapshot = cache.snapshot_dir(model, number)
        _destination.plan(snapshot, paths, links_are_files=True)
        target = None if options.dest is None else _destination.plan(Path(options.dest), paths)
        if transport is not None and not offline:
            cache.save_ref(ref, version)

        wanted: dict[str, int] = {}
        for file in files:
            wanted.setdefault(file.sha256, file.size_bytes)
        missing = {sha: size for sha, size in wanted.items() if not cache.has_blob(sha, size)}
        if missing:
            if offline or transport is None:
                raise NotCachedError(
                    f"{ref} is not fully in the local cache ({len(missing)} files missing) "
                    "and offline mode is on"
                )
            _download_all(
                transport, cache, missing, options.workers, report, f"pulling {ref}", version.name
            )

        _link_snapshot(cache, snapshot, files)
        # A warm pull changes no link; touch the folder so `cache ls` shows when the version
        # was last used and the least recently used snapshots are the ones to remove.
        with contextlib.suppress(OSError):
            os.utime(snapshot)
        if options.dest is None or target is None:
            return snapshot
        _materialize(cache, target, files)
        return Path(options.dest)


def _resolve(
    transport: Transport | None, cache: Cache, ref: str, offline: bool
) -> tuple[model_version_pb2.ModelVersion, str, int]:
    """The version ``ref`` names, checked (:func:`check_answer`), its model and number.

    The answer is not recorded yet: the caller saves it once the paths are checked too.
    """
    if offline or transport is None:
        version = cache.resolve_offline(ref)
    else:
        version = transport.unary(
            transport.metadata_stub.ResolveModelVersion, resolve_request(ref, None)
        )
    model, number = check_answer(ref, version)
    return version, model, number


def select_files(
    manifest: Iterable[model_version_pb2.ManifestFile],
    allow_patterns: Patterns,
    ignore_patterns: Patterns,
) -> list[model_version_pb2.ManifestFile]:
    """The manifest entries that match an allow pattern (if any) and no ignore pattern.

    Patterns are ``fnmatch`` globs on the manifest path; ``*`` also crosses ``/``, as in
    ``*.safetensors`` matching ``weights/a.safetensors``.
    """
    allow = [allow_patterns] if isinstance(allow_patterns, str) else list(allow_patterns or [])
    ignore = [ignore_patterns] if isinstance(ignore_patterns, str) else list(ignore_patterns or [])
    chosen = []
    for file in manifest:
        if allow and not any(fnmatch.fnmatchcase(file.path, p) for p in allow):
            continue
        if any(fnmatch.fnmatchcase(file.path, p) for p in ignore):
            continue
        chosen.append(file)
    return chosen


def _link_snapshot(
    cache: Cache, snapshot: Path, files: Iterable[model_version_pb2.ManifestFile]
) -> None:
    """Make ``snapshot/<path>`` a relative symlink to each cached blob (idempotent)."""
    for file in files:
        link = snapshot.joinpath(*PurePosixPath(file.path).parts)
        blob = cache.blob_path(file.sha256)
        relative = os.path.relpath(blob, link.parent)
        with contextlib.suppress(OSError):
            if os.readlink(link) == relative:
                continue  # already there: a warm pull touches nothing
        replace_atomically(link, functools.partial(os.symlink, relative))


def _materialize(
    cache: Cache, target: _destination.Plan, files: Iterable[model_version_pb2.ManifestFile]
) -> None:
    """Put real files at the checked targets: hard links to the cache if possible, else copies.

    Hard links cost no space or time; the cache files are read-only, so a process that tries to
    modify a pulled file in place gets an error instead of silently corrupting the cache. If a
    file cannot be placed (a full disk, a name too long), the files and folders this pull
    created are removed again.
    """
    try:
        for file in files:
            path = target.targets[file.path]
            blob = cache.blob_path(file.sha256)
            with contextlib.suppress(OSError):
                existing, cached = path.lstat(), blob.stat()
                if (existing.st_ino, existing.st_dev) == (cached.st_ino, cached.st_dev):
                    continue
            replace_atomically(path, functools.partial(_link_or_copy, blob))
    except BaseException:
        target.undo()
        raise


def _link_or_copy(blob: Path, target: Path) -> None:
    try:
        os.link(blob, target)
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copyfile(blob, target)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (Linux only; Python's ``os`` does not offer it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", function)


_SYNC_FILE_RANGE_WRITE = 2  # start writeback of dirty pages, do not wait for it
_sync_file_range = _load_sync_file_range()


class _Sink:
    """Where a blob's bytes go as they arrive: its ``.incomplete`` file, its hash, progress.

    It also starts writing the file to disk while the download goes on. A blob becomes a cache
    entry only after ``fsync``: the cache later trusts a blob by its size alone, so it must never
    hold a renamed file whose bytes were lost in a crash. Left to the end, that ``fsync`` waits
    for the whole file's writeback. Asking the kernel (``sync_file_range``) to start writeback of
    each finished 64 MiB overlaps the disk with the network, so the final ``fsync`` has at most
    the last stretch left (bench/README.md has the figures). Where the call is missing or
    refused, only the final ``fsync`` remains, which is correct, just slower.
    """

    def __init__(self, handle: io.BufferedRandom, report: Progress) -> None:
        self.handle = handle
        self.hasher = _hash_prefix(handle)
        self._report = report
        self._unflushed_from = handle.tell()  # bytes before this were handed to writeback

    def offset(self) -> int:
        """How many bytes of the blob are in the file."""
        return self.handle.tell()

    def write(self, data: bytes | memoryview) -> None:
        self.handle.write(data)
        self.hasher.update(data)
        self._report.advance(len(data))
        if self.handle.tell() - self._unflushed_from >= _WRITEBACK_BYTES:
            self._start_writeback()

    def _start_writeback(self) -> None:
        global _sync_file_range  # switched off for good if the call is refused
        end = self.handle.tell()
        if _sync_file_range is not None:
            self.handle.flush()
            start, length = self._unflushed_from, end - self._unflushed_from
            if _sync_file_range(self.handle.fileno(), start, length, _SYNC_FILE_RANGE_WRITE):
                _sync_file_range = None  # e.g. ENOSYS in some sandboxes: fsync alone will do
        self._unflushed_from = end


class _Sources:
    """Decides, once for all workers, whether presigned URLs work for this client.

    The flag only ever goes from True to False and a worker that reads it late merely tries one
    more URL, so it needs no lock.
    """

    def __init__(self, version: str) -> None:
        self.use_urls = True
        # Every Read and GenerateDownloadUrl names the version pulled: the server lets a caller
        # read only the blobs of a version it may read.
        self.version = version

    def disable_urls(self) -> None:
        self.use_urls = False


def _download_all(
    transport: Transport,
    cache: Cache,
    missing: dict[str, int],
    workers: int,
    report: Progress,
    description: str,
    version: str,
) -> None:
    sources = _Sources(version)
    # Bytes already in .incomplete files are not downloaded again, so they are not in the total.
    total = 0
    for sha, size in missing.items():
        try:
            total += size - min(cache.incomplete_path(sha).stat().st_size, size)
        except FileNotFoundError:
            total += size
    report.start(total, len(missing), description)
    try:
        # Biggest first: the long poles start early and small files fill the gaps.
        order = sorted(missing.items(), key=lambda item: -item[1])
        with ThreadPoolExecutor(workers, thread_name_prefix="modelregistry-pull") as pool:
            futures = [
                pool.submit(_fetch_blob, transport, cache, sources, sha, size, report)
                for sha, size in order
            ]
            for future in futures:
                future.result()
    finally:
        report.finish()


def _fetch_blob(
    transport: Transport,
    cache: Cache,
    sources: _Sources,
    sha256: str,
    size: int,
    report: Progress,
) -> None:
    """Download, verify and admit one blob, resuming from its ``.incomplete`` bytes."""
    with cache.blob_lock(sha256):
        if cache.has_blob(sha256, size):  # another process finished it while we waited
            report.file_done(sha256)
            return
        partial = cache.incomplete_path(sha256)
        partial.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "ab+") as handle:
            if handle.tell() > size:  # not a prefix of this blob: start over
                handle.truncate(0)
            sink = _Sink(handle, report)
            attempt = 0
            while sink.offset() < size:
                attempt += 1
                try:
                    _fetch_range(transport, sources, sha256, size, sink)
                except (RegistryError, OSError) as error:
                    # A dropped connection, a server restart or the registry's limit on
                    # concurrent streams: keep what arrived, back off (at least as long as the
                    # server asked), continue from the new offset.
                    if isinstance(error, RegistryError) and not is_retryable(error):
                        raise
                    if attempt >= _ATTEMPTS:
                        if isinstance(error, RegistryError):
                            raise
                        raise UnavailableError(
                            f"downloading {sha256[:12]} failed after {attempt} attempts: {error}"
                        ) from error
                    backoff = stream_retry_pause(attempt)
                    if isinstance(error, RegistryError):
                        backoff = retry_pause(error, backoff)
                    time.sleep(backoff)
            handle.flush()
            os.fsync(handle.fileno())
            received = handle.tell()
        digest = sink.hasher.hexdigest()
        if received != size or digest != sha256:
            partial.unlink()
            raise IntegrityError(
                f"blob {sha256[:12]}… arrived with {received} bytes and sha256 {digest[:12]}…, "
                f"expected {size} bytes; the corrupt download was discarded"
            )
        cache.admit(sha256, partial)
    report.file_done(sha256)


def _hash_prefix(handle: io.BufferedRandom) -> _Hash:
    """Hash the bytes a previous attempt left, so verification covers the whole file."""
    handle.seek(0)
    hasher = hashlib.file_digest(handle, "sha256")
    handle.seek(0, os.SEEK_END)
    return hasher


def _fetch_range(
    transport: Transport,
    sources: _Sources,
    sha256: str,
    size: int,
    sink: _Sink,
) -> None:
    """Append bytes from the file's end to the blob's end, by URL or by ``Read``."""
    offset = sink.offset()
    if sources.use_urls:
        url = _download_url(transport, sources, sha256)
        if url is not None:
            try:
                _http_range(url, offset, sink)
                return
            except urllib.error.HTTPError:
                # A URL that was issued but refused (clock skew, a proxy) will not get better.
                sources.disable_urls()
            except OSError:
                if sink.offset() != offset:
                    raise  # dropped mid-file: the caller backs off and resumes
                # Nothing arrived: the object store is not reachable from here (the server
                # hands out its internal endpoint). Use Read for every remaining blob.
                sources.disable_urls()
    _grpc_range(transport, sources.version, sha256, size, sink)


def _download_url(transport: Transport, sources: _Sources, sha256: str) -> str | None:
    try:
        answer = transport.unary(
            transport.artifact_stub.GenerateDownloadUrl,
            artifact_service_pb2.GenerateDownloadUrlRequest(
                name=f"blobs/{sha256}", model_version=sources.version
            ),
        )
    except FailedPreconditionError:  # the local-directory store issues no URLs
        sources.disable_urls()
        return None
    return answer.url


def _http_range(url: str, offset: int, sink: _Sink) -> None:
    if not url.startswith(("http://", "https://")):
        raise urllib.error.URLError(f"not an http(s) download URL: {url[:40]}")
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked above
    with _http.urlopen(request) as response:
        if offset and response.status != 206:
            raise urllib.error.HTTPError(
                url, response.status, "range not honoured", response.headers, None
            )
        buffer = bytearray(_BUFFER_BYTES)
        view = memoryview(buffer)
        while True:
            count = response.readinto(view)
            if not count:
                return
            sink.write(view[:count])


def _grpc_range(
    transport: Transport,
    version: str,
    sha256: str,
    size: int,
    sink: _Sink,
) -> None:
    offset = sink.offset()
    if offset >= size:
        return
    try:
        for response in transport.artifact_stub.Read(
            artifact_service_pb2.ReadRequest(
                sha256=sha256, read_offset=offset, model_version=version
            ),
            timeout=stream_deadline(size - offset),
            metadata=transport.metadata,
        ):
            sink.write(response.data)  # each access of .data copies: read it once
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, transport.target) from None
